"""The ``"cuda"`` backend in 1-D and 3-D, against the NumPy reference backend.

Runs in numba's CUDA simulator (``conftest.py``) or, with
``NUMBA_ENABLE_CUDASIM=0``, on a GPU. Shapes stay tiny and launches use
8-thread blocks, at most 4 of them, so every launch grid-strides.
"""

import numpy as np
import pytest
from test_cuda import assert_close, random_array

from numba_convt import conv1d_transpose, conv3d_transpose, conv_transpose
from numba_convt._normalize import legal_output_sizes

cuda = pytest.importorskip("numba.cuda")
cuda_backend = pytest.importorskip("numba_convt.backends.cuda")

pytestmark = pytest.mark.filterwarnings("ignore:Grid size")
FUNCTIONS = {1: conv1d_transpose, 3: conv3d_transpose}
FORMATS = {1: ("NWC", "NCW"), 3: ("NDHWC", "NCDHW")}
SIZES = {1: dict(in_sizes=(9,), k=(3,)), 3: dict(in_sizes=(2, 3, 2), k=(2, 2, 3))}


@pytest.fixture(autouse=True)
def small_grid(monkeypatch):
    """8-thread blocks, at most 4 of them: every launch is multi-block and grid-strides."""
    monkeypatch.setattr(cuda_backend, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(cuda_backend, "MAX_BLOCKS", 4)


def make_case(rng, rank, dtype="float32", *, strides=None, dilations=None, padding="SAME", channels_first=False,
              batch=2, groups=1, group_in=2, group_out=2, largest=False, in_sizes=None, k=None):
    """Arguments ``(x, f, output_shape, strides, padding, data_format, dilations)`` of a legal ``rank``-D call."""
    in_sizes, k = in_sizes or SIZES[rank]["in_sizes"], k or SIZES[rank]["k"]
    strides, dilations = strides or (1,) * rank, dilations or (1,) * rank
    kind = padding if isinstance(padding, str) else "EXPLICIT"
    spatial = padding if kind == "EXPLICIT" else [(0, 0)] * rank
    sizes = [legal_output_sizes(n, kk, s, d, kind, *p)
             for n, kk, s, d, p in zip(in_sizes, k, strides, dilations, spatial)]
    out_sizes = [r[-1] if largest else r[0] for r in sizes]
    in_c, out_c = groups * group_in, groups * group_out
    x_shape = (batch, in_c, *in_sizes) if channels_first else (batch, *in_sizes, in_c)
    output_shape = [batch, out_c, *out_sizes] if channels_first else [batch, *out_sizes, out_c]
    if kind == "EXPLICIT":
        padding = [[0, 0], [0, 0], *padding] if channels_first else [[0, 0], *padding, [0, 0]]
    x, f = random_array(rng, x_shape, dtype), random_array(rng, (*k, group_out, in_c), dtype)
    return x, f, output_shape, list(strides), padding, FORMATS[rank][channels_first], list(dilations)


def reference(rank, *args):
    return FUNCTIONS[rank](*args, backend="numpy")


GEOMETRIES = {  # (strides, dilations) per rank
    1: {"s1-d1": ((1,), (1,)), "s3-d1": ((3,), (1,)), "s1-d2": ((1,), (2,)), "s2-d3": ((2,), (3,))},
    3: {"s1-d1": ((1, 1, 1), (1, 1, 1)), "s3x1x2-d1": ((3, 1, 2), (1, 1, 1)),
        "s1-d2x1x2": ((1, 1, 1), (2, 1, 2)), "s2x2x1-d3x1x1": ((2, 2, 1), (3, 1, 1))},
}
PADDINGS = {"same": "SAME", "valid": "VALID", 1: [(2, 1)], 3: [(1, 2), (0, 1), (2, 0)]}


@pytest.mark.parametrize("channels_first", [False, True], ids=["last", "first"])
@pytest.mark.parametrize("padding", ["same", "valid", "explicit"])
@pytest.mark.parametrize("rank, geometry", [(r, g) for r in (1, 3) for g in GEOMETRIES[r]])
def test_cuda_nd_matches_reference_geometry(rank, geometry, padding, channels_first):
    rng = np.random.default_rng(len(geometry) * 7 + len(padding) + rank)
    strides, dilations = GEOMETRIES[rank][geometry]
    pads = PADDINGS[rank if padding == "explicit" else padding]
    for largest in (False, True):  # the largest legal output has positions no tap reaches
        args = make_case(rng, rank, strides=strides, dilations=dilations, padding=pads,
                         channels_first=channels_first, largest=largest)
        assert_close(FUNCTIONS[rank](*args, backend="cuda"), reference(rank, *args))


@pytest.mark.parametrize("channels_first", [False, True], ids=["last", "first"])
@pytest.mark.parametrize("groups, group_in, group_out", [(2, 2, 3), (3, 1, 2)])
@pytest.mark.parametrize("rank", [1, 3])
def test_cuda_nd_matches_reference_groups(rank, groups, group_in, group_out, channels_first):
    args = make_case(np.random.default_rng(groups), rank, strides=(2,) * rank, groups=groups, group_in=group_in,
                     group_out=group_out, channels_first=channels_first, largest=True)
    assert_close(FUNCTIONS[rank](*args, backend="cuda"), reference(rank, *args))


DTYPES = ["float32", "float64", "int32", "int64", "complex64", "complex128", "float16"]


@pytest.mark.parametrize("channels_first", [False, True], ids=["last", "first"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rank", [1, 3])
def test_cuda_nd_dtypes_host_and_device(rank, dtype, channels_first):
    x, f, *rest = make_case(np.random.default_rng(3), rank, dtype, groups=2, channels_first=channels_first,
                            strides=(2,) * rank, dilations=(1,) * (rank - 1) + (2,), padding=PADDINGS[rank])
    expected = reference(rank, x, f, *rest)
    assert_close(FUNCTIONS[rank](x, f, *rest, backend="cuda"), expected)
    result = FUNCTIONS[rank](cuda.to_device(x), cuda.to_device(f), *rest)  # "auto" picks "cuda"
    assert getattr(result, "__cuda_ndarray__", False) and not isinstance(result, np.ndarray)
    assert_close(result, expected)


@pytest.mark.parametrize("channels_first", [False, True], ids=["last", "first"])
@pytest.mark.parametrize("rank", [1, 3])
def test_cuda_nd_out_on_host_and_device(rank, channels_first):
    x, f, shape, *rest = make_case(np.random.default_rng(6), rank, "float64", strides=(2,) * rank,
                                   channels_first=channels_first)
    expected = reference(rank, x, f, shape, *rest)
    out = np.empty(shape, np.float64)
    assert FUNCTIONS[rank](x, f, shape, *rest, backend="cuda", out=out) is out
    assert_close(out, expected)
    d_out = cuda.device_array(tuple(shape), np.float64)
    assert FUNCTIONS[rank](cuda.to_device(x), cuda.to_device(f), shape, *rest, out=d_out) is d_out
    assert_close(d_out, expected)


@pytest.mark.parametrize("on_device", [False, True], ids=["host", "device"])
@pytest.mark.parametrize("rank", [1, 3])
def test_cuda_nd_conv_transpose_dispatch(rank, on_device):
    x, f, *rest = make_case(np.random.default_rng(7), rank, strides=(2,) * rank, channels_first=rank == 3)
    expected = reference(rank, x, f, *rest)
    if on_device:
        x, f = cuda.to_device(x), cuda.to_device(f)
    assert_close(conv_transpose(x, f, *rest, backend="cuda"), expected)


@pytest.mark.parametrize("channels_first", [False, True], ids=["last", "first"])
@pytest.mark.parametrize("rank", [1, 3])
def test_cuda_nd_strided_device_views_mixed_dtypes(rank, channels_first):
    x, f, *rest = make_case(np.random.default_rng(8), rank, "int32", channels_first=channels_first)
    f = f.astype(np.float32)  # result_type(int32, float32) = float64
    wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
    wide[..., ::2] = x
    view = cuda.to_device(wide)[..., ::2]  # a non-contiguous device view
    assert_close(FUNCTIONS[rank](view, cuda.to_device(f), *rest, backend="cuda"), reference(rank, x, f, *rest))


@pytest.mark.parametrize("on_device", [False, True], ids=["host", "device"])
@pytest.mark.parametrize("rank", [1, 3])
def test_cuda_nd_empty_batch(rank, on_device):
    x, f, *rest = make_case(np.random.default_rng(9), rank, batch=0)
    if on_device:
        x, f = cuda.to_device(x), cuda.to_device(f)
    result = FUNCTIONS[rank](x, f, *rest, backend="cuda")
    assert tuple(result.shape) == tuple(rest[0]) and result.dtype == np.float32


def test_cuda_nd_single_pass_launch_is_deterministic(monkeypatch):
    monkeypatch.setattr(cuda_backend, "THREADS_PER_BLOCK", 256)
    monkeypatch.setattr(cuda_backend, "MAX_BLOCKS", 65536)
    args = make_case(np.random.default_rng(10), 3, groups=2, strides=(2, 1, 2), dilations=(2, 1, 1),
                     channels_first=True)
    first, second = (conv3d_transpose(*args, backend="cuda") for _ in range(2))
    np.testing.assert_array_equal(first, second)
    assert_close(first, reference(3, *args))


class StrictDeviceArray:
    """numba-cuda's ``DeviceNDArray`` as ``_as_5d`` uses it: ``reshape`` of a
    non-contiguous array raises; the constructor views memory at given strides."""

    def __init__(self, shape, strides, dtype, stream=0, gpu_data=None):
        self.host = np.lib.stride_tricks.as_strided(gpu_data, shape, strides)
        self.shape, self.strides, self.dtype, self.gpu_data = self.host.shape, strides, dtype, gpu_data

    def reshape(self, *shape):
        raise NotImplementedError("operation requires copying")


@pytest.mark.parametrize("at, shape", [(0, (3, 2, 4)), (1, (2, 5, 3)), (1, (2, 3, 5, 3)), (2, (2, 3, 5))])
def test_cuda_as_5d_views_strided_arrays_without_reshape(at, shape):
    """Where numba-cuda refuses to reshape, unit axes are added by strides alone."""
    wide = np.arange(np.prod(shape) * 2.0).reshape(*shape[:-1], 2 * shape[-1])
    view = wide[..., ::2]
    strict = StrictDeviceArray(view.shape, view.strides, view.dtype, gpu_data=view)
    result = cuda_backend._as_5d(strict, at)
    expected = np.expand_dims(view, tuple(range(at, at + 5 - view.ndim)))
    assert isinstance(result, StrictDeviceArray) and result.shape == expected.shape
    np.testing.assert_array_equal(result.host, expected)
