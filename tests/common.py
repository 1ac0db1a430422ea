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


# TF's size rule (spec section 2), written independently of the package.
def c_div(a, b):
    """C/C++ integer division: truncation toward zero (``-1 / 2 == 0``)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def tf_forward_size(out_size, kernel, stride, dilation, kind, pad_before=0, pad_after=0):
    """TF's ``GetWindowedOutputSizeVerbose`` applied to the transposed output size."""
    effective = (kernel - 1) * dilation + 1
    if kind == "SAME":
        return c_div(out_size + stride - 1, stride)
    return c_div(out_size + pad_before + pad_after - effective + stride, stride)


def tf_consistent_sizes(in_size, kernel, stride, dilation, kind, pad_before=0, pad_after=0):
    """Every output size TF accepts for ``in_size``, by trying all candidates."""
    limit = (in_size + 2) * stride + (kernel - 1) * dilation + 2
    return [
        size for size in range(limit)
        if tf_forward_size(size, kernel, stride, dilation, kind, pad_before, pad_after) == in_size
    ]


def ieee_classes(a):
    """Masks of the NaN (and for real dtypes the +inf and -inf) positions of ``a``."""
    a = np.asarray(a)
    if a.dtype.kind == "c":
        return {"nan": np.isnan(a)}
    a = a.astype(np.float64)
    return {"nan": np.isnan(a), "+inf": np.isposinf(a), "-inf": np.isneginf(a)}
