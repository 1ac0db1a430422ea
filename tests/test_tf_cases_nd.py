"""TensorFlow's own 1-D and 3-D tests, ported: conv1d_transpose_test.py,
conv3d_transpose_test.py and nn_test.py's ConvTransposeTest (spec
tf_nd_semantics.md sections 7.1-7.3).

Inputs and filters are all ones, so every output counts the (tap, input
channel) pairs reaching it; the expected values are TF's closed forms,
written out here. TF runs its channels-first cases on CUDA only; here every
backend runs them.
"""

import itertools

import numpy as np
import pytest
from common import BACKENDS

import numba_convt

DTYPES_1D = [np.float32, np.int32]  # conv1d_transpose_test.py: float32; TF's 1-D op also takes int32
DTYPES_3D = [np.float32]  # conv3d_transpose_test.py's


def _run(function, x_shape, f_shape, out_shape, stride, padding, data_format, dtype, backend):
    """All-ones call, ``x_shape``/``out_shape`` channels-last; the result channels-last."""
    first = data_format[1] == "C"
    rank = len(x_shape) - 2
    x = np.ones(x_shape, dtype)
    if first:
        x, out_shape = np.moveaxis(x, -1, 1), [out_shape[0], out_shape[-1], *out_shape[1:-1]]
    strides = [1, 1, *[stride] * rank] if first else [1, *[stride] * rank, 1]  # TF's tests: rank + 2 values
    y = function(x, np.ones(f_shape, dtype), out_shape, strides, padding, data_format, backend=backend)
    assert y.dtype == dtype
    return np.moveaxis(y, 1, -1) if first else y


def _interior(i, n):
    return 0 < i < n - 1


# ----------------------------------------------------------------------------- 7.1 conv1d_transpose_test.py
CASES_1D = pytest.mark.parametrize(
    "backend, data_format, dtype", list(itertools.product(BACKENDS, ["NWC", "NCW"], DTYPES_1D))
)


def _conv1d(out_w, stride, padding, data_format, dtype, backend):
    in_w = 6 if stride == 1 else 4
    return _run(numba_convt.conv1d_transpose, [2, in_w, 3], [3, 2, 3], [2, out_w, 2], stride, padding,
                data_format, dtype, backend)


def _assert_rows(y, row):
    """Every (batch, channel) row of the NWC result ``y`` is ``row``."""
    np.testing.assert_array_equal(y, np.broadcast_to(np.array(row, y.dtype)[None, :, None], y.shape))


@CASES_1D
def test_conv1d_single_stride(backend, data_format, dtype):
    y = _conv1d(6, 1, "SAME", data_format, dtype, backend)
    _assert_rows(y, [6 + 3 * _interior(w, 6) for w in range(6)])


@CASES_1D
def test_conv1d_same(backend, data_format, dtype):
    y = _conv1d(8, 2, "SAME", data_format, dtype, backend)
    _assert_rows(y, [3 + 3 * (w % 2 == 0 and 0 < w < 7) for w in range(8)])


@CASES_1D
def test_conv1d_valid(backend, data_format, dtype):
    y = _conv1d(9, 2, "VALID", data_format, dtype, backend)
    row = [3 + 3 * (w % 2 == 0 and 1 < w < 7) for w in range(9)]
    row[0], row[8] = row[1], row[7]
    _assert_rows(y, row)


# ----------------------------------------------------------------------------- 7.2 conv3d_transpose_test.py
CASES_3D = pytest.mark.parametrize(
    "backend, data_format, dtype", list(itertools.product(BACKENDS, ["NDHWC", "NCDHW"], DTYPES_3D))
)


def _conv3d(out_dhw, stride, padding, data_format, dtype, backend):
    return _run(numba_convt.conv3d_transpose, [2, 5, 6, 4, 3], [3, 3, 3, 2, 3], [2, *out_dhw, 2], stride,
                padding, data_format, dtype, backend)


def _expected_3d(shape, count, dtype):
    """``[2, *shape, 2]`` holding ``count(d, h, w)`` at every position."""
    values = np.array([[[count(d, h, w) for w in range(shape[2])] for h in range(shape[1])] for d in range(shape[0])])
    return np.broadcast_to(values[None, ..., None], (2, *shape, 2)).astype(dtype)


def _single_stride_count(*idx):
    """Stride 1, SAME, K = 3 on (5, 6, 4): 2 taps at the borders, 3 inside, times C_in = 3."""
    return 3 * [8, 12, 18, 27][sum(_interior(i, n) for i, n in zip(idx, (5, 6, 4)))]


@CASES_3D
def test_conv3d_single_stride(backend, data_format, dtype):
    y = _conv3d((5, 6, 4), 1, "SAME", data_format, dtype, backend)
    np.testing.assert_array_equal(y, _expected_3d((5, 6, 4), _single_stride_count, dtype))


@CASES_3D
def test_conv3d_same(backend, data_format, dtype):
    shape = (10, 12, 8)
    y = _conv3d(shape, 2, "SAME", data_format, dtype, backend)

    def count(*idx):
        return 3 * 2 ** sum(i % 2 == 0 and _interior(i, n) for i, n in zip(idx, shape))

    np.testing.assert_array_equal(y, _expected_3d(shape, count, dtype))


@CASES_3D
def test_conv3d_valid(backend, data_format, dtype):
    shape = (11, 13, 9)
    y = _conv3d(shape, 2, "VALID", data_format, dtype, backend)

    def count(*idx):
        return 3 * 2 ** sum(i % 2 == 0 and 1 < i < n - 2 for i, n in zip(idx, shape))

    expected = np.array(_expected_3d(shape, count, dtype))
    for axis in (3, 2, 1):  # TF's test: border planes copied from their neighbours, W, then H, then D
        ends = [slice(None)] * 5
        for border, neighbour in ((0, 1), (-1, -2)):
            ends[axis] = border
            source = [slice(None)] * 5
            source[axis] = neighbour
            expected[tuple(ends)] = expected[tuple(source)]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape_dtype", [np.int32, np.int64])
def test_conv3d_output_shape_type(backend, shape_dtype):
    """TF issue 18887: an int32 or int64 array as output_shape."""
    y = numba_convt.conv3d_transpose(np.ones((2, 5, 6, 4, 3), np.float32), np.ones((3, 3, 3, 2, 3), np.float32),
                                     np.array([2, 5, 6, 4, 2], shape_dtype), 1, "SAME", backend=backend)
    np.testing.assert_array_equal(y, _expected_3d((5, 6, 4), _single_stride_count, np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv3d_shape_mismatch_case(backend):
    """TF issue 18460: NCDHW with 2 channels; TF checks the static shape, here it also runs."""
    rng = np.random.default_rng(0)
    x, f = rng.random((2, 2, 3, 4, 3)), rng.random((3, 3, 3, 2, 2))
    args = ([2, 2, 6, 8, 6], [1, 1, 2, 2, 2], "SAME", "NCDHW")
    y = numba_convt.conv3d_transpose(x, f, *args, backend=backend)
    assert y.shape == (2, 2, 6, 8, 6)
    np.testing.assert_allclose(y, numba_convt.conv3d_transpose(x, f, *args, backend="numpy"), rtol=1e-12)


# ----------------------------------------------------------------------------- 7.3 nn_test.py ConvTransposeTest
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("as_array", [False, True], ids=["list", "int32_array"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_transpose_dispatch(rank, as_array, backend):
    """``conv_transpose`` equals the rank's function (TF's test), whose result is all 3s here
    (K = s = 2, C_in = 3): the closed form is compared instead, one call on the slow simulator."""
    x, f = np.ones((2, *[4] * rank, 3), np.float32), np.ones((*[2] * rank, 5, 3), np.float32)
    out_shape = [2, *[8] * rank, 5]
    out_shape = np.array(out_shape, np.int32) if as_array else out_shape
    y = numba_convt.conv_transpose(x, f, out_shape, 2, "SAME", backend=backend)
    np.testing.assert_array_equal(y, np.full((2, *[8] * rank, 5), 3, np.float32))


@pytest.mark.parametrize("output_shape, length", [([2, 3], 2), ([2, 3, 4, 2, 5, 1], 6)])
def test_conv_transpose_incorrect_size_input(output_shape, length):
    with pytest.raises(ValueError, match=f"`output_shape` must be of length 3, 4 or 5.* of length {length}"):
        numba_convt.conv_transpose(None, 2, output_shape, "SAME")


def test_conv_transpose_tensors_no_shape():
    with pytest.raises(ValueError, match="`output_shape` must be a tensor or sized collection"):
        numba_convt.conv_transpose(None, None, None, None)
