"""Channels-first <-> channels-last copies (``numba_convt/_layout.py``) against NumPy's."""

import numpy as np
import pytest

from numba_convt._layout import change_layout

SHAPES = [(1, 3, 5), (2, 9, 1000), (1, 64, 17, 3), (3, 33, 7, 9), (1, 300, 8, 8), (2, 5, 3, 4, 11), (1, 1, 1, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.complex64])
@pytest.mark.parametrize("to_last", [True, False])
def test_change_layout_equals_numpys_moveaxis(shape, dtype, to_last):
    """Tile edges (sizes not multiples of 8, 32 or 256), both directions, 4- and 8-byte items."""
    array = np.arange(np.prod(shape)).astype(dtype).reshape(shape)
    expected = np.moveaxis(array, 1, -1) if to_last else np.moveaxis(array, -1, 1)
    out = np.full(expected.shape, -1, dtype)
    assert change_layout(array, to_last, dtype, out) is out
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(change_layout(array, to_last, dtype), expected)
