"""The cpu backend's paths, each forced and compared with the NumPy reference.

Random configurations rarely reach every path of ``backends/cpu.py``: the
three direct inner loops (picked by channel counts), the BLAS path with its
two gathers, and Y computed in bands of input rows (only for large layers).
"""

import numpy as np
import pytest
from common import assert_close

import numba_convt
from numba_convt.backends import cpu

# (input NHWC, filters [KH, KW, C_out/G, C_in], output_shape, strides, padding, dilations, dtype)
PATHS = {
    "direct-pixels": ((2, 7, 9, 2), (3, 5, 2, 2), [2, 14, 17, 2], [2, 2], "SAME", [1, 1], "float32"),
    "direct-out-channels": ((2, 6, 5, 8), (3, 3, 8, 8), [2, 13, 11, 8], [2, 2], "VALID", [1, 1], "float64"),
    "direct-in-channels": ((2, 5, 6, 20), (4, 3, 3, 20), [2, 14, 12, 3], [3, 2], "SAME", [1, 2], "int32"),
    "direct-grouped": ((1, 6, 6, 24), (3, 3, 4, 24), [1, 6, 6, 8], 1, [[0, 0], [1, 1], [2, 0], [0, 0]], 1, "float32"),
    "blas-out-channels": ((2, 9, 7, 32), (4, 3, 24, 32), [2, 18, 14, 24], [2, 2], "SAME", [1, 1], "float32"),
    "blas-pixels": ((3, 8, 10, 16), (5, 4, 3, 16), [3, 20, 25, 3], [2, 2], "VALID", [1, 2], "float64"),
    "blas-pixel-shuffle": ((2, 6, 6, 16), (2, 3, 16, 16), [2, 12, 18, 16], [2, 3], "VALID", 1, "float32"),
    "blas-complex": ((1, 8, 8, 16), (3, 3, 16, 16), [1, 8, 8, 16], 1, "SAME", [2, 2], "complex128"),
}


def _case(name):
    x_shape, f_shape, output_shape, strides, padding, dilations, dtype = PATHS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x, f = rng.uniform(-4, 4, x_shape), rng.uniform(-4, 4, f_shape)
    if np.dtype(dtype).kind == "i":
        x, f = x.round(), f.round()
    if np.dtype(dtype).kind == "c":
        x, f = x - 1j * x[..., ::-1], f + 1j
    return x.astype(dtype), f.astype(dtype), output_shape, strides, padding, "NHWC", dilations


@pytest.mark.parametrize("y_bytes", [cpu._Y_BYTES, 1], ids=["whole", "row-bands"])
@pytest.mark.parametrize("name", PATHS)
def test_each_path_matches_reference(name, y_bytes, monkeypatch):
    monkeypatch.setattr(cpu, "_Y_BYTES", y_bytes)
    args = _case(name)
    spec = _spec(*args)
    assert cpu._use_blas(spec) == name.startswith("blas")
    assert cpu._is_pixel_shuffle(spec) == name.endswith("shuffle")
    assert_close(
        numba_convt.conv2d_transpose(*args, backend="cpu"),
        numba_convt.conv2d_transpose(*args, backend="numpy"),
        args[0].dtype,
    )


def _spec(x, f, *rest):
    from numba_convt._normalize import normalize

    return normalize(x, f, *rest)
