"""``numba_convt.dask.conv2d_transpose``: lazy, block by block, equal to the in-memory call."""

import subprocess
import sys

import numpy as np
import pytest
from common import BACKENDS, assert_close

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import numba_convt  # noqa: E402
import numba_convt.dask as ndask  # noqa: E402

SCHEDULERS = ["sync", "threads"]


def _scheduler(backend):
    """Threads, except for "cuda": numba's CUDA simulator (the tests' default)
    swaps module globals while a kernel runs, so concurrent calls break it."""
    return "sync" if backend == "cuda" else "threads"

# (id, input NHWC shape, (batch, height, width) chunks, filters [KH, KW, C_out/G, C_in],
#  groups, output [H, W], strides, padding (SAME/VALID, or [[top, bottom], [left, right]]), dilations)
CASES = [
    ("batch-only", (4, 6, 7, 3), (1, -1, -1), (3, 3, 2, 3), 1, (12, 14), 2, "SAME", 1),
    ("odd-chunks", (2, 11, 9, 3), (1, 3, 5), (3, 3, 2, 3), 1, (21, 18), 2, "SAME", 1),
    ("chunks-of-1", (2, 7, 5, 2), (2, 1, 1), (4, 4, 3, 2), 1, (17, 12), 2, "VALID", 1),
    ("halo-over-several-chunks", (1, 9, 8, 2), (1, 1, 2), (5, 5, 2, 2), 1, (9, 8), 1, "SAME", 1),
    ("stride>kernel-valid", (2, 6, 7, 3), (1, 2, 3), (2, 2, 2, 3), 1, (19, 20), 3, "VALID", 1),
    ("stride>kernel-same", (2, 6, 7, 3), (1, 4, 3), (2, 2, 2, 3), 1, (17, 21), 3, "SAME", 1),
    ("stride>kernel-explicit", (1, 5, 6, 2), (1, 2, 4), (2, 2, 3, 2), 1, (18, 22), 4, [[1, 2], [3, 0]], 1),
    ("dilation-same", (2, 8, 7, 3), (1, 3, 2), (3, 3, 2, 3), 1, (16, 13), 2, "SAME", 2),
    ("dilation-valid", (1, 8, 9, 2), (1, 5, 4), (3, 2, 2, 2), 1, (14, 11), 1, "VALID", [3, 2]),
    ("explicit-crops-below-stride-times-input", (1, 10, 10, 2), (1, 3, 3), (2, 2, 3, 2), 1, (4, 18), 2,
     [[7, 9], [3, 0]], 1),
    ("groups", (2, 7, 6, 4), (2, 3, 4), (3, 3, 3, 4), 2, (14, 11), 2, "SAME", 1),
    ("groups-explicit-dilated", (1, 6, 6, 6), (1, 4, 5), (3, 3, 2, 6), 3, (12, 15), 2, [[2, 1], [0, 1]], 2),
    ("anisotropic", (2, 9, 8, 3), (1, 4, 3), (3, 2, 2, 3), 1, (18, 24), [2, 3], "SAME", [1, 2]),
]


def _arguments(case, data_format, dtype=np.float64, seed=0):
    """The case's arrays and keyword arguments in ``data_format``."""
    _, shape, chunks, filter_shape, groups, (out_h, out_w), strides, padding, dilations = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-4, 4, shape).astype(dtype)
    f = rng.uniform(-4, 4, filter_shape).astype(dtype)
    batch, channels = shape[0], groups * filter_shape[2]
    if data_format == "NCHW":
        x, chunks = x.transpose(0, 3, 1, 2).copy(), (chunks[0], -1, *chunks[1:])
        output_shape = [batch, channels, out_h, out_w] if groups > 1 else [out_h, out_w]
        padding = padding if isinstance(padding, str) else [[0, 0], [0, 0], *padding]
    else:
        chunks = (*chunks, -1)
        output_shape = [batch, out_h, out_w, channels] if groups > 1 else [out_h, out_w]
        padding = padding if isinstance(padding, str) else [[0, 0], *padding, [0, 0]]
    kwargs = dict(output_shape=output_shape, strides=strides, padding=padding,
                  data_format=data_format, dilations=dilations)
    return x, chunks, f, kwargs


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_equals_in_memory_call_exactly(case, data_format, scheduler):
    # Few channels: the "cpu" backend's direct kernels sum each output element
    # over the same taps in the same order whatever the array's size, so
    # every block is bitwise the slice of the in-memory result.
    x, chunks, f, kwargs = _arguments(case, data_format)
    expected = numba_convt.conv2d_transpose(x, f, **kwargs, backend="cpu")
    result = ndask.conv2d_transpose(da.from_array(x, chunks=chunks), f, **kwargs, backend="cpu")
    assert result.shape == expected.shape and result.dtype == expected.dtype
    np.testing.assert_array_equal(result.compute(scheduler=scheduler), expected)


# Python 3.12+ warns when forking a process that runs threads (Numba's pool does).
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("context", ["spawn", "fork"])  # dask's default, and the one that used to hang
def test_processes_scheduler_after_parallel_calls(context):
    """Worker processes started after this process ran parallel kernels."""
    rng = np.random.default_rng(4)
    x, f = rng.integers(-9, 9, (2, 16, 16, 24), np.int32), rng.integers(-9, 9, (3, 3, 8, 24), np.int32)
    expected = numba_convt.conv2d_transpose(x, f, [32, 32], 2)  # large enough for parallel kernels
    lazy = ndask.conv2d_transpose(da.from_array(x, chunks=(1, -1, -1, -1)), f, [32, 32], 2)
    with dask.config.set({"multiprocessing.context": context}):
        np.testing.assert_array_equal(lazy.compute(scheduler="processes", num_workers=2), expected)


def test_local_cluster_of_processes():
    distributed = pytest.importorskip("distributed")
    x, chunks, f, kwargs = _arguments(CASES[10], "NHWC")
    expected = numba_convt.conv2d_transpose(x, f, **kwargs)
    lazy = ndask.conv2d_transpose(da.from_array(x, chunks=chunks), f, **kwargs)
    with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
          distributed.Client(cluster) as client):
        np.testing.assert_array_equal(client.compute(lazy).result(), expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES[1:3] + CASES[10:11], ids=[case[0] for case in CASES[1:3] + CASES[10:11]])
def test_integers_exact_on_every_backend(case, backend):
    x, chunks, f, kwargs = _arguments(case, "NHWC", np.int32)
    expected = numba_convt.conv2d_transpose(x, f, **kwargs, backend=backend)
    result = ndask.conv2d_transpose(da.from_array(x, chunks=chunks), f, **kwargs, backend=backend)
    np.testing.assert_array_equal(result.compute(scheduler=_scheduler(backend)), expected)


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_matrix_product_paths_within_tolerance(backend, dtype):
    # Not exact: the "numpy" backend's per-tap matmul and the "cpu" backend's
    # BLAS path (float/complex, >= 16 input channels) sum over the channels in
    # an order NumPy/OpenBLAS pick from the matrices' sizes, which differ per
    # block (measured: ~1e-6 relative for float32). Hence the tolerances.
    rng = np.random.default_rng(3)
    x = (rng.uniform(-1, 1, (3, 13, 11, 16)) + (1j if dtype == np.complex128 else 0)).astype(dtype)
    f = rng.uniform(-1, 1, (4, 4, 8, 16)).astype(dtype)
    expected = numba_convt.conv2d_transpose(x, f, [26, 22], 2, backend=backend)
    result = ndask.conv2d_transpose(da.from_array(x, chunks=(2, 1, 3, 8)), f, [26, 22], 2, backend=backend)
    assert_close(result.compute(scheduler="threads"), expected, dtype)


def test_output_chunks_are_input_chunks_times_stride():
    x = da.zeros((2, 11, 9, 3), chunks=(1, 4, 5, 3))
    result = ndask.conv2d_transpose(x, np.ones((3, 3, 2, 3)), [22, 17], 2)
    # last chunks take the remainder: 22 - 2 * 8 and 17 - 2 * 5
    assert result.chunks == ((1, 1), (8, 8, 6), (10, 7), (2,))


def test_channels_are_rechunked_into_one():
    x = np.arange(2 * 5 * 4 * 6, dtype=np.float64).reshape(2, 6, 5, 4)  # NCHW
    f = np.ones((3, 3, 2, 6))
    result = ndask.conv2d_transpose(da.from_array(x, chunks=(1, 2, 3, 2)), f, [10, 8], 2, data_format="NCHW")
    assert result.chunks[1] == (2,)
    np.testing.assert_array_equal(result, numba_convt.conv2d_transpose(x, f, [10, 8], 2, data_format="NCHW"))


@pytest.mark.parametrize(("shape", "output_shape", "padding"), [
    ((0, 4, 4, 2), [0, 8, 8, 3], "SAME"),
    ((1, 0, 4, 2), [1, 2, 9, 3], "VALID"),
    ((1, 3, 3, 2), [1, 0, 7, 3], [[0, 0], [4, 3], [0, 0], [0, 0]]),
])
def test_empty_input_or_output(shape, output_shape, padding):
    x, f = np.ones(shape), np.ones((3, 3, 3, 2))
    expected = numba_convt.conv2d_transpose(x, f, output_shape, 2, padding)
    np.testing.assert_array_equal(ndask.conv2d_transpose(da.from_array(x), f, output_shape, 2, padding), expected)


def _never_computed(x, chunks):
    """``x`` as a dask array whose blocks raise if anything computes them."""
    def fail(block):
        raise AssertionError("the input was computed")
    return da.from_array(x, chunks=chunks).map_blocks(fail, dtype=x.dtype)


def test_lazy_until_computed(monkeypatch):
    calls = []
    in_memory = numba_convt.api.conv_transpose  # what each block calls
    monkeypatch.setattr(numba_convt.api, "conv_transpose", lambda *a, **k: calls.append(1) or in_memory(*a, **k))
    x, f = np.ones((2, 6, 5, 3)), np.ones((3, 3, 2, 3))
    result = ndask.conv2d_transpose(_never_computed(x, (1, 4, 2, 3)), f, [12, 10], 2)
    assert calls == [] and result.numblocks == (2, 2, 3, 1)
    lazy = ndask.conv2d_transpose(da.from_array(x, chunks=(1, 4, 2, 3)), f, [12, 10], 2)
    assert calls == []
    lazy.compute(scheduler="sync")
    assert len(calls) == 2 * 2 * 3  # one in-memory call per output block


def test_lazy_result_may_exceed_memory_only_blocks_must_fit():
    """A result of 16x this machine's memory is built lazily; a slice of it computes."""
    import os

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    side = 1 << 12
    batch = -(-16 * memory // (4 * side * side * 4 * 4))  # float32, stride 2: 4x the pixels, 4 channels
    x = da.ones((batch, side, side, 1), np.float32, chunks=(1, 1024, 1024, 1))
    f = np.ones((2, 2, 4, 1), np.float32)
    y = ndask.conv2d_transpose(x, f, [2 * side, 2 * side], 2, "VALID")
    assert y.nbytes > 15 * memory
    assert (y[-1, :3, :3].compute() == 1).all()


BAD_ARGUMENTS = [
    dict(output_shape=[13, 10]),  # inconsistent height
    dict(output_shape=[3, 12, 10, 2]),  # wrong batch
    dict(output_shape=[2, 12, 10, 5]),  # channels not a multiple of filters.shape[2]
    dict(strides=0),
    dict(strides=[1, 2, 2, 2]),
    dict(padding="FULL"),
    dict(padding=[[0, 0], [1, 1], [1, 1]]),
    dict(data_format="NWHC"),
    dict(dilations=[1, 2, 2]),
    dict(backend="nope"),
    dict(filters=np.ones((3, 3, 2, 4))),  # C_in mismatch
    dict(filters=np.ones((3, 3, 2, 3), np.bool_)),  # unsupported dtype
    dict(input=np.ones((2, 6, 5))),  # 3-D input
]


@pytest.mark.parametrize("bad", BAD_ARGUMENTS, ids=lambda bad: repr(bad)[:50])
def test_bad_arguments_raise_at_call_time_as_in_memory(bad):
    arguments = dict(input=np.ones((2, 6, 5, 3)), filters=np.ones((3, 3, 2, 3)),
                     output_shape=[12, 10], strides=2) | bad
    with pytest.raises((ValueError, TypeError)) as expected:
        numba_convt.conv2d_transpose(**arguments)
    x = arguments.pop("input")
    with pytest.raises(expected.type) as raised:
        ndask.conv2d_transpose(_never_computed(x, (1, 4, 2, 3)[:x.ndim]), **arguments)
    assert str(raised.value) == str(expected.value)


def test_refuses_dask_filters_and_unknown_chunks():
    x, f = da.ones((2, 6, 5, 3), chunks=2), np.ones((3, 3, 2, 3))
    with pytest.raises(TypeError, match=r"filters must be an in-memory array.*filters.compute\(\)"):
        ndask.conv2d_transpose(x, da.from_array(f), [12, 10], 2)
    unknown = x[x[:, 0, 0, 0] > 0]  # boolean mask: batch size unknown until computed
    with pytest.raises(ValueError, match=r"unknown size.*compute_chunk_sizes"):
        ndask.conv2d_transpose(unknown, f, [12, 10], 2)


def test_without_dask_imports_and_says_how_to_install():
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "import numba_convt.dask\n"
        "try:\n"
        "    numba_convt.dask.conv2d_transpose(None, None, [1, 1], 1)\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install numba-convt[dask]" in done.stdout
