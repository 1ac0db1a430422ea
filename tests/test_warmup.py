"""``numba_convt.warmup``: after it, real calls (1-D, 2-D, 3-D) compile nothing; argument checks."""

import json
import subprocess
import sys

import numpy as np
import pytest

import numba_convt

# In a fresh process: warmup(), then real layers, and what Numba compiled (or
# loaded from its disk cache) during those calls: every (function, signature)
# held by any live dispatcher, before and after. An int32 call, not warmed,
# shows that the observation does see compilation.
SCRIPT = """
import gc, json
import numpy as np
from numba.core.dispatcher import Dispatcher
import numba_convt

def compiled():
    return {f"{d.py_func.__qualname__}{sig}" for d in gc.get_objects()
            if isinstance(d, Dispatcher) for sig in d.overloads}

def call(dtype, x_shape, f_shape, output_shape, strides, padding="SAME", fill=1, **kwargs):
    x, f = np.ones(x_shape, dtype), np.full(f_shape, fill).astype(dtype)
    function = numba_convt.conv_transpose if len(x_shape) != 4 else numba_convt.conv2d_transpose
    function(x, f, output_shape, strides, padding, **kwargs)

numba_convt.warmup()
warm = compiled()
for dtype in ("float32", "float64", "float16"):
    call(dtype, (8, 16, 16, 128), (4, 4, 64, 128), [32, 32], 2)            # dcgan_g3
    call(dtype, (4, 32, 32, 128), (2, 2, 64, 128), [64, 64], 2, "VALID")   # unet_up2
    call(dtype, (1, 512, 512, 1), (5, 5, 1, 1), [1024, 1024], 2)           # img_1ch
    call(dtype, (8, 32, 32, 64), (4, 4, 3, 64), [64, 64], 2)               # dcgan_rgb
    call(dtype, (1, 32, 32, 21), (16, 16, 21, 21), [256, 256], 8)         # fcn_up8
    call(dtype, (1, 21, 32, 32), (16, 16, 4, 21), [1, 4, 256, 256], 8, data_format="NCHW")  # sub-pixel
    call(dtype, (2, 7, 6, 6), (3, 3, 2, 6), [7, 6], 1, dilations=2)        # grouped, dilated
    call(dtype, (2, 3, 9, 9), (3, 3, 4, 3), [2, 4, 19, 19], 2, "VALID", data_format="NCHW")
    call(dtype, (1, 64, 64, 32), (3, 3, 8, 32), [64, 64], 1)               # dot kernel
    call(dtype, (1, 8, 8, 32), (2, 2, 8, 32), [8, 8], 1)                   # small dot kernel
    call(dtype, (1, 32, 64, 64), (3, 3, 8, 32), [1, 8, 64, 64], 1, data_format="NCHW")  # BLAS, C_out < 16
    call(dtype, (1, 32, 8, 8), (2, 2, 8, 32), [1, 8, 8, 8], 1, data_format="NCHW")      # small BLAS
    call(dtype, (8, 16, 16, 128), (4, 4, 64, 128), [32, 32], 2, fill=np.inf)  # filters not finite: BLAS
    call(dtype, (2, 64, 9, 9), (3, 3, 32, 64), [2, 32, 9, 9], 1, data_format="NCHW")  # tiled, NCHW
    call(dtype, (2, 16, 16, 4), (3, 3, 16, 4), [32, 32], 2, fill=np.nan)   # not finite, few channels: direct
    call(dtype, (1, 2, 24, 512), (3, 3, 512, 512), [2, 24], 1)            # 2.4M filter values
    call(dtype, (4, 256, 32), (5, 16, 32), [4, 512, 16], 2)                # 1-D signal decoder
    call(dtype, (2, 16, 100), (3, 8, 16), [2, 8, 200], 2, data_format="NCW")
    call(dtype, (2, 1, 64), (8, 1, 1), [2, 1, 261], 4, "VALID", data_format="NCW")
    call(dtype, (1, 8, 8, 8, 32), (4, 4, 4, 16, 32), [1, 16, 16, 16, 16], 2)  # 3-D volume upsampling
    call(dtype, (1, 16, 4, 6, 6), (3, 3, 3, 16, 16), [1, 16, 8, 12, 12], 2, data_format="NCDHW")
    call(dtype, (2, 4, 5, 6, 4), (2, 3, 3, 2, 4), [2, 4, 5, 6, 4], 1, dilations=2)  # grouped, dilated
    call(dtype, (1, 4, 16, 16, 64), (3, 3, 3, 64, 64), [1, 8, 32, 32, 64], 2, fill=np.inf)  # not finite: BLAS
after_layers = compiled()
call("int32", (1, 4, 4, 2), (3, 3, 2, 2), [8, 8], 2)
print(json.dumps({"layers": sorted(after_layers - warm), "int32": sorted(compiled() - after_layers)}))
"""


def test_real_calls_after_warmup_compile_nothing():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    compiled = json.loads(result.stdout)
    assert compiled["layers"] == []
    assert compiled["int32"], "the int32 call should have compiled kernels: the observation sees nothing"


def test_returns_seconds_per_backend_and_dtype():
    seconds = numba_convt.warmup(dtypes=[np.int32, "int32", ">i4"], backends=["numpy", "NumPy"])
    assert list(seconds) == [("numpy", "int32")]
    assert all(isinstance(s, float) and s >= 0 for s in seconds.values())


def test_defaults_are_float32_float64_on_auto():
    expected = [(numba_convt.get_backend("auto").name, name) for name in ("float32", "float64")]
    assert list(numba_convt.warmup()) == expected


@pytest.mark.parametrize("backends, error, message", [
    ("gpu", ValueError, r"backend 'gpu' is unknown; available backends: auto, cpu, numpy"),
    (["cpu", 3], TypeError, r"backend must be a string; got 3"),
])
def test_bad_backend(backends, error, message):
    with pytest.raises(error, match=message):
        numba_convt.warmup(backends=backends)


@pytest.mark.parametrize("dtypes, message", [
    ("float8", r"dtypes: 'float8' is not a dtype; accepted: .*float32, float64, int32"),
    ([np.float32, 3], r"dtypes: 3 is not a dtype; accepted: "),
    (np.bool_, r"dtypes: bool is not supported; accepted: .*float32, float64, int32"),
    (["float32", "uint8"], r"dtypes: uint8 is not supported"),
])
def test_bad_dtype(dtypes, message):
    with pytest.raises(TypeError, match=message):
        numba_convt.warmup(dtypes=dtypes, backends="numpy")
