"""The ``"cuda"`` backend, on numba's CUDA simulator (``conftest.py``) or a real GPU.

``python -m pytest`` runs the kernels in the simulator; ``NUMBA_ENABLE_CUDASIM=0
python -m pytest tests/test_cuda.py`` runs the same tests on a GPU. Shapes
stay tiny and launches use 8-thread blocks and at most 4 blocks, so the
simulator covers multi-block grids and the grid-stride loops quickly.
"""

import dataclasses
import gc
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest

import numba_convt
from numba_convt import _registry, conv2d_transpose
from numba_convt._normalize import legal_output_sizes

cuda = pytest.importorskip("numba.cuda")
cuda_backend = pytest.importorskip("numba_convt.backends.cuda")

try:
    from ml_dtypes import bfloat16
except ImportError:  # pragma: no cover - depends on the environment
    bfloat16 = None

# Real GPUs warn about the tiny grids these tests launch (NumbaPerformanceWarning).
pytestmark = pytest.mark.filterwarnings("ignore:Grid size")
GOLDEN = Path(__file__).parent / "data" / "tf_golden.npz"
RTOL = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-5, "complex64": 2e-5,
        "float64": 1e-12, "complex128": 1e-12}
DEVICE_DTYPES = ["float16", "float32", "float64", "int32", "int64", "complex64", "complex128"]
DTYPES = [*DEVICE_DTYPES, pytest.param("bfloat16", marks=pytest.mark.skipif(bfloat16 is None, reason="needs ml_dtypes"))]


@pytest.fixture(autouse=True)
def small_grid(monkeypatch):
    """8-thread blocks, at most 4 of them: every launch is multi-block and grid-strides."""
    monkeypatch.setattr(cuda_backend, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(cuda_backend, "MAX_BLOCKS", 4)


def assert_close(actual, expected):
    """Equal within the dtype's tolerance relative to ``max|expected|``; integers exactly."""
    actual = actual.copy_to_host() if hasattr(actual, "copy_to_host") else actual
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    if expected.dtype.kind in "iu":
        np.testing.assert_array_equal(actual, expected)
        return
    a, e = actual.astype(np.complex128), expected.astype(np.complex128)
    bound = RTOL[expected.dtype.name] * np.abs(e).max(initial=0)
    assert np.abs(a - e).max(initial=0) <= bound


def make_case(rng, dtype="float32", *, in_hw=(3, 4), k=(3, 2), strides=(2, 2), dilations=(1, 1),
              padding="SAME", data_format="NHWC", batch=2, groups=1, group_in=2, group_out=2, largest=False):
    """Arguments ``(x, f, output_shape, strides, padding, data_format, dilations)`` of a legal call."""
    kind = padding if isinstance(padding, str) else "EXPLICIT"
    spatial = padding if kind == "EXPLICIT" else [(0, 0), (0, 0)]
    sizes = [legal_output_sizes(n, kk, s, d, kind, *p)
             for n, kk, s, d, p in zip(in_hw, k, strides, dilations, spatial)]
    out_hw = [r[-1] if largest else r[0] for r in sizes]
    in_c, out_c = groups * group_in, groups * group_out
    nchw = data_format == "NCHW"
    x_shape = (batch, in_c, *in_hw) if nchw else (batch, *in_hw, in_c)
    output_shape = [batch, out_c, *out_hw] if nchw else [batch, *out_hw, out_c]
    if kind == "EXPLICIT":
        padding = [[0, 0], [0, 0], *padding] if nchw else [[0, 0], *padding, [0, 0]]
    x, f = random_array(rng, x_shape, dtype), random_array(rng, (*k, group_out, in_c), dtype)
    return x, f, output_shape, list(strides), padding, data_format, list(dilations)


def random_array(rng, shape, dtype):
    dtype = np.dtype(bfloat16 if dtype == "bfloat16" else dtype)
    if dtype.kind in "iu":
        return rng.integers(-4, 5, shape).astype(dtype)
    values = rng.standard_normal(shape)
    if dtype.kind == "c":
        values = values + 1j * rng.standard_normal(shape)
    return values.astype(dtype)


def reference(*args):
    return conv2d_transpose(*args, backend="numpy")


GEOMETRIES = {  # (strides, dilations)
    "s1-d1": ((1, 1), (1, 1)), "s2x3-d1": ((2, 3), (1, 1)), "s1-d2x1": ((1, 1), (2, 1)),
    "s2-d2x3": ((2, 2), (2, 3)), "s3x1-d1x2": ((3, 1), (1, 2)),
}
PADDINGS = {"same": "SAME", "valid": "VALID", "explicit": [(1, 0), (0, 2)]}


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_cuda_matches_reference_geometry(geometry, padding, data_format):
    rng = np.random.default_rng(len(geometry) * 7 + len(padding))
    strides, dilations = GEOMETRIES[geometry]
    for largest in (False, True):  # the largest legal output has rows no tap reaches
        args = make_case(rng, strides=strides, dilations=dilations, padding=PADDINGS[padding],
                         data_format=data_format, largest=largest)
        assert_close(conv2d_transpose(*args, backend="cuda"), reference(*args))


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("groups, group_in, group_out", [(1, 3, 2), (2, 2, 3), (3, 1, 2), (4, 1, 1)])
def test_cuda_matches_reference_groups(groups, group_in, group_out, data_format):
    args = make_case(np.random.default_rng(groups), in_hw=(4, 3), k=(2, 3), groups=groups,
                     group_in=group_in, group_out=group_out, data_format=data_format, largest=True)
    assert_close(conv2d_transpose(*args, backend="cuda"), reference(*args))


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_reference_dtypes(dtype, data_format):
    args = make_case(np.random.default_rng(3), dtype, groups=2, data_format=data_format,
                     padding=[(0, 1), (2, 0)], dilations=(1, 2))
    assert_close(conv2d_transpose(*args, backend="cuda"), reference(*args))


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", DEVICE_DTYPES)
def test_cuda_device_arrays_round_trip(dtype, data_format):
    x, f, *rest = make_case(np.random.default_rng(4), dtype, groups=2, data_format=data_format)
    result = conv2d_transpose(cuda.to_device(x), cuda.to_device(f), *rest)  # "auto" picks "cuda"
    assert getattr(result, "__cuda_ndarray__", False) and not isinstance(result, np.ndarray)
    assert_close(result, reference(x, f, *rest))


def test_cuda_device_mixed_dtypes_and_strided_input():
    x, f, *rest = make_case(np.random.default_rng(5), "int32", data_format="NCHW")
    f = f.astype(np.float32)  # result_type(int32, float32) = float64
    wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
    wide[..., ::2] = x
    view = cuda.to_device(wide)[..., ::2]  # a non-contiguous device view
    assert_close(conv2d_transpose(view, cuda.to_device(f), *rest, backend="cuda"), reference(x, f, *rest))


@pytest.mark.parametrize("dtype, data_format", [("float32", "NHWC"), ("float64", "NCHW"), ("float16", "NHWC")])
def test_cuda_device_out_is_written_in_place(dtype, data_format):
    x, f, shape, *rest = make_case(np.random.default_rng(6), dtype, data_format=data_format)
    out = cuda.device_array(tuple(shape), np.dtype(dtype))
    assert conv2d_transpose(cuda.to_device(x), cuda.to_device(f), shape, *rest, out=out) is out
    assert_close(out, reference(x, f, shape, *rest))


def test_cuda_host_arrays_give_numpy_and_fill_out():
    x, f, shape, *rest = make_case(np.random.default_rng(7), data_format="NCHW")
    expected = reference(x, f, shape, *rest)
    assert_close(conv2d_transpose(x, f, shape, *rest, backend="cuda"), expected)
    out = np.empty(shape, np.float32)
    assert conv2d_transpose(x, f, shape, *rest, backend="cuda", out=out) is out
    assert_close(out, expected)


def test_cuda_stream_keyword_host_and_device():
    x, f, *rest = make_case(np.random.default_rng(8))
    expected, stream = reference(x, f, *rest), cuda.stream()
    assert_close(conv2d_transpose(x, f, *rest, backend="cuda", stream=stream), expected)
    result = conv2d_transpose(cuda.to_device(x, stream=stream), cuda.to_device(f, stream=stream), *rest,
                              stream=stream)
    stream.synchronize()
    assert_close(result, expected)


class Foreign:
    """A device array known only by ``__cuda_array_interface__``, like CuPy's or PyTorch's."""

    def __init__(self, device_array):
        self.base = device_array

    @property
    def __cuda_array_interface__(self):
        if hasattr(self.base, "__cuda_array_interface__"):
            return self.base.__cuda_array_interface__
        host = self.base.__array_interface__  # the simulator's device memory is host memory
        return {"version": 3, "shape": host["shape"], "typestr": host["typestr"],
                "data": host["data"], "strides": host["strides"], "stream": None}


def test_cuda_array_interface_objects_are_used_in_place(monkeypatch):
    x, f, shape, *rest = make_case(np.random.default_rng(9), data_format="NCHW")
    if not hasattr(cuda, "as_cuda_array"):  # the simulator cannot view foreign memory: emulate it
        with pytest.raises(TypeError, match="cannot use Foreign arrays"):
            conv2d_transpose(Foreign(cuda.to_device(x)), Foreign(cuda.to_device(f)), shape, *rest)

        def as_cuda_array(obj):
            holder = type("Holder", (), {"__array_interface__": dict(obj.__cuda_array_interface__, version=3)})
            return cuda.devicearray.FakeCUDAArray(np.asarray(holder()))

        monkeypatch.setattr(cuda, "as_cuda_array", as_cuda_array, raising=False)
    out = Foreign(cuda.device_array(tuple(shape), np.float32))
    assert conv2d_transpose(Foreign(cuda.to_device(x)), Foreign(cuda.to_device(f)), shape, *rest, out=out) is out
    assert_close(out.base, reference(x, f, shape, *rest))  # written through the view: no copy


@pytest.mark.parametrize("on_device", [False, True])
def test_cuda_empty_batch(on_device):
    x, f, *rest = make_case(np.random.default_rng(10), batch=0)
    if on_device:
        x, f = cuda.to_device(x), cuda.to_device(f)
    result = conv2d_transpose(x, f, *rest, backend="cuda")
    assert tuple(result.shape) == tuple(rest[0]) and result.dtype == np.float32


def test_cuda_is_deterministic_and_single_pass_launch(monkeypatch):
    monkeypatch.setattr(cuda_backend, "THREADS_PER_BLOCK", 256)
    monkeypatch.setattr(cuda_backend, "MAX_BLOCKS", 65536)
    args = make_case(np.random.default_rng(11), groups=2, strides=(2, 1), dilations=(2, 2), data_format="NCHW")
    first, second = (conv2d_transpose(*args, backend="cuda") for _ in range(2))
    np.testing.assert_array_equal(first, second)
    assert_close(first, reference(*args))


def golden_cases():
    """TF's answers, through host arrays and device arrays (bfloat16: host only, with ml_dtypes)."""
    if not GOLDEN.exists():  # pragma: no cover - the file ships with the repository
        return []
    with np.load(GOLDEN) as data:
        cases = json.loads(str(data["cases"]))
    return [
        pytest.param(i, case, on_device, id=f"{case['id']}-{where}")
        for where, on_device in (("host", False), ("device", True))
        for i, case in enumerate(cases)
        if case["dtype"] != "bfloat16" or (bfloat16 is not None and not on_device)
    ]


@pytest.mark.parametrize("index, case, on_device", golden_cases())
def test_cuda_matches_tensorflow_golden(index, case, on_device):
    dtype = bfloat16 if case["dtype"] == "bfloat16" else np.dtype(case["dtype"])
    with np.load(GOLDEN) as data:
        x, f, expected = (data[f"{name}{index}"].astype(dtype) for name in "xfy")
    if on_device:
        x, f = cuda.to_device(x), cuda.to_device(f)
    result = conv2d_transpose(x, f, case["output_shape"], case["strides"], case["padding"],
                              case["data_format"], case["dilations"], backend="cuda")
    assert_close(result, expected)


def test_cuda_errors_for_mixed_host_and_device_arguments():
    x, f, shape, *rest = make_case(np.random.default_rng(12))
    with pytest.raises(TypeError, match="filters on the host"):
        conv2d_transpose(cuda.to_device(x), f, shape, *rest)
    with pytest.raises(TypeError, match="out on the GPU but input, filters on the host"):
        conv2d_transpose(x, f, shape, *rest, out=cuda.device_array(tuple(shape), np.float32))
    with pytest.raises(TypeError, match="input, filters on the GPU but out on the host"):
        conv2d_transpose(cuda.to_device(x), cuda.to_device(f), shape, *rest, out=np.empty(shape, np.float32))


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_cuda_device_arrays_refused_by_host_backends(backend):
    x, f, *rest = make_case(np.random.default_rng(13))
    with pytest.raises(TypeError, match=f"backend '{backend}' takes host"):
        conv2d_transpose(cuda.to_device(x), cuda.to_device(f), *rest, backend=backend)
    with pytest.raises(ValueError, match="stream= is for the 'cuda' backend"):
        conv2d_transpose(x, f, *rest, backend=backend, stream=cuda.stream())


def test_cuda_device_out_errors():
    x, f, shape, *rest = make_case(np.random.default_rng(14))
    d_x, d_f = cuda.to_device(x), cuda.to_device(f)
    bad = {
        "shape": cuda.device_array((1, *shape[1:]), np.float32),
        "dtype": cuda.device_array(tuple(shape), np.float64),
        "C-contiguous": cuda.device_array((*shape[:-1], 2 * shape[-1]), np.float32)[..., ::2],
    }
    for match, out in bad.items():
        with pytest.raises(ValueError, match=match):
            conv2d_transpose(d_x, d_f, shape, *rest, out=out)
    square = cuda.to_device(np.ones((1, 3, 3, 2), np.float32))  # 1x1 kernel, stride 1: out can be input
    with pytest.raises(ValueError, match="memory not shared"):
        conv2d_transpose(square, cuda.to_device(np.ones((1, 1, 2, 2), np.float32)), [1, 3, 3, 2], 1, out=square)


@pytest.mark.skipif(bfloat16 is None, reason="needs ml_dtypes")
def test_cuda_device_bfloat16_is_refused():
    x, f, *rest = make_case(np.random.default_rng(15), "bfloat16")
    with pytest.raises(TypeError, match="cannot read input of dtype bfloat16"):
        conv2d_transpose(cuda.to_device(x), cuda.to_device(f), *rest)


def test_cuda_registry_entry(monkeypatch):
    assert cuda_backend.is_available() and "cuda" in numba_convt.available_backends()
    assert numba_convt.get_backend("CUDA").run_device is cuda_backend.run_device
    assert numba_convt.get_backend("auto").name == "cpu"  # host arrays never go to the GPU by themselves
    off = dataclasses.replace(_registry._lookup("cuda"), is_available=lambda: False)
    monkeypatch.setitem(_registry._registry, "cuda", off)
    with pytest.raises(ValueError, match="not available on this machine .*numba-cuda"):
        numba_convt.get_backend("cuda")


def run_python(code, **env):
    """Run ``code`` in a fresh interpreter (this environment plus ``env``); its stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cuda_import_numba_convt_does_not_import_numba_cuda():
    assert run_python("""
        import sys
        import numpy as np
        import numba_convt
        numba_convt.conv2d_transpose(np.ones((1, 2, 2, 1)), np.ones((1, 1, 1, 1)), [2, 2], 1, backend="numpy")
        assert numba_convt.get_backend("auto").name == "cpu"
        print(sorted(name for name in sys.modules if name.startswith("numba.cuda")))
    """).strip() == "[]"


def test_cuda_unusable_is_explained():
    """Without numba.cuda, or (outside the simulator) without a GPU, "cuda" is unlisted and explained."""
    blocked = run_python("""
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.startswith("numba.cuda"):
                    raise ImportError("No module named 'numba.cuda' (blocked)")

        sys.meta_path.insert(0, Block())
        import numba_convt
        assert "cuda" not in numba_convt.available_backends()
        try:
            numba_convt.get_backend("cuda")
        except ValueError as error:
            print(error)
    """)
    assert "backend 'cuda' is not available on this machine (importing it failed" in blocked
    no_simulator = run_python("""
        import numba_convt
        from numba import cuda
        if not cuda.is_available():
            try:
                numba_convt.get_backend("cuda")
            except ValueError as error:
                print(error)
    """, NUMBA_ENABLE_CUDASIM="0")
    assert not no_simulator or "numba-cuda" in no_simulator  # empty where a GPU is present


def test_cuda_simulator_leaves_cpu_kernels_native():
    from numba.core.registry import CPUDispatcher

    from numba_convt.backends import cpu

    args = make_case(np.random.default_rng(16))
    assert_close(conv2d_transpose(*args, backend="cpu"), reference(*args))
    assert not numba.config.DISABLE_JIT
    dispatchers = [obj for obj in gc.get_objects()  # wherever the modules keep them (some sit in tuples)
                   if issubclass(type(obj), numba.core.dispatcher.Dispatcher)  # type(): some objects hide __class__
                   and f"{obj.py_func.__module__}.".startswith(f"{cpu.__name__}.")]  # the package and its modules
    assert dispatchers and all(isinstance(d, CPUDispatcher) for d in dispatchers)
    assert any(d.signatures for d in dispatchers)  # compiled to machine code, simulator or not


def test_cuda_kernels_compile_for_the_gpu():
    """Type and compile every kernel to PTX for each dtype: needs NVVM (``numba-cuda[cu13]``), no GPU."""
    out = run_python("""
        import numpy as np
        from numba import types
        from numba import cuda
        from numba.cuda import compile_ptx
        from numba.np.numpy_support import from_dtype

        @cuda.jit(device=True, inline="always")
        def helper(value):
            return value

        def probe(a):
            a[0] = helper(a[0])

        try:  # needs numba-cuda with NVVM and NVRTC (numba's built-in target needs a GPU here)
            compile_ptx(probe, "(float32[:],)", cc=(8, 0))
        except Exception as error:
            raise SystemExit(print("SKIP", type(error).__name__, error))
        from numba_convt.backends import cuda as cb

        def arr(dtype, layout="C"):
            return types.Array(from_dtype(np.dtype(dtype)), 5, layout)

        for dtype in ("float32", "float64", "int32", "int64", "complex64", "complex128"):
            for layout in "CA":
                compile_ptx(cb._conv_transpose_ndhwc.py_func,
                            (arr(dtype, layout), arr(dtype, layout), arr(dtype)) + (types.int64,) * 13, cc=(8, 0))
        for kernel in (cb._copy, cb._to_channels_last, cb._to_channels_first):
            for src, dst in [("float16", "float32"), ("float32", "float16"), ("int32", "float64"),
                             ("int64", "complex128"), ("complex64", "complex64")]:
                compile_ptx(kernel.py_func, (arr(src, "A"), arr(dst)), cc=(8, 0))
        print("OK")
    """, NUMBA_ENABLE_CUDASIM="0")
    if out.startswith("SKIP"):
        pytest.skip(out)
    assert out.strip() == "OK"
