"""TensorFlow's own tests, ported: conv2d_transpose_test.py and the
Conv2DBackpropInput value tests of conv_ops_test.py (spec section 6).

Expected values are TF's, written out here; the all-ones tests use TF's
counting formulas (each output equals C_in times the number of taps that
reach it), computed independently of numba_convt.
"""

import itertools

import numpy as np
import pytest
from common import BACKENDS

import numba_convt

LAYOUTS = ["NHWC", "NCHW"]
# conv2d_transpose_test.py runs its all-ones tests in float32 and int32.
ALL_ONES_CASES = pytest.mark.parametrize(
    "backend, data_format, dtype", list(itertools.product(BACKENDS, LAYOUTS, [np.float32, np.int32]))
)


def _to_layout(array, data_format):
    return array if data_format == "NHWC" else array.transpose(0, 3, 1, 2)


def _from_layout(array, data_format):
    return array if data_format == "NHWC" else array.transpose(0, 2, 3, 1)


def _shape(shape, data_format):
    n, h, w, c = shape
    return shape if data_format == "NHWC" else [n, c, h, w]


def _strides(s, data_format):
    return [1, s, s, 1] if data_format == "NHWC" else [1, 1, s, s]


def _all_ones(out_shape, stride, padding, data_format, dtype, backend):
    x = _to_layout(np.ones((2, 6, 4, 3), dtype), data_format)
    f = np.ones((3, 3, 2, 3), dtype)
    y = numba_convt.conv2d_transpose(
        x, f, _shape(out_shape, data_format), _strides(stride, data_format),
        padding, data_format, backend=backend,
    )
    assert y.dtype == dtype
    return _from_layout(y, data_format)


@ALL_ONES_CASES
def test_single_stride(backend, data_format, dtype):
    y = _all_ones([2, 6, 4, 2], 1, "SAME", data_format, dtype, backend)
    for n, h, w, k in np.ndindex(y.shape):
        h_in = h in (0, 5)
        w_in = w in (0, 3)
        expected = 12 if h_in and w_in else 18 if h_in or w_in else 27
        assert y[n, h, w, k] == expected


@ALL_ONES_CASES
def test_same(backend, data_format, dtype):
    y = _all_ones([2, 12, 8, 2], 2, "SAME", data_format, dtype, backend)
    for n, h, w, k in np.ndindex(y.shape):
        h_inside = h % 2 == 0 and 0 < h < 11
        w_inside = w % 2 == 0 and 0 < w < 7
        expected = 12 if h_inside and w_inside else 6 if h_inside or w_inside else 3
        assert y[n, h, w, k] == expected


@ALL_ONES_CASES
def test_valid(backend, data_format, dtype):
    y = _all_ones([2, 13, 9, 2], 2, "VALID", data_format, dtype, backend)
    expected = np.zeros((2, 13, 9, 2), dtype)
    for n, h, w, k in np.ndindex(2, 11, 7, 2):
        h, w = h + 1, w + 1
        h_inside = h % 2 == 0 and 1 < h < 11
        w_inside = w % 2 == 0 and 1 < w < 7
        expected[n, h, w, k] = 3 + (9 if h_inside and w_inside else 3 if h_inside or w_inside else 0)
    expected[:, 0] = expected[:, 1]
    expected[:, -1] = expected[:, -2]
    expected[:, :, 0] = expected[:, :, 1]
    expected[:, :, -1] = expected[:, :, -2]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_invalid_output_shape_raises(backend):
    with pytest.raises(ValueError, match="output_shape"):
        numba_convt.conv2d_transpose(np.ones((1, 1, 1, 1)), np.ones((1, 1, 1, 1)), [2, -2], [1], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_output_shape_raises_without_allocating(backend):
    with pytest.raises(ValueError, match="filters.shape"):
        numba_convt.conv2d_transpose(
            np.ones((2, 2, 2, 2)), [[[[1]]]], [114078056, 179835296], [10], "SAME", backend=backend
        )


# conv_ops_test.py: (output_shape, filter shape, input shape, strides, padding, expected).
# Filters and inputs are arange(1, n + 1) reshaped, as in _RunAndVerifyBackpropInput.
BACKPROP_INPUT_CASES = {
    "2x2Depth1Valid": ([1, 2, 3, 1], [2, 2, 1, 1], [1, 1, 2, 1], [1, 1], "VALID", [1, 4, 4, 3, 10, 8]),
    "Empty": ([0, 2, 3, 1], [2, 2, 1, 1], [0, 1, 2, 1], [1, 1], "VALID", []),
    "2x2Depth3Valid": (
        [1, 2, 3, 3], [2, 2, 3, 3], [1, 1, 2, 3], [1, 1], "VALID",
        [14, 32, 50, 100, 163, 226, 167, 212, 257, 122, 140, 158, 478, 541, 604, 437, 482, 527],
    ),
    "2x2Depth3ValidStride1x2": (
        [1, 3, 6, 1], [2, 2, 1, 1], [1, 2, 3, 1], [1, 2], "VALID",
        [1, 2, 2, 4, 3, 6, 7, 12, 11, 18, 15, 24, 12, 16, 15, 20, 18, 24],
    ),
    "StrideTwoFilterOneSame": (
        [1, 4, 4, 1], [1, 1, 1, 1], [1, 2, 2, 1], [2, 2], "SAME",
        [1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0],
    ),
    "KernelSizeMatchesInputSize": ([1, 2, 2, 1], [2, 2, 1, 2], [1, 1, 1, 2], [1, 1], "VALID", [5, 11, 17, 23]),
    "InputSizesContainsOnlySpatialDimensions": ([2, 2], [2, 2, 1, 2], [1, 1, 1, 2], [1, 1], "VALID", [5, 11, 17, 23]),
    "DegenerateBackpropInput": ([3, 1, 1, 2], [1, 3, 2, 3], [3, 1, 0, 3], [1, 2], "VALID", [0] * 6),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("data_format", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("name", BACKPROP_INPUT_CASES)
def test_conv_ops_backprop_input(name, dtype, data_format, backend):
    output_shape, f_shape, x_shape, strides, padding, expected = BACKPROP_INPUT_CASES[name]
    f = np.arange(1, np.prod(f_shape) + 1, dtype=dtype).reshape(f_shape)
    x = np.arange(1, np.prod(x_shape) + 1, dtype=dtype).reshape(x_shape)
    if len(output_shape) == 4:
        output_shape = _shape(output_shape, data_format)
    y = numba_convt.conv2d_transpose(
        _to_layout(x, data_format), f, output_shape, strides, padding, data_format, backend=backend
    )
    np.testing.assert_array_equal(_from_layout(y, data_format).ravel(), np.array(expected, dtype))


def _explicit_reference(x, f, output_shape, strides, pads, dilations, backend):
    """conv_ops_test's definition: VALID backprop onto the padded size, then crop."""
    (top, bottom), (left, right) = pads
    n, h, w, c = output_shape
    full = numba_convt.conv2d_transpose(
        x, f, [n, h + top + bottom, w + left + right, c], strides, "VALID", dilations=dilations, backend=backend
    )
    return full[:, top:top + h, left:left + w]


# conv_ops_test.py explicit-padding backprop-input tests: (output_shape, filter, input, strides, pads, dilations).
EXPLICIT_CASES = [
    ([1, 2, 3, 1], [2, 2, 1, 1], [1, 1, 2, 1], [1, 1], [[0, 0], [0, 0]], [1, 1]),
    ([1, 3, 4, 2], [2, 2, 2, 3], [1, 1, 2, 3], [2, 2], [[0, 0], [0, 0]], [1, 1]),
    ([1, 2, 3, 1], [2, 2, 1, 2], [1, 3, 4, 2], [1, 1], [[1, 1], [1, 1]], [1, 1]),
    ([1, 2, 3, 2], [1, 1, 2, 1], [1, 4, 3, 1], [1, 2], [[1, 1], [1, 1]], [1, 1]),
    ([1, 4, 3, 1], [2, 2, 1, 1], [1, 4, 2, 1], [1, 2], [[1, 1], [1, 1]], [2, 2]),
    ([2, 3, 1, 1], [2, 1, 1, 1], [2, 2, 5, 1], [3, 1], [[2, 2], [2, 2]], [1, 1]),
    ([1, 3, 6, 1], [3, 2, 1, 1], [1, 3, 4, 1], [1, 2], [[2, 2], [2, 2]], [2, 3]),
    ([1, 2, 3, 1], [2, 2, 1, 1], [1, 10, 8, 1], [1, 1], [[1, 8], [4, 2]], [1, 1]),
    ([1, 5, 3, 1], [3, 2, 1, 1], [1, 4, 8, 1], [3, 1], [[1, 8], [4, 2]], [1, 1]),
    ([1, 3, 3, 1], [2, 1, 1, 1], [1, 7, 7, 1], [1, 1], [[5, 0], [2, 2]], [1, 1]),
    ([1, 4, 2, 1], [3, 3, 1, 1], [1, 5, 2, 1], [1, 2], [[5, 0], [2, 2]], [2, 1]),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", EXPLICIT_CASES)
def test_conv_ops_explicit_padding(case, backend):
    output_shape, f_shape, x_shape, strides, pads, dilations = case
    rng = np.random.default_rng(0)
    x, f = rng.standard_normal(x_shape), rng.standard_normal(f_shape)
    padding = [[0, 0], *pads, [0, 0]]
    y = numba_convt.conv2d_transpose(x, f, output_shape, strides, padding, dilations=dilations, backend=backend)
    expected = _explicit_reference(x, f, output_shape, strides, pads, dilations, "numpy")
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12 * max(1, np.abs(expected).max()))


def test_conv_ops_negative_explicit_padding_raises():
    with pytest.raises(ValueError, match="padding"):
        numba_convt.conv2d_transpose(
            np.ones((32, 3, 2, 2)), np.ones((18, 18, 3, 2)), [32, 20, 20, 3], 1,
            [[0, 0], [-1, 0], [0, 0], [0, 0]],
        )
