"""The backend registry: names, availability, registration, errors."""

import numpy as np
import pytest

import numba_convt


def test_builtin_backends_are_available():
    assert numba_convt.available_backends()[:2] == ["cpu", "numpy"]
    assert numba_convt.get_backend("auto").name == "cpu"
    assert numba_convt.get_backend("NumPy").name == "numpy"


def test_unknown_backend_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"'gpu' is unknown; available backends: auto, cpu, numpy"):
        numba_convt.conv2d_transpose(np.ones((1, 1, 1, 1)), np.ones((1, 1, 1, 1)), [1, 1], 1, backend="gpu")


def test_backend_must_be_a_string():
    with pytest.raises(TypeError, match="backend must be a string"):
        numba_convt.get_backend(3)


def test_registered_backend_receives_spec_and_nhwc_arrays():
    calls = []

    def spy(spec, x, filters, out):
        calls.append((spec, x.shape, filters.shape, out.shape, x.flags.c_contiguous))
        out[...] = 7

    numba_convt.register_backend("Spy", spy, overwrite=True)
    y = numba_convt.conv2d_transpose(
        np.ones((2, 4, 5, 3)), np.ones((3, 3, 2, 4)), [2, 4, 5, 3], 1, data_format="NCHW", backend="spy"
    )
    spec, x_shape, f_shape, out_shape, contiguous = calls[0]
    assert (spec.groups, spec.out_c, spec.data_format) == (2, 4, "NCHW")
    assert (x_shape, f_shape, out_shape, contiguous) == ((2, 5, 3, 4), (3, 3, 2, 4), (2, 5, 3, 4), True)
    assert y.shape == (2, 4, 5, 3) and (y == 7).all()


def test_unavailable_backend_is_not_listed_and_refused():
    numba_convt.register_backend("never", lambda *a: None, is_available=lambda: False, overwrite=True)
    assert "never" not in numba_convt.available_backends()
    with pytest.raises(ValueError, match="'never' is not available on this machine"):
        numba_convt.get_backend("never")


@pytest.mark.parametrize("name", ["cpu", "auto", "", None])
def test_register_refuses_builtin_and_bad_names(name):
    with pytest.raises(ValueError, match="backend"):
        numba_convt.register_backend(name, lambda *a: None)


def test_register_refuses_non_callables():
    with pytest.raises(TypeError, match="callable"):
        numba_convt.register_backend("x", "not a function")
