"""Property tests for ``conv1d_transpose``, ``conv3d_transpose`` and ``conv_transpose`` (hypothesis).

(a) Random valid 1-D and 3-D calls: the ``"cpu"`` backend equals the ``"numpy"``
    reference, which equals the direct loop of ``common_nd`` (output sizes drawn
    from TF's brute-force rule, never asked of the package); ``conv_transpose``
    gives the rank function's result bitwise.
(b) One argument of a valid call made bad: ``ValueError``/``TypeError`` naming it,
    before any backend runs.

Settings as in ``test_properties.py`` (derandomized, no database); examples are
few and shapes tiny. ``NUMBA_CONVT_FUZZ_EXAMPLES=N`` asks for more.
"""

import re

import numpy as np
import pytest
from common import tf_consistent_sizes
from common_nd import FORMATS, FUNCTIONS, direct, pad_before, to_first, to_last
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_properties import BASE_SETTINGS, fuzz_examples

import numba_convt
from numba_convt import conv_transpose

DTYPES = (np.float32, np.float64, np.int32, np.int64, np.complex64)
_TOL = {"f": 2e-5, "d": 1e-12, "F": 2e-5}


def _window(draw, values, rank, first):
    """``values`` (one per axis) as an int, a rank-length or a rank+2-length sequence."""
    forms = ["list", "tuple", "full", "array"] + (["int", "len1"] if len(set(values)) == 1 else [])
    form = draw(st.sampled_from(forms))
    full = [1, 1, *values] if first else [1, *values, 1]
    return {"list": list(values), "tuple": tuple(values), "full": full, "array": np.array(values),
            "int": values[0], "len1": [values[0]]}[form]


@st.composite
def valid_calls(draw, rank):
    """A valid call of ``rank`` in a random argument form, and the plain values that define it."""
    first = draw(st.booleans())
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    groups, group_in, group_out = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    sizes = [1, 2, 3, 4, 0] if rank == 1 else [1, 2]  # sampled_from shrinks to the first: few empty inputs
    in_sizes = draw(st.lists(st.sampled_from(sizes), min_size=rank, max_size=rank))
    kernel = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    strides = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    dilations = draw(st.lists(st.sampled_from([1, 1, 2]), min_size=rank, max_size=rank))
    kind = draw(st.sampled_from(["SAME", "VALID", "EXPLICIT"]))
    pads = [draw(st.lists(st.integers(0, 2), min_size=2, max_size=2)) if kind == "EXPLICIT" else [0, 0]
            for _ in range(rank)]
    legal = [tf_consistent_sizes(*axis, kind, *p) for axis, p in zip(zip(in_sizes, kernel, strides, dilations), pads)]
    assume(all(legal))
    out_sizes = [draw(st.sampled_from(sizes)) for sizes in legal]
    batch, in_c, out_c = draw(st.sampled_from([1, 2, 0])), groups * group_in, groups * group_out
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(-4, 5, (batch, *in_sizes, in_c)).astype(dtype)
    f = rng.integers(-4, 5, (*kernel, group_out, in_c)).astype(dtype)
    if dtype.kind != "i":
        x, f = x + rng.standard_normal(x.shape).astype(dtype), f + rng.standard_normal(f.shape).astype(dtype)
    if dtype.kind == "c":
        x, f = x + 1j * rng.standard_normal(x.shape).astype(dtype), f - 1j * rng.standard_normal(f.shape).astype(dtype)
    if kind == "EXPLICIT":
        padding = [[0, 0], [0, 0], *pads] if first else [[0, 0], *pads, [0, 0]]
    else:
        padding = kind if draw(st.booleans()) else kind.lower()
    shape = [batch, out_c, *out_sizes] if first else [batch, *out_sizes, out_c]
    kwargs = dict(input=to_first(x) if first else x, filters=f,
                  output_shape=draw(st.sampled_from([list, tuple, np.array]))(shape),
                  strides=_window(draw, strides, rank, first), padding=padding,
                  data_format=FORMATS[rank][first], dilations=_window(draw, dilations, rank, first))
    before = [pad_before(*axis, kind, p[0]) for axis, p in zip(zip(in_sizes, out_sizes, kernel, strides, dilations), pads)]
    expected = direct(x, f, out_sizes, out_c, strides, dilations, before)
    return kwargs, dict(dtype=dtype, expected=to_first(expected) if first else expected, shape=tuple(shape))


def _assert_close(actual, expected, dtype, what):
    if dtype.kind == "i":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    err = float(np.max(np.abs(actual.astype(np.complex128) - expected), initial=0.0))
    assert err <= _TOL[dtype.char] * scale, f"{what}: max error {err} (max |expected| {scale})"


@pytest.fixture(scope="module", autouse=True)
def compiled():
    """Compile the cpu kernels of every dtype once, outside the properties."""
    for dtype in DTYPES:
        FUNCTIONS[1](np.ones((1, 2, 1), dtype), np.ones((2, 1, 1), dtype), [1, 4, 1], 2, backend="cpu")
        FUNCTIONS[3](np.ones((1, 2, 2, 2, 1), dtype), np.ones((2, 2, 2, 1, 1), dtype), [1, 4, 4, 4, 1], 2, backend="cpu")


@pytest.mark.parametrize("rank", [1, 3])
def test_cpu_matches_reference_and_definition(rank):
    @settings(BASE_SETTINGS, max_examples=fuzz_examples(60 if rank == 1 else 40))
    @given(valid_calls(rank), st.booleans())
    def check(call, use_out):
        kwargs, plain = call
        before = {k: v.copy() for k, v in kwargs.items() if isinstance(v, np.ndarray)}
        out = np.full(plain["shape"], 7, plain["dtype"]) if use_out else None  # every element must be written
        got = FUNCTIONS[rank](**kwargs, backend="cpu", out=out)
        ref = FUNCTIONS[rank](**kwargs, backend="numpy")
        assert got.shape == ref.shape == plain["shape"] and got.dtype == ref.dtype == plain["dtype"]
        assert got is out if use_out else got.flags.c_contiguous
        _assert_close(ref, plain["expected"], plain["dtype"], "numpy reference vs direct loop")
        _assert_close(got, ref, plain["dtype"], "cpu vs numpy reference")
        routed = conv_transpose(**kwargs, backend="cpu")
        assert routed.dtype == got.dtype and routed.tobytes() == got.tobytes(), "conv_transpose differs"
        for key, value in before.items():
            np.testing.assert_array_equal(kwargs[key], value, err_msg=f"{key} modified")

    check()


# --------------------------------------------------------------------------
# (b) one argument made bad
# --------------------------------------------------------------------------

SPY_CALLS = []


@pytest.fixture(scope="module")
def spy_backend():
    numba_convt.register_backend("prop_spy_nd", lambda spec, x, f, out: SPY_CALLS.append(spec), overwrite=True)
    yield "prop_spy_nd"
    numba_convt._registry._registry.pop("prop_spy_nd", None)  # no public unregister


def _bad(draw, name, kwargs, rank):
    """A refused value for argument ``name`` of a valid ``rank``-D call."""
    n, first = rank + 2, kwargs["data_format"][1] == "C"
    x, f, shape = kwargs["input"], kwargs["filters"], list(np.asarray(kwargs["output_shape"]).tolist())
    if name == "data_format":
        return draw(st.sampled_from([fmt for r, fmts in FORMATS.items() if r != rank for fmt in fmts]
                                    + [FORMATS[rank][0].lower(), "", 3, b"NWC"]))
    if name in ("strides", "dilations"):
        spatial = [1] * rank
        outer = [draw(st.integers(2, 3)), 1] if draw(st.booleans()) else [1, draw(st.integers(2, 3))]
        return draw(st.sampled_from([0, -1, True, 1.5, "2", [1, 1], [1] * (n + 1),
                                     [outer[0], outer[1], *spatial] if first else [outer[0], *spatial, outer[1]],
                                     [*spatial[1:], float("nan")], 2**31]))
    if name == "padding":
        pairs = [[0, 0]] * n
        negative = [[0, 0]] * (n - 1) + [[-1, 0]] if first else [[0, 0], [-1, 0]] + [[0, 0]] * (n - 2)
        outer = [[1, 0]] + [[0, 0]] * (n - 1)
        return draw(st.sampled_from(["EXPLICIT", "FULL", 5, None, pairs[:-1], pairs + [[0, 0]], negative, outer,
                                     [[0, 0]] * 4 if n != 4 else [[0, 0]] * 3, [[0.5, 0]] + pairs[1:]]))
    if name == "output_shape":
        i = draw(st.integers(0, n - 1))
        how = draw(st.sampled_from(["length", "negative", "entry", "batch", "spatial", "float-array"]))
        if how == "length":
            return draw(st.sampled_from([shape[:-1] if rank == 3 else shape[1:], shape + [1], shape[2:] if first else shape[1:-1]]))
        if how == "float-array":
            return np.array(shape, float)
        if how == "batch":
            shape[0] += draw(st.integers(1, 2))
        elif how == "spatial":
            axis = draw(st.integers(0, rank - 1))
            shape[axis + (2 if first else 1)] = 2**20 + axis  # beyond every legal size
        else:
            shape[i] = -draw(st.integers(1, 3)) if how == "negative" else draw(st.sampled_from([None, 1.5, "2", True]))
        return shape
    if name == "input":
        return draw(st.sampled_from([np.ones(x.shape[1:]), x[None], np.ones(x.shape, np.uint8), None, np.ones((*x.shape[:-1], x.shape[-1] + 1))
                                     if not first else np.ones((x.shape[0], x.shape[1] + 1, *x.shape[2:]))]))
    zero = list(f.shape)
    zero[draw(st.integers(0, rank))] = 0
    return draw(st.sampled_from([f[0], f[None], np.ones(f.shape, np.bool_), np.ones(zero), np.ones((*f.shape[:-1], f.shape[-1] + 1))]))


NAMES = ("input", "filters", "output_shape", "strides", "dilations", "padding", "data_format")


@pytest.mark.parametrize("rank", [1, 3])
def test_one_bad_argument_is_refused_by_name(rank, spy_backend):
    @settings(BASE_SETTINGS, max_examples=fuzz_examples(150))
    @given(valid_calls(rank), st.sampled_from(NAMES), st.booleans(), st.data())
    def check(call, name, routed, data):
        kwargs = dict(call[0])
        kwargs[name] = _bad(data.draw, name, kwargs, rank)
        if routed and name == "output_shape" and len(kwargs[name]) != rank + 2:
            routed = False  # conv_transpose would take another rank
        SPY_CALLS.clear()
        with pytest.raises((ValueError, TypeError)) as info:
            (conv_transpose if routed else FUNCTIONS[rank])(**kwargs, backend=spy_backend)
        message = str(info.value)
        assert re.search(name if name != "filters" else r"filters", message), f"bad {name}: {message!r}"
        assert SPY_CALLS == [], "a backend ran before the error"

    check()
