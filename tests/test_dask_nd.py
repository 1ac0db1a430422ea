"""``numba_convt.dask.conv_transpose``: 1-D and 3-D, lazy, equal to the in-memory call.

The 2-D machinery (windows, halos, pads) is tested in ``test_dask.py``; here
the same on a width-only and on a depth, height, width geometry: chunks along
batch and every spatial axis, uneven, smaller than the halo.
"""

import numpy as np
import pytest
from common import BACKENDS
from common_nd import FORMATS, direct, pad_before

da = pytest.importorskip("dask.array")

import numba_convt  # noqa: E402
import numba_convt.dask as ndask  # noqa: E402

# (id, channels-last input shape, chunks (batch, *spatial; an int or a tuple of sizes),
#  filters [*K, C_out/G, C_in], groups, output spatial sizes, strides,
#  padding (SAME/VALID, or per spatial axis [before, after]), dilations)
CASES = [
    ("1d-batch-and-width", (3, 11, 3), (2, 4), (3, 2, 3), 1, (22,), 2, "SAME", 1),
    ("1d-uneven", (2, 7, 2), (1, (1, 3, 2, 1)), (4, 3, 2), 1, (16,), 2, "VALID", 1),
    ("1d-halo-over-several-chunks", (1, 9, 2), (1, 1), (5, 2, 2), 1, (9,), 1, "SAME", 1),
    ("1d-stride>kernel-explicit", (1, 6, 2), (1, 2), (2, 3, 2), 1, (20,), 4, [[1, 2]], 1),
    ("1d-dilation-valid", (2, 9, 3), (1, 4), (3, 2, 3), 1, (15,), 1, "VALID", 3),
    ("1d-groups-dilated-same", (2, 8, 4), (1, 3), (3, 3, 4), 2, (16,), 2, "SAME", 2),
    ("3d-every-axis", (2, 5, 4, 3, 2), (1, 2, 2, 2), (3, 3, 3, 2, 2), 1, (10, 8, 6), 2, "SAME", 1),
    ("3d-uneven-valid", (1, 7, 5, 4, 2), (1, (3, 1, 3), (2, 3), (1, 3)), (2, 3, 2, 3, 2), 1, (20, 11, 8),
     [3, 2, 2], "VALID", 1),
    ("3d-explicit-dilated", (1, 4, 5, 3, 2), (1, 1, 2, 2), (3, 2, 2, 2, 2), 1, (8, 5, 4), [2, 1, 2],
     [[1, 2], [0, 1], [2, 0]], [2, 1, 1]),
    ("3d-depth-halo-over-several-chunks", (1, 6, 3, 3, 2), (1, 1, -1, 2), (5, 1, 2, 2, 2), 1, (6, 3, 3), 1,
     "SAME", 1),
    ("3d-depth-crop-below-stride-times-input", (1, 6, 2, 2, 2), (1, 2, 1, 1), (2, 1, 1, 2, 2), 1, (6, 2, 2),
     [3, 1, 1], [[5, 6], [0, 0], [0, 0]], 1),
    ("3d-groups", (2, 4, 3, 4, 4), (1, 2, 1, 3), (2, 2, 3, 3, 4), 2, (8, 6, 8), 2, "SAME", 1),
]
IDS = [case[0] for case in CASES]


def _arguments(case, channels_first, dtype=np.float64, seed=0):
    """The case's input, dask chunks, filters and keyword arguments in the chosen layout."""
    _, shape, chunks, filter_shape, groups, out_sizes, strides, padding, dilations = case
    rank = len(shape) - 2
    rng = np.random.default_rng(seed)
    x = rng.uniform(-4, 4, shape).astype(dtype)
    f = rng.uniform(-4, 4, filter_shape).astype(dtype)
    out_c, pairs = groups * filter_shape[-2], None if isinstance(padding, str) else list(padding)
    if channels_first:
        x, chunks = np.ascontiguousarray(np.moveaxis(x, -1, 1)), (chunks[0], -1, *chunks[1:])
        output_shape = [shape[0], out_c, *out_sizes]
        padding = padding if pairs is None else [[0, 0], [0, 0], *pairs]
    else:
        chunks, output_shape = (*chunks, -1), [shape[0], *out_sizes, out_c]
        padding = padding if pairs is None else [[0, 0], *pairs, [0, 0]]
    kwargs = dict(output_shape=output_shape, strides=strides, padding=padding,
                  data_format=FORMATS[rank][channels_first], dilations=dilations)
    return x, chunks, f, kwargs


@pytest.mark.parametrize("channels_first", [False, True], ids=["channels-last", "channels-first"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_equals_in_memory_call_exactly(case, channels_first):
    # Few channels, "cpu": the same taps summed in the same order per element (see test_dask.py).
    x, chunks, f, kwargs = _arguments(case, channels_first)
    expected = numba_convt.conv_transpose(x, f, **kwargs, backend="cpu")
    lazy = ndask.conv_transpose(da.from_array(x, chunks=chunks), f, **kwargs, backend="cpu")
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
    assert lazy.numblocks[0] > 1 or x.shape[0] == 1
    np.testing.assert_array_equal(lazy.compute(scheduler="threads"), expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES[1::2], ids=IDS[1::2])
def test_integers_exact_on_every_backend_and_by_definition(case, backend):
    x, chunks, f, kwargs = _arguments(case, False, np.int64)
    lazy = ndask.conv_transpose(da.from_array(x, chunks=chunks), f, **kwargs, backend=backend)
    result = lazy.compute(scheduler="sync" if backend == "cuda" else "threads")
    np.testing.assert_array_equal(result, numba_convt.conv_transpose(x, f, **kwargs, backend=backend))
    _, shape, _, filter_shape, _, out_sizes, strides, padding, dilations = case
    rank = len(shape) - 2
    strides, dilations = (np.broadcast_to(v, rank).tolist() for v in (strides, dilations))
    kind = padding if isinstance(padding, str) else "EXPLICIT"
    befores = [pad_before(*sizes, kind, 0 if kind != "EXPLICIT" else padding[i][0])
               for i, sizes in enumerate(zip(shape[1:-1], out_sizes, filter_shape[:rank], strides, dilations))]
    np.testing.assert_array_equal(
        result, direct(x, f, out_sizes, result.shape[-1], strides, dilations, befores))


def test_output_chunks_are_input_chunks_times_stride_on_every_axis():
    x = da.zeros((2, 5, 7, 4, 3), chunks=(1, 2, (3, 4), 4, 3))
    result = ndask.conv_transpose(x, np.ones((3, 2, 3, 2, 3)), [2, 10, 20, 8, 2], [2, 3, 2], "SAME")
    assert result.chunks == ((1, 1), (4, 4, 2), (9, 11), (8,), (2,))
    x = da.zeros((2, 3, 11), chunks=(1, 3, 4))  # NCW: channels rechunked into one
    result = ndask.conv_transpose(x, np.ones((3, 2, 3)), [2, 2, 22], 2, data_format="NCW")
    assert result.chunks == ((1, 1), (2,), (8, 8, 6))


def test_2d_output_shape_dispatches_to_the_2d_call():
    x, f = np.arange(2 * 6 * 5 * 3, dtype=np.float64).reshape(2, 3, 6, 5), np.ones((3, 3, 2, 3))
    lazy = ndask.conv_transpose(da.from_array(x, chunks=(1, 3, 2, 3)), f, [2, 2, 12, 10], 2, data_format="NCHW")
    np.testing.assert_array_equal(lazy, numba_convt.conv_transpose(x, f, [2, 2, 12, 10], 2, data_format="NCHW"))


def _never_computed(x, chunks):
    """``x`` as a dask array whose blocks raise if anything computes them."""
    def fail(block):
        raise AssertionError("the input was computed")
    return da.from_array(x, chunks=chunks).map_blocks(fail, dtype=x.dtype)


@pytest.mark.parametrize("case", [CASES[0], CASES[6]], ids=[IDS[0], IDS[6]])
def test_lazy_until_computed(case, monkeypatch):
    x, chunks, f, kwargs = _arguments(case, False)
    calls = []
    in_memory = numba_convt.api.conv_transpose
    monkeypatch.setattr(numba_convt.api, "conv_transpose", lambda *a, **k: calls.append(1) or in_memory(*a, **k))
    lazy = ndask.conv_transpose(_never_computed(x, chunks), f, **kwargs)
    assert calls == []
    lazy = ndask.conv_transpose(da.from_array(x, chunks=chunks), f, **kwargs)
    assert calls == []
    lazy.compute(scheduler="sync")
    assert len(calls) == np.prod(lazy.numblocks)  # one in-memory call per output block


@pytest.mark.parametrize("shape, output_shape", [((0, 4, 2), [0, 8, 3]), ((1, 2, 0, 3, 2), [1, 4, 0, 6, 3])])
def test_empty_input_or_output(shape, output_shape):
    x, f = np.ones(shape), np.ones((3,) * (len(shape) - 2) + (3, 2))
    expected = numba_convt.conv_transpose(x, f, output_shape, 2)
    np.testing.assert_array_equal(ndask.conv_transpose(da.from_array(x), f, output_shape, 2), expected)


GOOD = {1: dict(input=np.ones((2, 6, 3)), filters=np.ones((3, 2, 3)), output_shape=[2, 12, 2], strides=2),
        3: dict(input=np.ones((2, 4, 6, 5, 3)), filters=np.ones((2, 3, 3, 2, 3)), output_shape=[2, 8, 12, 10, 2],
                strides=2)}
BAD = [
    (1, dict(output_shape=[2, 13, 2])),  # inconsistent width
    (1, dict(output_shape=[12])),  # no rank
    (1, dict(output_shape=[1, 2, 3, 4, 5, 6])),  # no rank either
    (1, dict(output_shape=[2, 2, 12])),  # NWC's channels 12, not 2
    (1, dict(data_format="NHWC")),
    (1, dict(strides=[1, 2])),
    (1, dict(padding=[[0, 0], [1, 1]])),
    (1, dict(filters=np.ones((3, 3, 2, 3)))),  # 2-D filters
    (1, dict(backend="nope")),
    (3, dict(output_shape=[2, 9, 12, 10, 2])),  # inconsistent depth
    (3, dict(output_shape=[2, 8, 12, 10, 5])),  # channels not a multiple of filters.shape[3]
    (3, dict(strides=[1, 2, 2, 2, 2])),
    (3, dict(dilations=[2, 2])),
    (3, dict(padding="FULL")),
    (3, dict(data_format="NCHW")),
    (3, dict(filters=np.ones((2, 3, 3, 2, 4)))),  # C_in mismatch
    (3, dict(input=np.ones((2, 6, 5, 3)))),  # 4-D input, 5 values of output_shape
    (3, dict(filters=np.ones((2, 3, 3, 2, 3), np.bool_))),
]


@pytest.mark.parametrize("rank, bad", BAD, ids=lambda v: repr(v)[:40])
def test_bad_arguments_raise_at_call_time_as_in_memory(rank, bad):
    arguments = GOOD[rank] | bad
    with pytest.raises((ValueError, TypeError)) as expected:
        numba_convt.conv_transpose(**arguments)
    x = arguments.pop("input")
    with pytest.raises(expected.type) as raised:
        ndask.conv_transpose(_never_computed(x, 2), **arguments)
    assert str(raised.value) == str(expected.value)


def test_refuses_dask_filters_and_unknown_chunks():
    x, f = da.ones((2, 4, 6, 5, 3), chunks=2), np.ones((2, 3, 3, 2, 3))
    with pytest.raises(TypeError, match=r"filters must be an in-memory array"):
        ndask.conv_transpose(x, da.from_array(f), [2, 8, 12, 10, 2], 2)
    unknown = x[x[:, 0, 0, 0, 0] > 0]
    with pytest.raises(ValueError, match=r"unknown size.*compute_chunk_sizes"):
        ndask.conv_transpose(unknown, f, [2, 8, 12, 10, 2], 2)
