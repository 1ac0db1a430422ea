"""Helpers shared by the test modules: tolerances and the backends to test."""

import numpy as np

import numba_convt

BACKENDS = numba_convt.available_backends()

# Max |actual - expected| allowed, relative to max |expected| (issue 2's bar).
_TOLERANCE = {"e": 2e-2, "f": 2e-5, "d": 1e-12, "F": 2e-5, "D": 1e-12}


def assert_close(actual, expected, dtype):
    """Assert ``actual`` matches ``expected`` within the tolerance of ``dtype``."""
    dtype = np.dtype(dtype)
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if dtype.kind in "iu":
        np.testing.assert_array_equal(actual, expected)
        return
    tolerance = _TOLERANCE.get(dtype.char, 2e-2)  # bfloat16 like float16
    actual, expected = actual.astype(np.complex128), expected.astype(np.complex128)
    scale = max(np.abs(expected).max(initial=0.0), 1.0)
    error = np.abs(actual - expected).max(initial=0.0)
    assert error <= tolerance * scale, f"max error {error:.3g} > {tolerance:g} * {scale:.3g}"
