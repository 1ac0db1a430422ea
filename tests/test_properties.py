"""Property tests for ``conv2d_transpose`` (hypothesis, derandomized, no example database).

(a) Random *valid* calls over every argument form agree between the compiled
    ``"cpu"`` backend and the ``"numpy"`` reference, and the reference agrees with
    a direct loop written here from the definition (tf_semantics.md section 2).
    Output shapes are computed here, never asked of the package.
(b) One argument of a valid call perturbed into a value TensorFlow refuses
    gives ``ValueError``/``TypeError`` naming that argument, before any backend runs.
(c) Random junk in any argument never lets anything but ``ValueError``/``TypeError`` out.

A longer fuzz run: ``NUMBA_CONVT_FUZZ_EXAMPLES=N python -m pytest tests/test_properties.py``
gives (a), (b) and (c) at least ``N`` examples each (default 1500, 1500, 2000).
"""

import os
import re

import numpy as np
import pytest
from common import tf_consistent_sizes
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numba_convt
from numba_convt import conv2d_transpose

# Reproducible in CI: fixed example sequence, nothing read from or written to a database.
BASE_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

DTYPES = (np.float32, np.float64, np.int32)


def fuzz_examples(default):
    """``default``, or ``NUMBA_CONVT_FUZZ_EXAMPLES`` when that asks for more (the longer fuzz run)."""
    value = os.environ.get("NUMBA_CONVT_FUZZ_EXAMPLES", "").strip()
    if not value:
        return default
    try:
        return max(default, int(value))
    except ValueError:
        raise ValueError(f"NUMBA_CONVT_FUZZ_EXAMPLES must be an integer; got {value!r}") from None


def forward_pad_before(in_size, out_size, kernel, stride, dilation, kind, pad_before):
    """The forward convolution's leading pad (rows cropped from the top of the full output)."""
    if kind == "SAME":
        need = max(0, (in_size - 1) * stride + (kernel - 1) * dilation + 1 - out_size)
        return need // 2
    return pad_before if kind == "EXPLICIT" else 0


def direct_transpose(x, f, out_hw, out_c, strides, dilations, pads_before, groups):
    """Scatter form of spec section 2 on NHWC ``x``: float64/int64 accumulation."""
    n, in_h, in_w, in_c = x.shape
    k_h, k_w, group_out, _ = f.shape
    acc = np.int64 if x.dtype.kind == "i" else np.float64
    y = np.zeros((n, out_hw[0], out_hw[1], out_c), acc)
    x, f = x.astype(acc), f.astype(acc)
    group_in = in_c // groups
    for iy in range(in_h):
        for ky in range(k_h):
            oy = iy * strides[0] + ky * dilations[0] - pads_before[0]
            if not 0 <= oy < out_hw[0]:
                continue
            for ix in range(in_w):
                for kx in range(k_w):
                    ox = ix * strides[1] + kx * dilations[1] - pads_before[1]
                    if not 0 <= ox < out_hw[1]:
                        continue
                    for g in range(groups):
                        cin = slice(g * group_in, (g + 1) * group_in)
                        cout = slice(g * group_out, (g + 1) * group_out)
                        y[:, oy, ox, cout] += x[:, iy, ix, cin] @ f[ky, kx, :, cin].T
    return y


# --------------------------------------------------------------------------
# (a) valid calls
# --------------------------------------------------------------------------


def _case(text, draw):
    """``text`` in a random letter case."""
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.lower() if flip else c for c, flip in zip(text, flips))


def _window_form(draw, h, w, data_format, allow_none):
    """``strides``/``dilations`` (h, w) in one of the forms TF accepts."""
    forms = ["pair-list", "pair-tuple", "pair-array", "len4"]
    if h == w:
        forms += ["int", "np-int", "integral-float", "len1-list", "len1-tuple", "len1-array"]
    if allow_none and h == w == 1:
        forms.append("none")
    form = draw(st.sampled_from(forms))
    return {
        "pair-list": [h, w],
        "pair-tuple": (h, w),
        "pair-array": np.array([h, w], draw(st.sampled_from([np.int32, np.int64]))),
        "len4": [1, h, w, 1] if data_format == "NHWC" else [1, 1, h, w],
        "int": h,
        "np-int": np.int64(h),
        "integral-float": float(h),
        "len1-list": [h],
        "len1-tuple": (h,),
        "len1-array": np.array([h]),
        "none": None,
    }[form]


@st.composite
def valid_calls(draw, large=False):
    """Valid calls in every argument form; ``large``: float layers with 16-40
    input channels, 64-864 pixels and rows 8-24 wide, the sizes that take the
    cpu backend's BLAS paths and its register-tiled kernel."""
    data_format = draw(st.sampled_from(["NHWC", "NCHW"]))
    dtype = draw(st.sampled_from(DTYPES[:2] if large else DTYPES))
    batch = draw(st.integers(1, 3) if large else st.integers(0, 2))
    groups = 1 if large else draw(st.integers(1, 3))
    group_in, group_out = draw(st.integers(16, 40) if large else st.integers(1, 2)), draw(st.integers(1, 20 if large else 3))
    in_c, out_c = groups * group_in, groups * group_out
    in_h, in_w = (draw(st.integers(8, 12)), draw(st.integers(8, 24))) if large else (draw(st.integers(0, 4)), draw(st.integers(0, 4)))
    k_h, k_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s_h, s_w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    d_h, d_w = draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 1, 2, 3]))
    kind = draw(st.sampled_from(["SAME", "VALID", "EXPLICIT"]))
    pads = draw(st.lists(st.integers(0, 3), min_size=4, max_size=4)) if kind == "EXPLICIT" else [0, 0, 0, 0]
    legal_h = tf_consistent_sizes(in_h, k_h, s_h, d_h, kind, pads[0], pads[1])
    legal_w = tf_consistent_sizes(in_w, k_w, s_w, d_w, kind, pads[2], pads[3])
    assume(legal_h and legal_w)
    out_h, out_w = draw(st.sampled_from(legal_h)), draw(st.sampled_from(legal_w))

    if kind == "EXPLICIT":
        spatial = [[pads[0], pads[1]], [pads[2], pads[3]]]
        pairs = [[0, 0], *spatial, [0, 0]] if data_format == "NHWC" else [[0, 0], [0, 0], *spatial]
        padding = draw(st.sampled_from(["list", "tuple", "array"]))
        padding = {"list": pairs, "tuple": tuple(map(tuple, pairs)), "array": np.array(pairs)}[padding]
    else:
        padding = _case(kind, draw)

    if data_format == "NHWC":
        full_shape = [batch, out_h, out_w, out_c]
    else:
        full_shape = [batch, out_c, out_h, out_w]
    short = groups == 1 and draw(st.booleans())
    shape_values = [out_h, out_w] if short else full_shape
    container = draw(st.sampled_from(["list", "tuple", "int32", "int64", "np-ints"]))
    output_shape = {
        "list": list(shape_values),
        "tuple": tuple(shape_values),
        "int32": np.array(shape_values, np.int32),
        "int64": np.array(shape_values, np.int64),
        "np-ints": [np.int64(v) for v in shape_values],
    }[container]

    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x_shape = (batch, in_h, in_w, in_c)
    f_shape = (k_h, k_w, group_out, in_c)
    if dtype == np.int32:
        x = rng.integers(-4, 5, x_shape).astype(dtype)
        f = rng.integers(-4, 5, f_shape).astype(dtype)
    else:
        x = rng.standard_normal(x_shape).astype(dtype)
        f = rng.standard_normal(f_shape).astype(dtype)
    x_arg = x if data_format == "NHWC" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    layout = draw(st.sampled_from(["c", "c", "fortran", "strided"]))  # any memory layout is valid
    if layout == "fortran":
        x_arg = np.asfortranarray(x_arg)
    elif layout == "strided":
        big = np.zeros(x_arg.shape[:3] + (2 * x_arg.shape[3],), dtype)
        big[..., ::2] = x_arg
        x_arg = big[..., ::2]

    kwargs = dict(
        input=x_arg,
        filters=f,
        output_shape=output_shape,
        strides=_window_form(draw, s_h, s_w, data_format, allow_none=False),
        padding=padding,
        data_format=data_format,
        dilations=_window_form(draw, d_h, d_w, data_format, allow_none=True),
    )
    if data_format == "NHWC":  # NHWC may also be given as None or left to the default
        form = draw(st.sampled_from(["given", "None", "default"]))
        if form == "None":
            kwargs["data_format"] = None
        elif form == "default":
            del kwargs["data_format"]
    if isinstance(padding, str) and padding == "SAME" and draw(st.booleans()):
        del kwargs["padding"]  # the default
    plain = dict(data_format=data_format, dtype=np.dtype(dtype), x_nhwc=x, f=f, out_hw=(out_h, out_w),
                 out_c=out_c, strides=(s_h, s_w), dilations=(d_h, d_w), kind=kind, pads=pads, groups=groups,
                 in_hw=(in_h, in_w), k_hw=(k_h, k_w), batch=batch, group_out=group_out, in_c=in_c,
                 short=short, full_shape=tuple(full_shape))
    return kwargs, plain


@pytest.fixture(scope="module", autouse=True)
def compiled():
    """Compile the cpu kernel for every dtype once, outside the timed properties."""
    for dtype in DTYPES:
        conv2d_transpose(np.ones((1, 2, 2, 1), dtype), np.ones((2, 2, 1, 1), dtype), [1, 4, 4, 1], 2,
                         backend="cpu")


def _assert_close(actual, expected, dtype, what):
    if dtype.kind == "i":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    scale = float(np.max(np.abs(expected), initial=0.0))
    tol = (2e-5 if dtype == np.float32 else 1e-12) * scale
    err = float(np.max(np.abs(actual.astype(np.float64) - expected), initial=0.0))
    assert err <= tol, f"{what}: max error {err} > {tol} (max |ref| {scale})"


@settings(BASE_SETTINGS, max_examples=fuzz_examples(1500))
@given(valid_calls(), st.booleans())
def test_cpu_matches_reference_on_valid_calls(call, use_out):
    _check_cpu_against_reference(call, use_out)


@settings(BASE_SETTINGS, max_examples=fuzz_examples(150))
@given(valid_calls(large=True), st.booleans())
def test_cpu_blas_paths_match_reference(call, use_out):
    _check_cpu_against_reference(call, use_out)


def _check_cpu_against_reference(call, use_out):
    """cpu == the reference == a direct loop over the definition; inputs untouched."""
    kwargs, plain = call
    before = {k: (v.copy() if isinstance(v, np.ndarray) else repr(v)) for k, v in kwargs.items()}
    shape, dtype = plain["full_shape"], plain["dtype"]
    out = np.full(shape, 7, dtype) if use_out else None  # garbage: every element must be written
    got = conv2d_transpose(**kwargs, backend="cpu", out=out)
    ref = conv2d_transpose(**kwargs, backend="numpy")
    assert got.shape == shape and ref.shape == shape
    assert got.dtype == dtype and ref.dtype == dtype
    assert got.flags.c_contiguous
    if use_out:
        assert got is out
    _assert_close(got, ref, dtype, "cpu vs numpy reference")

    # The reference itself against the definition, with pads derived here.
    (in_h, in_w), (out_h, out_w), (k_h, k_w) = plain["in_hw"], plain["out_hw"], plain["k_hw"]
    (s_h, s_w), (d_h, d_w), kind, pads = plain["strides"], plain["dilations"], plain["kind"], plain["pads"]
    pad_top = forward_pad_before(in_h, out_h, k_h, s_h, d_h, kind, pads[0])
    pad_left = forward_pad_before(in_w, out_w, k_w, s_w, d_w, kind, pads[2])
    expected = direct_transpose(plain["x_nhwc"], plain["f"], (out_h, out_w), plain["out_c"], (s_h, s_w),
                                (d_h, d_w), (pad_top, pad_left), plain["groups"])
    if plain["data_format"] == "NCHW":
        expected = expected.transpose(0, 3, 1, 2)
    if dtype.kind == "i":
        expected = expected.astype(dtype)  # values are small: no wrap-around
    _assert_close(ref, expected, dtype, "numpy reference vs direct loop")

    for key, value in kwargs.items():  # inputs untouched
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, before[key])
        else:
            assert repr(value) == before[key]


def test_valid_strategy_covers_the_forms():
    """The generator does reach the corners it claims to (guards against a silently narrow strategy)."""
    seen = set()

    @settings(BASE_SETTINGS, max_examples=300)
    @given(valid_calls())
    def collect(call):
        kwargs, plain = call
        seen.add(("df", plain["data_format"]))
        seen.add(("dtype", plain["dtype"].name))
        seen.add(("kind", plain["kind"]))
        seen.add(("short", plain["short"]))
        seen.add(("grouped", plain["groups"] > 1))
        seen.add(("empty", 0 in plain["x_nhwc"].shape))
        seen.add(("dilated", max(plain["dilations"]) > 1))
        seen.add(("strided", max(plain["strides"]) > 1))
        seen.add(("dilations-None", kwargs.get("dilations", 0) is None))
        seen.add(("strides-int", isinstance(kwargs["strides"], int)))
        seen.add(("strides-len4", isinstance(kwargs["strides"], list) and len(kwargs["strides"]) == 4))
        if isinstance(kwargs.get("padding"), str):
            seen.add(("lower-case", kwargs["padding"] != kwargs["padding"].upper()))

    collect()
    wanted = {("df", "NHWC"), ("df", "NCHW"), ("dtype", "float32"), ("dtype", "float64"), ("dtype", "int32"),
              ("kind", "SAME"), ("kind", "VALID"), ("kind", "EXPLICIT"), ("short", True), ("short", False),
              ("grouped", True), ("empty", True), ("dilated", True), ("strided", True),
              ("dilations-None", True), ("strides-int", True), ("strides-len4", True), ("lower-case", True)}
    assert wanted <= seen, wanted - seen


def test_large_strategy_reaches_the_blas_paths():
    """valid_calls(large=True) takes the register-tiled and dot kernels and
    both BLAS gathers (few output channels, NCHW; many, with few pixels per
    row phase)."""
    from numba_convt._normalize import normalize
    from numba_convt.backends import cpu
    from numba_convt.backends.cpu import _cost

    seen = set()

    @settings(BASE_SETTINGS, max_examples=100)
    @given(valid_calls(large=True))
    def collect(call):
        kwargs, plain = call
        args = {k: v for k, v in kwargs.items() if k not in ("input", "filters")}
        spec = normalize(np.asarray(kwargs["input"]), kwargs["filters"], args["output_shape"], args["strides"],
                         args.get("padding", "SAME"), args.get("data_format") or "NHWC", args.get("dilations"))
        path = cpu.plan(spec).path
        if path in ("tiled", "dot"):
            seen.add(path)
        elif path == "blas" and not _cost._is_subpixel(spec):
            seen.add("pixels-last" if spec.out_c < 16 else "channels-last")

    collect()
    assert seen == {"pixels-last", "channels-last", "tiled", "dot"}


# --------------------------------------------------------------------------
# (b) one argument perturbed into a refused value
# --------------------------------------------------------------------------

SPY_CALLS = []


def _spy(spec, x, filters, out):
    SPY_CALLS.append(spec)
    out[...] = 0


@pytest.fixture(scope="module")
def spy_backend():
    numba_convt.register_backend("prop_spy", _spy, overwrite=True)
    yield "prop_spy"
    numba_convt._registry._registry.pop("prop_spy", None)  # no public unregister


NAME_PATTERN = {
    "input": r"input",
    "filters": r"filters",
    "output_shape": r"output_shape",
    "strides": r"strides",
    "dilations": r"dilations",
    "padding": r"padding",
    "data_format": r"data_format",
    "backend": r"backend",
    "out": r"\bout\b",
}

BAD_DTYPES = [np.uint8, np.int8, np.int16, np.uint16, np.uint32, np.uint64, np.bool_, object, str, "M8[s]"]


def _bad_window(draw, name, data_format):
    choice = draw(st.sampled_from(["zero", "negative", "huge", "length", "outer", "bool", "fraction",
                                   "nonfinite", "string", "nested"]))  # None is valid: 1, as in TF
    h = draw(st.integers(1, 3))
    if choice == "zero":
        return draw(st.sampled_from([0, [0], [h, 0], [0, h], [1, 0, h, 1] if data_format == "NHWC" else [1, 1, 0, h]]))
    if choice == "negative":
        return draw(st.sampled_from([-h, [-h], [h, -1], [1, -h, 1, 1] if data_format == "NHWC" else [1, 1, h, -h]]))
    if choice == "huge":
        return draw(st.sampled_from([2**31, [1, 2**31], 10**20, [2**63, 1]]))
    if choice == "length":
        n = draw(st.sampled_from([0, 3, 5, 6]))
        return draw(st.sampled_from([[h] * n, tuple([1] * n), np.ones(n, int)]))
    if choice == "outer":
        bad = draw(st.integers(2, 4))
        pos = draw(st.sampled_from([0, 3] if data_format == "NHWC" else [0, 1]))
        value = [1, h, h, 1] if data_format == "NHWC" else [1, 1, h, h]
        value[pos] = bad
        return value
    if choice == "bool":
        return draw(st.sampled_from([True, False, [True, True], [1, False]]))
    if choice == "fraction":
        return draw(st.sampled_from([1.5, [2, 2.5], np.float64(0.5), np.array([1.5, 1.0])]))
    if choice == "nonfinite":
        return draw(st.sampled_from([float("nan"), float("inf"), [1, float("-inf")]]))
    if choice == "string":
        return draw(st.sampled_from(["2", b"2", ["2", "2"], {"h": 1}]))
    return draw(st.sampled_from([[[1, 1]], np.ones((2, 2), int), [1, [1]]]))  # nested


@st.composite
def perturbed_calls(draw):
    kwargs, plain = draw(valid_calls())
    kwargs = dict(kwargs, data_format=plain["data_format"])
    name = draw(st.sampled_from(sorted(NAME_PATTERN)))
    data_format = plain["data_format"]
    nchw = data_format == "NCHW"
    x, f = kwargs["input"], kwargs["filters"]
    dtype = plain["dtype"]
    shape4 = not plain["short"]

    if name == "input":
        options = ["rank", "dtype", "none", "channels", "spatial"] + (["batch"] if shape4 else [])
        how = draw(st.sampled_from(options))
        if how == "rank":
            bad = draw(st.sampled_from([np.zeros(x.shape[:3], dtype), np.zeros(x.shape + (1,), dtype),
                                        np.zeros((), dtype), np.zeros(x.shape[:1], dtype)]))
        elif how == "dtype":
            bad = x.astype(draw(st.sampled_from(BAD_DTYPES)))
        elif how == "none":
            bad = None
        elif how == "channels":
            shape = list(x.shape)
            shape[1 if nchw else 3] += draw(st.integers(1, 2))
            bad = np.ones(shape, dtype)
        elif how == "batch":
            shape = list(x.shape)
            shape[0] += draw(st.integers(1, 2))
            bad = np.ones(shape, dtype)
        else:  # spatial size the output_shape is not consistent with
            dim = draw(st.sampled_from([0, 1]))
            out_size = plain["out_hw"][dim]
            k, s, d = plain["k_hw"][dim], plain["strides"][dim], plain["dilations"][dim]
            p = plain["pads"][2 * dim:2 * dim + 2]
            wrong = [n for n in range(8) if out_size not in tf_consistent_sizes(n, k, s, d, plain["kind"], *p)]
            shape = list(x.shape)
            shape[(2 if nchw else 1) + dim] = draw(st.sampled_from(wrong))
            bad = np.ones(shape, dtype)
    elif name == "filters":
        how = draw(st.sampled_from(["rank", "dtype", "none", "in-channels", "zero-dim"]))
        if how == "rank":
            bad = draw(st.sampled_from([np.zeros(f.shape[:3], dtype), np.zeros(f.shape + (1,), dtype),
                                        np.zeros((), dtype)]))
        elif how == "dtype":
            bad = f.astype(draw(st.sampled_from(BAD_DTYPES)))
        elif how == "none":
            bad = None
        elif how == "in-channels":
            bad = np.ones(f.shape[:3] + (f.shape[3] + draw(st.integers(1, 2)),), dtype)
        else:
            shape = list(f.shape)
            shape[draw(st.sampled_from([0, 1, 2]))] = 0
            bad = np.ones(shape, dtype)
    elif name == "output_shape":
        values = list(np.asarray(kwargs["output_shape"]).tolist())
        options = ["type", "length", "entry-type", "negative", "huge", "float-array", "spatial"]
        if shape4:
            options += ["batch", "channels"]
        how = draw(st.sampled_from(options))
        i = draw(st.integers(0, len(values) - 1))
        if how == "type":
            bad = draw(st.sampled_from([None, "12", 12, 12.0, {1: 2}, b"ab", object()]))
        elif how == "length":
            n = draw(st.sampled_from([0, 1, 3, 5]))
            bad = ([1] * 5 + values)[-n:] if n else []
        elif how == "entry-type":
            values[i] = draw(st.sampled_from([float(values[i]), float("nan"), float("inf"), None, True,
                                              str(values[i]), [values[i]], complex(values[i])]))
            bad = values
        elif how == "negative":
            values[i] = -draw(st.integers(1, 5))
            bad = values
        elif how == "huge":
            values[i] = draw(st.sampled_from([2**31, 2**40, 10**30]))
            bad = values
        elif how == "float-array":
            bad = np.array(values, draw(st.sampled_from([np.float32, np.float64, np.bool_, object])))
        elif how == "spatial":
            dim = draw(st.sampled_from([0, 1]))
            k, s, d = plain["k_hw"][dim], plain["strides"][dim], plain["dilations"][dim]
            p = plain["pads"][2 * dim:2 * dim + 2]
            legal = tf_consistent_sizes(plain["in_hw"][dim], k, s, d, plain["kind"], *p)
            wrong = draw(st.integers(0, max(legal) + 5).filter(lambda v: v not in legal))
            pos = (2 if nchw else 1) + dim if shape4 else dim
            values[pos] = wrong
            bad = values
        elif how == "batch":
            values[0] = plain["batch"] + draw(st.integers(1, 3))
            bad = values
        else:  # channels: not a positive multiple of filters.shape[2]
            g = plain["group_out"]
            wrong = draw(st.integers(0, 3 * g).filter(lambda v: v == 0 or v % g))
            values[1 if nchw else 3] = wrong
            bad = values
    elif name in ("strides", "dilations"):
        bad = _bad_window(draw, name, data_format)
    elif name == "padding":
        how = draw(st.sampled_from(["explicit-str", "unknown-str", "type", "size", "flat", "pair-size",
                                    "negative", "outer", "entry-type"]))
        spatial = [[1, 1], [1, 1]]
        good = [[0, 0], *spatial, [0, 0]] if not nchw else [[0, 0], [0, 0], *spatial]
        if how == "explicit-str":
            bad = _case("EXPLICIT", draw)
        elif how == "unknown-str":
            bad = draw(st.text(max_size=8).filter(lambda t: t.upper() not in ("SAME", "VALID", "EXPLICIT")))
        elif how == "type":
            bad = draw(st.sampled_from([5, True, 1.5]))
        elif how == "size":
            bad = good[:draw(st.sampled_from([0, 1, 2, 3]))] if draw(st.booleans()) else good + [[0, 0]]
        elif how == "flat":
            bad = [v for pair in good for v in pair]
        elif how == "pair-size":
            bad = [list(p) for p in good]
            bad[draw(st.integers(0, 3))] = draw(st.sampled_from([[], [0], [0, 0, 0]]))
        elif how == "negative":
            bad = [list(p) for p in good]
            bad[draw(st.integers(0, 3))][draw(st.integers(0, 1))] = -draw(st.integers(1, 3))
        elif how == "outer":
            bad = [list(p) for p in good]
            bad[draw(st.sampled_from([0, 1] if nchw else [0, 3]))][draw(st.integers(0, 1))] = draw(st.integers(1, 3))
        else:
            bad = [list(p) for p in good]
            bad[draw(st.integers(0, 3))][draw(st.integers(0, 1))] = draw(st.sampled_from([0.5, 1.0, None, True, "1"]))
    elif name == "data_format":
        bad = draw(st.one_of(
            st.sampled_from(["NHCW", "nhwc", "nchw", "NCW", "NDHWC", "", "NHWC ", "CHWN"]),
            st.text(max_size=6).filter(lambda t: t not in ("NHWC", "NCHW")),
            st.sampled_from([1, True, b"NHWC", ["NHWC"]]),
        ))
    elif name == "backend":
        bad = draw(st.one_of(
            st.text(max_size=8).filter(lambda t: t.lower() not in ("auto", "cpu", "numpy", "prop_spy")
                                       and t.lower() not in numba_convt.available_backends()),
            st.sampled_from([None, 1, True, ["cpu"], b"cpu"]),
        ))
    else:  # out
        shape = plain["full_shape"]
        how = draw(st.sampled_from(["type", "shape", "dtype", "noncontiguous", "readonly", "overlap"]))
        if how == "type":
            bad = draw(st.sampled_from([[0.0], 0.0, "out", (1, 2)]))
        elif how == "shape":
            wrong = list(shape)
            wrong[draw(st.integers(0, 3))] += draw(st.integers(1, 2))
            bad = np.zeros(draw(st.sampled_from([tuple(wrong), tuple(shape[:3]), tuple(shape) + (1,)])), dtype)
        elif how == "dtype":
            other = draw(st.sampled_from([d for d in (np.float32, np.float64, np.int32, np.int64, np.float16)
                                          if np.dtype(d) != dtype]))
            bad = np.zeros(shape, other)
        elif how == "noncontiguous":
            assume(np.prod(shape) > 1)
            bad = np.zeros(tuple(2 * n for n in shape), dtype)[::2, ::2, ::2, ::2]
            assert not bad.flags.c_contiguous
        elif how == "readonly":
            bad = np.zeros(shape, dtype)
            bad.flags.writeable = False
        else:  # out and input share memory
            assume(x.size > 0 and np.prod(shape) > 0)
            buf = np.zeros(int(np.prod(shape)) + x.size, dtype)
            bad = buf[:int(np.prod(shape))].reshape(shape)
            start = draw(st.integers(0, int(np.prod(shape)) - 1))
            kwargs["input"] = buf[start:start + x.size].reshape(x.shape)
            kwargs["input"][...] = np.ascontiguousarray(x)
    kwargs[name] = bad
    return name, kwargs


@settings(BASE_SETTINGS, max_examples=fuzz_examples(1500))
@given(perturbed_calls())
def test_one_perturbed_argument_is_refused_by_name(spy_backend, case):
    name, kwargs = case
    kwargs.setdefault("backend", spy_backend)
    arrays = {k: v.copy() for k, v in kwargs.items() if isinstance(v, np.ndarray) and not v.dtype.hasobject}
    SPY_CALLS.clear()
    with pytest.raises((ValueError, TypeError)) as info:
        conv2d_transpose(**kwargs)
    message = str(info.value)
    assert message.strip(), f"empty message for a bad {name}"
    assert re.search(NAME_PATTERN[name], message), f"bad {name}, message does not name it: {message!r}"
    assert SPY_CALLS == [], "a backend ran before the error"
    for key, before in arrays.items():
        np.testing.assert_array_equal(kwargs[key], before, err_msg=f"{key} modified")


# --------------------------------------------------------------------------
# (c) junk anywhere: only ValueError/TypeError may escape
# --------------------------------------------------------------------------

_BOUNDARY_INTS = [0, -1, 2**31 - 1, 2**31, -2**31 - 1, 2**32, 2**63 - 1, 2**63, 2**64, -2**63 - 1, 10**30]
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.integers(-3, 20), st.sampled_from(_BOUNDARY_INTS),
    st.floats(allow_nan=True, allow_infinity=True), st.complex_numbers(), st.text(max_size=6),
    st.binary(max_size=4), st.fractions(max_denominator=5),
    st.sampled_from(["SAME", "VALID", "same", "EXPLICIT", "NHWC", "NCHW", "cpu", "numpy", "auto",
                     object(), Ellipsis, slice(1), np.int64(2), np.float32(1.0), np.bool_(True)]),
)
_arrays = hnp.arrays(
    dtype=hnp.scalar_dtypes(),
    shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=3),
)
_near_misses = st.one_of(  # shaped like real arguments, with odd entries
    st.lists(st.one_of(st.integers(-3, 20), st.sampled_from(_BOUNDARY_INTS), _scalars), max_size=6),
    st.lists(st.lists(st.one_of(st.integers(-2, 3), _scalars), max_size=3), max_size=5),
    hnp.arrays(hnp.integer_dtypes() | hnp.unsigned_integer_dtypes() | hnp.floating_dtypes(),
               hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=5)),
)
JUNK = st.recursive(
    st.one_of(_scalars, _arrays, _near_misses),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.tuples(inner, inner), st.tuples(inner, inner, inner, inner),
        st.dictionaries(st.text(max_size=2), inner, max_size=2), st.frozensets(st.integers(0, 3), max_size=3),
    ),
    max_leaves=12,
)
ARGUMENTS = ("input", "filters", "output_shape", "strides", "padding", "data_format", "dilations", "name",
             "backend", "out")


@settings(BASE_SETTINGS, max_examples=fuzz_examples(2000))
@given(valid_calls(), st.sampled_from(ARGUMENTS),
       st.lists(st.sampled_from(ARGUMENTS), max_size=2, unique=True) | st.just([]), st.data())
def test_junk_never_escapes_as_another_exception(call, first, others, data):
    names = dict.fromkeys([first, *others])  # mostly one argument, so later checks are reached too
    kwargs, _ = call
    kwargs = dict(kwargs, backend="numpy")
    for name in names:
        kwargs[name] = data.draw(JUNK, label=name)
    try:
        conv2d_transpose(**kwargs)
    except (ValueError, TypeError) as error:
        assert str(error).strip(), f"empty {type(error).__name__} message"
