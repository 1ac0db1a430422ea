"""Hardening guarantees of ``test_hardening.py`` for 1-D and 3-D calls.

Huge outputs refused before allocating; TF's crash/garbage cases of
``tf_nd_semantics.md`` 3.3 (3-D SIGSEGV, SIGFPE, uninitialized output) give the
defined zeros; NaN/Inf land where the definition puts them; inputs are never
written (also read-only, non-contiguous and list inputs); ``out=`` is checked;
results are bitwise the same for 1 and 2 threads; extreme strides/dilations
(index values past 2**31) give the definition's value. Expected values come from
``common_nd.direct`` or closed forms, never from the package.
"""

import math
import re

import numba
import numpy as np
import pytest
from common import ieee_classes
from common_nd import FUNCTIONS, LAYERS, layer_call, layer_oracle, to_last

import numba_convt
from numba_convt import conv_transpose

BACKENDS = [b for b in ("cpu", "numpy") if b in numba_convt.available_backends()]
MIB = 2**20


# ==========================================================================
# 1. Huge outputs: ValueError before anything is allocated
# ==========================================================================

class _BigAllocation(Exception):
    """Raised by the patched allocators instead of allocating a big array."""


@pytest.fixture
def no_big_allocations(monkeypatch):
    """NumPy's allocating constructors refuse 64 MiB or more; the requests are recorded."""
    requests = []

    def guard(real):
        def patched(shape, dtype=float, *args, **kwargs):
            nbytes = math.prod(shape if isinstance(shape, (tuple, list)) else (shape,)) * np.dtype(dtype).itemsize
            if nbytes >= 64 * MIB:
                requests.append(nbytes)
                raise _BigAllocation(f"asked for {nbytes} bytes")
            return real(shape, dtype, *args, **kwargs)
        return patched

    for name in ("empty", "zeros", "ones"):
        monkeypatch.setattr(np, name, guard(getattr(np, name)))
    return requests


def _huge_call(rank, sizes, channels, batch=1, dtype=np.float32, first=False):
    """A valid call (SAME, stride = size, 1x..x1 broadcast inputs) with output sizes ``sizes``."""
    x = np.broadcast_to(np.array(1, dtype), (batch, *[1] * rank, 1))
    f = np.broadcast_to(np.array(1, dtype), (*[1] * rank, channels, 1))
    shape = [batch, channels, *sizes] if first else [batch, *sizes, channels]
    return dict(input=x, filters=f, output_shape=shape, strides=list(sizes), padding="SAME",
                data_format=("NCW", "NCDHW")[rank == 3] if first else None)


HUGE = {
    "1d-2**64-elements": (1, (2**21,), 2**21, 2**22),  # the element count wraps to 0 in int64
    "1d-2**93-bytes": (1, (2**31 - 1,), 2**31 - 1, 2**31 - 1),
    "1d-4-TiB": (1, (2**30,), 2**10, 1),
    "3d-2**65-elements": (3, (2**13, 2**13, 2**13), 2**13, 2**13),
    "3d-16-TiB": (3, (2**10, 2**10, 2**10), 2**12, 1),
    "3d-2**31-per-axis": (3, (2**31 - 1,) * 3, 2**31 - 1, 2**31 - 1),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("first", [False, True], ids=["channels-last", "channels-first"])
@pytest.mark.parametrize("case", list(HUGE))
def test_huge_outputs_are_refused_before_allocation(case, first, backend, no_big_allocations):
    rank, sizes, channels, batch = HUGE[case]
    kwargs = _huge_call(rank, sizes, channels, batch, first=first)
    for function in (FUNCTIONS[rank], conv_transpose):
        with pytest.raises(ValueError, match=r"output_shape.*GiB.*memory"):
            function(**kwargs, backend=backend)
    assert no_big_allocations == [], "an array was requested before the refusal"


def test_sensitivity_huge_output_guard(monkeypatch, no_big_allocations):
    """Without the size check the 3-D call reaches the (patched) allocator."""
    monkeypatch.setattr(numba_convt._plan, "check_size", lambda *args: None)
    with pytest.raises(_BigAllocation):
        FUNCTIONS[3](**_huge_call(3, (2**10, 2**10, 2**10), 2**12), backend="numpy")
    assert no_big_allocations == [2**44]


# ==========================================================================
# 2. Empty inputs and outputs, and TF's crash cases (spec 3.3): zeros or empty
# ==========================================================================

EMPTY = {  # rank, data_format, input shape, filters shape, output_shape, strides, padding
    "1d-batch-0": (1, "NWC", (0, 4, 1), (3, 2, 1), [0, 8, 2], 2, "SAME"),
    "1d-width-0-same": (1, "NWC", (2, 0, 1), (3, 2, 1), [2, 0, 2], 2, "SAME"),
    "1d-width-0-valid-out-2": (1, "NWC", (1, 0, 1), (3, 1, 1), [1, 2, 1], 2, "VALID"),
    "1d-in-channels-0": (1, "NWC", (2, 4, 0), (3, 2, 0), [2, 8, 2], 2, "SAME"),
    "1d-in-channels-0-ncw": (1, "NCW", (2, 0, 4), (3, 2, 0), [2, 2, 8], 2, "SAME"),
    "3d-batch-0": (3, "NDHWC", (0, 2, 2, 2, 1), (2, 2, 2, 3, 1), [0, 4, 4, 4, 3], 2, "SAME"),
    "3d-height-0-same": (3, "NDHWC", (2, 2, 0, 2, 1), (2, 2, 2, 3, 1), [2, 4, 0, 4, 3], 2, "SAME"),
    # TF stock 3-D: SIGSEGV (depth, and on another axis), then the zeros it does return
    "3d-depth-0-valid-out-2-sigsegv": (3, "NDHWC", (1, 0, 1, 1, 1), (3, 1, 1, 1, 1), [1, 2, 1, 1, 1], [2, 1, 1], "VALID"),
    "3d-width-0-valid-out-2-sigsegv": (3, "NDHWC", (1, 1, 1, 0, 1), (1, 1, 3, 1, 1), [1, 1, 1, 2, 1], [1, 1, 2], "VALID"),
    "3d-depth-0-valid-out-1": (3, "NDHWC", (1, 0, 1, 1, 1), (3, 1, 1, 1, 1), [1, 1, 1, 1, 1], [2, 1, 1], "VALID"),
    "3d-ncdhw-depth-0-valid": (3, "NCDHW", (1, 1, 0, 1, 1), (3, 1, 1, 1, 1), [1, 1, 2, 1, 1], [2, 1, 1], "VALID"),
    # TF stock 3-D with C_in = 0: uninitialized output for N = 1, SIGFPE for N >= 2
    "3d-in-channels-0-garbage": (3, "NDHWC", (1, 2, 2, 2, 0), (2, 2, 2, 3, 0), [1, 4, 4, 4, 3], 2, "SAME"),
    "3d-in-channels-0-sigfpe": (3, "NDHWC", (2, 2, 2, 2, 0), (2, 2, 2, 3, 0), [2, 4, 4, 4, 3], 2, "SAME"),
    "3d-in-channels-0-ncdhw": (3, "NCDHW", (2, 0, 2, 2, 2), (2, 2, 2, 3, 0), [2, 3, 4, 4, 4], 2, "SAME"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
@pytest.mark.parametrize("case", list(EMPTY))
def test_empty_inputs_give_zeros_and_empty_outputs(case, dtype, backend):
    rank, data_format, x_shape, f_shape, shape, strides, padding = EMPTY[case]
    x, f = np.ones(x_shape, dtype), np.ones(f_shape, dtype)
    args = (x, f, shape, strides, padding, data_format)
    y = FUNCTIONS[rank](*args, backend=backend)
    assert y.shape == tuple(shape) and y.dtype == dtype and not np.any(y)
    out = np.full(shape, 7, dtype)  # garbage: a kernel that skips empty work must still write zeros
    assert FUNCTIONS[rank](*args, backend=backend, out=out) is out and not np.any(out)
    assert conv_transpose(*args, backend=backend).shape == tuple(shape)


# ==========================================================================
# 3. NaN and Inf land where the definition puts them
# ==========================================================================

def _specials(shape, rng, complex_):
    """Uniform values with a few NaN, +inf, -inf (complex: NaN only) and zeros."""
    a = rng.uniform(-2, 2, shape)
    flat = a.reshape(-1)
    idx = rng.permutation(flat.size)
    k = max(1, flat.size // 40)
    flat[idx[:k]] = np.nan
    if not complex_:
        flat[idx[k:2 * k]], flat[idx[2 * k:3 * k]] = np.inf, -np.inf
    flat[idx[3 * k:5 * k]] = 0
    return a + 1j * rng.uniform(-2, 2, shape) if complex_ else a


@pytest.mark.filterwarnings("ignore:.*invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("first", [False, True], ids=["channels-last", "channels-first"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "complex128"])
@pytest.mark.parametrize("rank", [1, 3])
def test_nan_and_inf_propagate_as_in_the_definition(rank, dtype, first, backend):
    dtype, layer = np.dtype(dtype), LAYERS[rank]
    complex_ = dtype.kind == "c"
    seen = dict.fromkeys(("nan", "+inf", "-inf"), 0)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = _specials(layer["x_shape"], rng, complex_).astype(dtype)
        f = _specials(layer["f_shape"], rng, complex_).astype(dtype)
        oracle = layer_oracle(layer, x, f, np.complex128 if complex_ else np.float64)
        for name in ("numpy", backend):
            got = FUNCTIONS[rank](**layer_call(layer, x, f, first), backend=name)
            got = to_last(got) if first else got
            for what, mask in ieee_classes(oracle).items():
                np.testing.assert_array_equal(ieee_classes(got)[what], mask, err_msg=f"{name}: {what} positions")
        for what, mask in ieee_classes(oracle).items():
            seen[what] += int(mask.sum())
        finite = np.isfinite(oracle)
        assert finite.mean() > 0.2
        tol = {"e": 2e-2, "f": 2e-5, "d": 1e-12, "D": 1e-12}[dtype.char] * 4
        scale = max(1.0, float(np.abs(oracle[finite]).max(initial=0)))
        assert np.abs(got.astype(oracle.dtype)[finite] - oracle[finite]).max(initial=0) <= tol * scale
    assert seen["nan"] > 0 and (complex_ or seen["+inf"] > 0 and seen["-inf"] > 0), seen


# ==========================================================================
# 4. Inputs are never written; every input form gives the same bits
# ==========================================================================

def _forms(x):
    """``x`` as writeable, read-only, non-contiguous and nested-list inputs."""
    readonly = x.copy()
    readonly.flags.writeable = False
    strided = np.zeros(x.shape + (2,), x.dtype)[..., 0]
    strided[...] = x
    assert not strided.flags.c_contiguous or x.size <= 1
    return {"writeable": x.copy(), "read-only": readonly, "non-contiguous": strided, "list": x.tolist()}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("first", [False, True], ids=["channels-last", "channels-first"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int32])
@pytest.mark.parametrize("rank", [1, 3])
def test_inputs_are_never_written(rank, dtype, first, backend):
    layer = LAYERS[rank]
    rng = np.random.default_rng(5)
    x, f = rng.uniform(-3, 3, layer["x_shape"]).astype(dtype), rng.uniform(-3, 3, layer["f_shape"]).astype(dtype)
    kwargs = layer_call(layer, x, f, first)
    lists = {key: repr(value) for key, value in kwargs.items()}
    for (name_x, x_form), (name_f, f_form) in zip(_forms(kwargs["input"]).items(), _forms(f).items()):
        before = [np.array(x_form, copy=True), np.array(f_form, copy=True)]  # lists: NumPy's dtype for them
        baseline = FUNCTIONS[rank](**dict(kwargs, input=before[0].copy(), filters=before[1].copy()), backend=backend)
        for use_out in (False, True):
            out = np.full(baseline.shape, 3, baseline.dtype) if use_out else None
            y = FUNCTIONS[rank](**dict(kwargs, input=x_form, filters=f_form), backend=backend, out=out)
            assert y.dtype == baseline.dtype and y.tobytes() == baseline.tobytes(), f"{name_x} input gives other bits"
        np.testing.assert_array_equal(np.asarray(x_form), before[0], err_msg=f"{name_x} input written")
        np.testing.assert_array_equal(np.asarray(f_form), before[1], err_msg=f"{name_f} filters written")
    assert {key: repr(value) for key, value in kwargs.items()} == lists, "an argument was changed"


def test_sensitivity_inputs_check(monkeypatch):
    """A backend that writes into its input is caught."""
    def vandal(spec, x, filters, out):
        numba_convt.get_backend("numpy").run(spec, x, filters, out)
        x.reshape(-1)[0] += 1

    numba_convt.register_backend("vandal_nd", vandal, overwrite=True)
    try:
        with pytest.raises(AssertionError, match="input (written|gives other bits)"):
            test_inputs_are_never_written(3, np.float32, False, "vandal_nd")
    finally:
        numba_convt._registry._registry.pop("vandal_nd", None)


# ==========================================================================
# 5. out=: refused unless a writeable C-contiguous array of the exact shape and dtype
# ==========================================================================

def _out_rows(rank):
    layer = LAYERS[rank]
    x = np.ones(layer["x_shape"], np.float32)
    f = np.ones(layer["f_shape"], np.float32)
    shape = (x.shape[0], *layer["out"], layer["out_c"])
    readonly = np.zeros(shape, np.float32)
    readonly.flags.writeable = False
    buf = np.zeros(math.prod(shape), np.float32)  # out, and the input in its first elements
    first_shape = (shape[0], shape[-1], *shape[1:-1])
    return [
        pytest.param(rank, False, dict(out=[0.0]), TypeError, r"out must be a numpy\.ndarray; got list", id=f"{rank}d-list"),
        pytest.param(rank, False, dict(out=np.zeros(shape[:-1], np.float32)), ValueError,
                     rf"out must have shape {re.escape(str(shape))}; got shape", id=f"{rank}d-rank"),
        pytest.param(rank, True, dict(out=np.zeros(shape, np.float32)), ValueError,
                     rf"out must have shape {re.escape(str(first_shape))}; got shape {re.escape(str(shape))}",
                     id=f"{rank}d-channels-last-shape-for-channels-first"),
        pytest.param(rank, False, dict(out=np.zeros(shape, np.float64)), ValueError,
                     r"out must have dtype float32; got dtype float64", id=f"{rank}d-dtype"),
        pytest.param(rank, False, dict(out=np.zeros(shape + (2,), np.float32)[..., 0]), ValueError,
                     r"out must be C-contiguous", id=f"{rank}d-strided"),
        pytest.param(rank, False, dict(out=readonly), ValueError, r"out must be writeable", id=f"{rank}d-read-only"),
        pytest.param(rank, False, dict(out=buf.reshape(shape), input=buf[:x.size].reshape(x.shape)),
                     ValueError, r"out must use memory not shared with input", id=f"{rank}d-overlap"),
    ]


@pytest.mark.parametrize("rank, first, overrides, exc, pattern", _out_rows(1) + _out_rows(3))
def test_bad_out_is_refused(rank, first, overrides, exc, pattern):
    layer = LAYERS[rank]
    kwargs = layer_call(layer, np.ones(layer["x_shape"], np.float32), np.ones(layer["f_shape"], np.float32), first)
    kwargs.update(overrides)
    for function in (FUNCTIONS[rank], conv_transpose):
        with pytest.raises(exc, match=pattern):
            function(**kwargs, backend="numpy")


# ==========================================================================
# 6. Threads: bitwise the same for 1 and 2 Numba threads
# ==========================================================================

THREAD_LAYERS = {  # large enough for the cpu backend's parallel and BLAS kernels
    1: dict(x_shape=(4, 300, 24), f_shape=(5, 16, 24), out=(600,), out_c=16, strides=(2,), dilations=(1,)),
    3: dict(x_shape=(2, 4, 12, 12, 16), f_shape=(3, 3, 3, 8, 16), out=(8, 24, 24), out_c=8, strides=(2, 2, 2),
            dilations=(1, 1, 1)),
}


# Found by these layers: the 3-D plan's 2-D plan was once made for NCHW (and may take NCHW arrays,
# e.g. on its BLAS path) while the 3-D plan hands it channels-last planes.
LARGE = [(rank, first) for rank in (1, 3) for first in (False, True)]


def _large_arrays(rank, dtype, seed):
    layer = THREAD_LAYERS[rank]
    rng = np.random.default_rng(seed)
    x, f = (rng.standard_normal(layer[shape]).astype(dtype) for shape in ("x_shape", "f_shape"))
    return layer, x, f


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rank, first", LARGE)
def test_large_layers_match_the_reference(rank, first, dtype):
    layer, x, f = _large_arrays(rank, dtype, seed=4)
    got = FUNCTIONS[rank](**layer_call(layer, x, f, first), backend="cpu")
    expected = layer_oracle(layer, x, f)
    scale = float(np.abs(expected).max())
    assert np.abs((to_last(got) if first else got) - expected).max() <= (2e-5 if dtype == np.float32 else 1e-12) * scale


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rank, first", LARGE)
def test_one_and_two_threads_give_the_same_bits(rank, dtype, first):
    layer, x, f = _large_arrays(rank, dtype, seed=3)
    kwargs = layer_call(layer, x, f, first)
    threads = numba.get_num_threads()
    results = {}
    try:
        for n in (1, 2, 1):
            numba.set_num_threads(n)
            results.setdefault(n, []).append(FUNCTIONS[rank](**kwargs, backend="cpu").tobytes())
    finally:
        numba.set_num_threads(threads)
    assert results[1][0] == results[1][1] == results[2][0], "results differ between thread counts"


# ==========================================================================
# 7. Index arithmetic past 2**31: extreme strides, dilations and pads
# ==========================================================================

S, D = 2**31 - 1, 2**30


def _extreme(rank, axis, stride, dilation, kernel, pad, out_size):
    """One axis (``axis`` of ``rank``) with an extreme stride/dilation; the rest unit. Input [1, 2], filter [3, 5]."""
    unit = [1] * rank
    x_sizes, k_sizes, strides, dilations = (list(unit) for _ in range(4))
    x_sizes[axis], k_sizes[axis], strides[axis], dilations[axis] = 2, kernel, stride, dilation
    x = np.arange(1, 3, dtype=np.float64).reshape(1, *x_sizes, 1)
    f = np.array([3.0, 5.0][:kernel]).reshape(*k_sizes, 1, 1)
    pads = [[0, 0]] + [[pad, 0] if a == axis else [0, 0] for a in range(rank)] + [[0, 0]]
    shape = [1] * (rank + 2)
    shape[axis + 1] = out_size
    return dict(input=x, filters=f, output_shape=shape, strides=strides, padding=pads, dilations=dilations)


EXTREME = {  # (rank, axis, stride, dilation, kernel, pad, output size): the output values, by hand
    # x[i] lands at i*S - S: x[1] * f[0] at 0, x[0] at -S is dropped
    "1d-stride-2**31-1": ((1, 0, S, 1, 1, S, 1), [2 * 3]),
    # x[i] * f[k] lands at i + k*D - D: (0, 1) at 0, (1, 1) at 1; k = 0 at 1 - D and -D: dropped
    "1d-dilation-2**30": ((1, 0, 1, D, 2, D, 2), [1 * 5, 2 * 5]),
    "3d-depth-stride-2**31-1": ((3, 0, S, 1, 1, S, 1), [2 * 3]),
    "3d-depth-dilation-2**30": ((3, 0, 1, D, 2, D, 2), [1 * 5, 2 * 5]),
    "3d-width-stride-2**31-1": ((3, 2, S, 1, 1, S, 1), [2 * 3]),
    "3d-height-dilation-2**30": ((3, 1, 1, D, 2, D, 2), [1 * 5, 2 * 5]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(EXTREME))
def test_extreme_window_parameters_match_the_definition(case, backend):
    (rank, *params), expected = EXTREME[case]
    kwargs = _extreme(rank, *params)
    assert FUNCTIONS[rank](**kwargs, backend=backend).reshape(-1).tolist() == expected
