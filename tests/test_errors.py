"""Every argument TensorFlow's ``tf.nn.conv2d_transpose`` refuses, refused here too.

Each row of the tables below is one bad call. It must raise exactly
``ValueError`` or ``TypeError`` (not a subclass such as NumPy's
``DTypePromotionError``) whose message names the argument and the offending
value, before any kernel runs (a spy backend records every call) and without
touching the caller's arrays or lists.

The consistent output sizes listed for an inconsistent ``output_shape`` are
checked against an independent brute force of TF's forward size rule
(``tf_semantics.md`` section 2: C-style truncating division), never against the
package's own ``legal_output_sizes``.
"""

import fractions
import re

import numpy as np
import pytest
from common import c_div, tf_consistent_sizes, tf_forward_size

import numba_convt
from numba_convt import conv2d_transpose


def test_brute_force_rule_matches_spec_examples():
    """The independent rule reproduces the worked examples of the spec itself."""
    assert c_div(-1, 2) == 0 and c_div(-3, 2) == -1 and c_div(3, 2) == 1
    assert tf_consistent_sizes(6, 3, 2, 1, "SAME") == [11, 12]          # test 2
    assert tf_consistent_sizes(6, 3, 2, 1, "VALID") == [13, 14]         # probe "VALID 13x9"/"14x10"
    assert tf_forward_size(13, 3, 2, 1, "SAME") == 7                    # probe "computed = 7"
    assert tf_forward_size(12, 3, 2, 1, "VALID") == 5                   # probe "computed = 5"
    assert tf_forward_size(1, 4, 2, 1, "VALID") == 0                    # truncation: H_in = 0 accepted
    assert tf_forward_size(0, 4, 2, 1, "VALID") == -1                   # "would be negative"
    assert tf_forward_size(2, 5, 1, 1, "VALID") == -2                   # probe "filter bigger VALID"


# --------------------------------------------------------------------------
# The spy backend and the call helper.
# --------------------------------------------------------------------------

SPY_CALLS = []


def _spy_run(spec, x, filters, out):
    SPY_CALLS.append(spec)
    out[...] = 0


@pytest.fixture(autouse=True)
def spy():
    numba_convt.register_backend("spy", _spy_run, overwrite=True)
    SPY_CALLS.clear()
    yield SPY_CALLS
    SPY_CALLS.clear()
    # No public unregister: drop it so other test modules see the usual backends.
    numba_convt._registry._registry.pop("spy", None)


_RNG = np.random.default_rng(0)
X = _RNG.standard_normal((2, 6, 4, 3)).astype(np.float32)       # NHWC input
F = _RNG.standard_normal((3, 3, 2, 3)).astype(np.float32)       # [KH, KW, C_out, C_in]
X_NCHW = np.ascontiguousarray(X.transpose(0, 3, 1, 2))          # (2, 3, 6, 4)
GOOD = dict(input=X, filters=F, output_shape=[2, 12, 8, 2], strides=2, padding="SAME",
            data_format="NHWC", dilations=None)
GOOD_NCHW = dict(GOOD, input=X_NCHW, output_shape=[2, 2, 12, 8], data_format="NCHW")


def _snapshot(value):
    """A comparable picture of an argument: bytes, shape, strides and dtype of arrays, repr of the rest."""
    if isinstance(value, np.ndarray):
        data = value.tolist() if value.dtype.hasobject else value.tobytes()
        return ("array", value.shape, value.strides, value.dtype.str, data)
    return ("other", type(value), repr(value))


def expect_error(kwargs, exc_class, pattern, spy_calls):
    """Call with ``kwargs`` on the spy backend; check class, message, no run, no mutation."""
    kwargs = dict(kwargs)
    kwargs.setdefault("backend", "spy")
    before = {key: _snapshot(value) for key, value in kwargs.items()}
    with pytest.raises(Exception) as info:
        conv2d_transpose(**kwargs)
    error = info.value
    assert type(error) is exc_class, f"expected {exc_class.__name__}, got {type(error).__name__}: {error}"
    message = str(error)
    assert message.strip(), "empty error message"
    assert re.search(pattern, message), f"message {message!r} does not match {pattern!r}"
    assert spy_calls == [], "a kernel ran before the error was raised"
    for key, value in kwargs.items():
        assert _snapshot(value) == before[key], f"argument {key} was modified"
    return message


def test_spy_sees_valid_calls(spy):
    """Sanity check of the harness: the spy does record a valid call (so 'never called' means something)."""
    out = conv2d_transpose(**GOOD, backend="spy")
    assert out.shape == (2, 12, 8, 2) and len(spy) == 1
    conv2d_transpose(**GOOD_NCHW, backend="spy")
    assert len(spy) == 2


# --------------------------------------------------------------------------
# The table: (id, overrides of GOOD or GOOD_NCHW, exception, regex).
# --------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
I32_MAX = 2**31 - 1


def row(id_, overrides, exc, pattern, base=GOOD, marks=()):
    return pytest.param(dict(base, **overrides), exc, pattern, id=id_, marks=marks)


def nchw(id_, overrides, exc, pattern, marks=()):
    return row(id_, overrides, exc, pattern, base=GOOD_NCHW, marks=marks)


INPUT_ROWS = [
    row("input-None", dict(input=None), TypeError, r"input.*object"),
    row("input-str", dict(input="abc"), TypeError, r"input.*<U3"),
    row("input-bool", dict(input=X > 0), TypeError, r"input.*bool"),
    row("input-uint8", dict(input=X.astype(np.uint8)), TypeError, r"input.*uint8"),
    row("input-int8", dict(input=X.astype(np.int8)), TypeError, r"input.*int8"),
    row("input-int16", dict(input=X.astype(np.int16)), TypeError, r"input.*int16"),
    row("input-uint32", dict(input=X.astype(np.uint32)), TypeError, r"input.*uint32"),
    row("input-uint64", dict(input=X.astype(np.uint64)), TypeError, r"input.*uint64"),
    row("input-longdouble", dict(input=X.astype(np.longdouble)), TypeError, r"input.*float(128|96)",
        marks=pytest.mark.skipif(np.dtype(np.longdouble).itemsize == 8, reason="longdouble is float64 here")),
    row("input-str-array", dict(input=X.astype(str)), TypeError, r"input.*<U"),
    row("input-bytes-array", dict(input=X.astype(bytes)), TypeError, r"input.*\|S"),
    row("input-object", dict(input=X.astype(object)), TypeError, r"input.*object"),
    row("input-datetime", dict(input=np.zeros(X.shape, "M8[s]")), TypeError, r"input.*datetime64"),
    row("input-structured", dict(input=np.zeros(X.shape, [("a", "f4")])), TypeError, r"input.*\('a'"),
    row("input-dict", dict(input={1: 2}), TypeError, r"input.*object"),
    row("input-0d", dict(input=np.ones((), np.float32)), ValueError, r"input.*0-D"),
    row("input-scalar", dict(input=1.0), ValueError, r"input.*0-D"),
    row("input-rank3", dict(input=X[0]), ValueError, r"input.*3-D.*\(6, 4, 3\)"),
    row("input-rank5", dict(input=X[None]), ValueError, r"input.*5-D.*\(1, 2, 6, 4, 3\)"),
    row("input-rank6-list", dict(input=[[[[[[1.0]]]]]]), ValueError, r"input.*6-D"),
    row("input-ragged-list", dict(input=[[[[1.0, 2.0]], [[1.0]]]]), ValueError, r"input"),
]

FILTER_ROWS = [
    row("filters-None", dict(filters=None), TypeError, r"filters.*object"),
    row("filters-str", dict(filters="abc"), TypeError, r"filters.*<U3"),
    row("filters-bool", dict(filters=F > 0), TypeError, r"filters.*bool"),
    row("filters-uint8", dict(filters=F.astype(np.uint8)), TypeError, r"filters.*uint8"),
    row("filters-object", dict(filters=F.astype(object)), TypeError, r"filters.*object"),
    row("filters-0d", dict(filters=np.ones((), np.float32)), ValueError, r"filters.*0-D"),
    row("filters-rank3", dict(filters=F[0]), ValueError, r"filters.*3-D.*\(3, 2, 3\)"),
    row("filters-rank5", dict(filters=F[None]), ValueError, r"filters.*5-D"),
    row("filters-in-channels", dict(filters=np.ones((3, 3, 2, 5), np.float32)), ValueError,
        r"filters.*5.*3"),
    row("filters-in-channels-nchw", dict(filters=np.ones((3, 3, 2, 4), np.float32)), ValueError,
        r"filters.*4.*3", base=GOOD_NCHW),
    row("filters-zero-height", dict(filters=np.ones((0, 3, 2, 3), np.float32)), ValueError,
        r"filters.*\(0, 3, 2, 3\)"),
    row("filters-zero-width", dict(filters=np.ones((3, 0, 2, 3), np.float32)), ValueError,
        r"filters.*\(3, 0, 2, 3\)"),
    row("filters-zero-out-channels", dict(filters=np.ones((3, 3, 0, 3), np.float32), output_shape=[12, 8]),
        ValueError, r"filters.*\(3, 3, 0, 3\)"),
]

OUTPUT_SHAPE_ROWS = [
    row("os-None", dict(output_shape=None), TypeError, r"output_shape.*None"),
    row("os-str", dict(output_shape="abc"), TypeError, r"output_shape.*'abc'"),
    row("os-bytes", dict(output_shape=b"ab"), TypeError, r"output_shape.*b'ab'"),
    row("os-int", dict(output_shape=12), TypeError, r"output_shape.*12"),
    row("os-float", dict(output_shape=12.0), TypeError, r"output_shape.*12\.0"),
    row("os-dict", dict(output_shape={1: 2}), TypeError, r"output_shape.*\{1: 2\}"),
    row("os-set", dict(output_shape={2, 12}), TypeError, r"output_shape.*\{"),
    row("os-object", dict(output_shape=object()), TypeError, r"output_shape.*object"),
    row("os-entry-float", dict(output_shape=[2, 12.0, 8, 2]), TypeError, r"output_shape.*12\.0"),
    row("os-entry-nan", dict(output_shape=[2, NAN, 8, 2]), TypeError, r"output_shape.*nan"),
    row("os-entry-inf", dict(output_shape=[2, 12, INF, 2]), TypeError, r"output_shape.*inf"),
    row("os-entry-None", dict(output_shape=[2, None, 8, 2]), TypeError, r"output_shape.*None"),
    row("os-entry-bool", dict(output_shape=[2, 12, True, 2]), TypeError, r"output_shape.*True"),
    row("os-entry-npbool", dict(output_shape=[2, 12, np.bool_(True), 2]), TypeError, r"output_shape.*True"),
    row("os-entry-str", dict(output_shape=[2, "12", 8, 2]), TypeError, r"output_shape.*'12'"),
    row("os-entry-complex", dict(output_shape=[2, 12, 8 + 0j, 2]), TypeError, r"output_shape.*8\+0j"),
    row("os-entry-list", dict(output_shape=[2, [12], 8, 2]), TypeError, r"output_shape.*\[12\]"),
    row("os-len2-float", dict(output_shape=[12.5, 8]), TypeError, r"output_shape.*12\.5"),
    row("os-array-float", dict(output_shape=np.array([2, 12, 8, 2], np.float64)), TypeError,
        r"output_shape.*float64"),
    row("os-array-nan", dict(output_shape=np.array([2, NAN, 8, 2])), TypeError, r"output_shape.*float64"),
    row("os-array-bool", dict(output_shape=np.array([True, True])), TypeError, r"output_shape.*bool"),
    row("os-array-object", dict(output_shape=np.array([2, 12, 8, 2], object)), TypeError,
        r"output_shape.*object"),
    row("os-array-str", dict(output_shape=np.array(["2", "12", "8", "2"])), TypeError, r"output_shape.*<U"),
    row("os-array-0d", dict(output_shape=np.array(12)), TypeError, r"output_shape.*12"),
    row("os-array-2d", dict(output_shape=np.array([[2, 12, 8, 2]])), ValueError,
        r"output_shape.*\(1, 4\)"),
    row("os-len0", dict(output_shape=[]), ValueError, r"output_shape.*\b0\b"),
    row("os-len1", dict(output_shape=[12]), ValueError, r"output_shape.*\b1\b.*\[12\]"),
    row("os-len3", dict(output_shape=[2, 12, 8]), ValueError, r"output_shape.*\b3\b.*\[2, 12, 8\]"),
    row("os-len3-tuple", dict(output_shape=(12, 8, 2)), ValueError, r"output_shape.*\b3\b.*\(12, 8, 2\)"),
    row("os-len5", dict(output_shape=[2, 12, 8, 2, 1]), ValueError, r"output_shape.*\b5\b"),
    row("os-negative", dict(output_shape=[2, -12, 8, 2]), ValueError, r"output_shape.*-12"),
    row("os-negative-batch", dict(output_shape=[-2, 12, 8, 2]), ValueError, r"output_shape.*-2"),
    row("os-negative-len2", dict(output_shape=[12, -8]), ValueError, r"output_shape.*-8"),
    row("os-huge", dict(output_shape=[2, 2**31, 8, 2]), ValueError, r"output_shape.*2147483648"),
    row("os-huge-len2", dict(output_shape=[12, 10**30]), ValueError, r"output_shape.*10{30}"),
    row("os-huge-uint64", dict(output_shape=np.array([2, 12, 8, 2**64 - 1], np.uint64)), ValueError,
        r"output_shape.*18446744073709551615"),
    row("os-batch-mismatch", dict(output_shape=[3, 12, 8, 2]), ValueError, r"output_shape.*batch.*3.*\b2\b"),
    row("os-batch-mismatch-empty", dict(output_shape=[0, 12, 8, 2]), ValueError, r"output_shape.*batch.*0.*\b2\b"),
    row("os-channels-not-multiple", dict(output_shape=[2, 12, 8, 3]), ValueError,
        r"output_shape.*channels.*3.*\b2\b"),
    row("os-channels-zero", dict(output_shape=[2, 12, 8, 0]), ValueError, r"output_shape.*channels.*\b0\b"),
    # Grouped: C_out = 4 = 2 * filters.shape[2] means 2 groups, but 3 input channels do not split in 2.
    row("groups-input-not-divisible", dict(output_shape=[2, 12, 8, 4]), ValueError,
        r"input channels 3.*group.*\b2\b"),
    row("groups-input-not-divisible-6", dict(output_shape=[2, 12, 8, 8]), ValueError,
        r"input channels 3.*group.*\b4\b"),
    nchw("os-nchw-batch-mismatch", dict(output_shape=[1, 2, 12, 8]), ValueError, r"output_shape.*batch.*1.*\b2\b"),
    nchw("os-nchw-channels", dict(output_shape=[2, 3, 12, 8]), ValueError, r"output_shape.*channels.*3"),
    # NHWC-ordered output_shape with NCHW data: the channel slot holds 12.
    nchw("os-nchw-given-nhwc-order", dict(output_shape=[2, 12, 8, 2]), ValueError,
         r"(output_shape|output channels).*\b12\b"),
]


def _window_rows(arg):
    return [
        row(f"{arg}-None-entry", {arg: [2, None]}, TypeError, rf"{arg}.*None"),
        row(f"{arg}-str", {arg: "2"}, TypeError, rf"{arg}.*'2'"),
        row(f"{arg}-bytes", {arg: b"2"}, TypeError, rf"{arg}.*b'2'"),
        row(f"{arg}-dict", {arg: {"h": 1}}, TypeError, rf"{arg}.*'h'"),
        row(f"{arg}-set", {arg: {1}}, TypeError, rf"{arg}.*\{{1\}}"),
        row(f"{arg}-object", {arg: object()}, TypeError, rf"{arg}.*object"),
        row(f"{arg}-bool", {arg: True}, TypeError, rf"{arg}.*True"),
        row(f"{arg}-bool-entry", {arg: [1, False]}, TypeError, rf"{arg}.*False"),
        row(f"{arg}-float", {arg: 1.5}, TypeError, rf"{arg}.*1\.5"),
        row(f"{arg}-nan", {arg: NAN}, TypeError, rf"{arg}.*nan"),
        row(f"{arg}-inf", {arg: [1, INF]}, TypeError, rf"{arg}.*inf"),
        row(f"{arg}-complex", {arg: 1 + 0j}, TypeError, rf"{arg}.*1\+0j"),
        row(f"{arg}-nested", {arg: [[1, 1]]}, TypeError, rf"{arg}.*\[1, 1\]"),
        row(f"{arg}-array-2d", {arg: np.ones((1, 2), int)}, ValueError, rf"{arg}.*\(1, 2\)"),
        row(f"{arg}-array-0d-zero", {arg: np.array(0)}, ValueError, rf"{arg}.*\[0, 0\]"),
        row(f"{arg}-array-0d-float", {arg: np.array(1.5)}, TypeError, rf"{arg}.*1\.5"),
        row(f"{arg}-array-len3", {arg: np.array([1, 2, 2])}, ValueError, rf"{arg}.*\[1, 2, 2\].*\b3\b"),
        row(f"{arg}-len0", {arg: []}, ValueError, rf"{arg}.*length 1, 2 or 4.*\b0\b"),
        row(f"{arg}-len3", {arg: [1, 2, 2]}, ValueError, rf"{arg}.*length 1, 2 or 4.*\[1, 2, 2\].*\b3\b"),
        row(f"{arg}-len5", {arg: [1, 1, 1, 1, 1]}, ValueError, rf"{arg}.*length 1, 2 or 4.*\b5\b"),
        row(f"{arg}-zero", {arg: 0}, ValueError, rf"{arg}.*\[0, 0\]"),
        row(f"{arg}-zero-w", {arg: [1, 0]}, ValueError, rf"{arg}.*\[1, 0\]"),
        row(f"{arg}-zero-len4", {arg: [1, 0, 1, 1]}, ValueError, rf"{arg}.*\[0, 1\]|{arg}.*\[1, 0, 1, 1\]"),
        row(f"{arg}-negative", {arg: -1}, ValueError, rf"{arg}.*-1"),
        row(f"{arg}-huge", {arg: 2**31}, ValueError, rf"{arg}.*2147483648"),
        row(f"{arg}-huge-float", {arg: 1e20}, ValueError, rf"{arg}.*100000000000000000000"),
        row(f"{arg}-nhwc-batch", {arg: [2, 1, 1, 1]}, ValueError, rf"{arg}.*\[2, 1, 1, 1\].*batch"),
        row(f"{arg}-nhwc-channel", {arg: [1, 1, 1, 2]}, ValueError, rf"{arg}.*\[1, 1, 1, 2\].*channel"),
        row(f"{arg}-nhwc-zero-batch", {arg: [0, 1, 1, 1]}, ValueError, rf"{arg}.*\[0, 1, 1, 1\]"),
        nchw(f"{arg}-nchw-channel", {arg: [1, 2, 1, 1]}, ValueError, rf"{arg}.*\[1, 2, 1, 1\].*channel"),
        nchw(f"{arg}-nchw-batch", {arg: [3, 1, 1, 1]}, ValueError, rf"{arg}.*\[3, 1, 1, 1\].*batch"),
    ]


WINDOW_ROWS = _window_rows("strides") + _window_rows("dilations") + [
    row("strides-huge-fraction", dict(strides=fractions.Fraction(10**400)), ValueError,
        r"strides.*1000"),
]

PADDING_ROWS = [
    row("padding-EXPLICIT", dict(padding="EXPLICIT"), ValueError, r"'EXPLICIT'.*padding"),
    row("padding-explicit-lower", dict(padding="explicit"), ValueError, r"(?i)'explicit'.*padding"),
    row("padding-FULL", dict(padding="FULL"), ValueError, r"padding.*'FULL'"),
    row("padding-empty", dict(padding=""), ValueError, r"padding.*''"),
    row("padding-trailing-space", dict(padding="SAME "), ValueError, r"padding.*'SAME '"),
    row("padding-int", dict(padding=5), TypeError, r"padding.*\b5\b"),
    row("padding-bool", dict(padding=True), TypeError, r"padding.*True"),
    row("padding-None", dict(padding=None), TypeError, r"padding.*None"),
    row("padding-bytes", dict(padding=b"SAME"), TypeError, r"padding.*b'SAME'"),
    row("padding-len0", dict(padding=[]), ValueError, r"padding.*size 4.*\b0\b"),
    row("padding-len3", dict(padding=[[0, 0], [1, 1], [1, 1]]), ValueError, r"padding.*size 4.*\b3\b"),
    row("padding-len5", dict(padding=[[0, 0]] * 5), ValueError, r"padding.*size 4.*\b5\b"),
    row("padding-flat", dict(padding=[0, 0, 1, 1, 1, 1, 0, 0]), ValueError, r"padding.*size 2.*index 0"),
    row("padding-pair-len3", dict(padding=[[0, 0], [1, 1, 1], [1, 1], [0, 0]]), ValueError,
        r"padding.*size 2.*index 1.*\[1, 1, 1\]"),
    row("padding-pair-len1", dict(padding=[[0, 0], [1, 1], [1], [0, 0]]), ValueError,
        r"padding.*size 2.*index 2.*\[1\]"),
    row("padding-negative", dict(padding=[[0, 0], [-1, 1], [1, 1], [0, 0]]), ValueError, r"padding.*-1"),
    row("padding-huge", dict(padding=[[0, 0], [1, 2**31], [1, 1], [0, 0]]), ValueError, r"padding.*2147483648"),
    row("padding-batch", dict(padding=[[1, 0], [1, 1], [1, 1], [0, 0]]), ValueError, r"padding.*\[1, 0\].*batch"),
    row("padding-channel-nhwc", dict(padding=[[0, 0], [1, 1], [1, 1], [0, 2]]), ValueError,
        r"padding.*\[0, 2\].*channel"),
    nchw("padding-channel-nchw", dict(padding=[[0, 0], [0, 1], [1, 1], [1, 1]]), ValueError,
         r"padding.*\[0, 1\].*channel"),
    row("padding-float-entry", dict(padding=[[0, 0], [1.5, 1], [1, 1], [0, 0]]), TypeError, r"padding.*1\.5"),
    row("padding-nan-entry", dict(padding=[[0, 0], [NAN, 1], [1, 1], [0, 0]]), TypeError, r"padding.*nan"),
    row("padding-bool-entry", dict(padding=[[0, 0], [True, 1], [1, 1], [0, 0]]), TypeError, r"padding.*True"),
    row("padding-None-entry", dict(padding=[[0, 0], [None, 1], [1, 1], [0, 0]]), TypeError, r"padding.*None"),
    row("padding-str-entry", dict(padding=[[0, 0], ["1", 1], [1, 1], [0, 0]]), TypeError, r"padding.*'1'"),
    row("padding-float-array", dict(padding=np.full((4, 2), 0.5)), TypeError, r"padding.*0\.5"),
    row("padding-array-3d", dict(padding=np.zeros((4, 2, 1), int)), TypeError, r"padding.*\[0\]"),
]

# Messages must describe the accepted forms of this argument (an int is never one).
MESSAGE_ROWS = [
    row("padding-None-wording", dict(padding=None), TypeError, r"^(?!.*an int or a list of ints).*padding.*None"),
    row("padding-bytes-wording", dict(padding=b"SAME"), TypeError, r"^(?!.*an int or a list of ints).*padding"),
    row("padding-str-pair-wording", dict(padding=[[0, 0], "ab", [0, 0], [0, 0]]), ValueError,
        r"padding.*size 2.*index 1"),
    row("os-None-wording", dict(output_shape=None), TypeError, r"^(?!.*an int or a list of ints).*output_shape"),
]

DATA_FORMAT_ROWS = [
    row("df-NHCW", dict(data_format="NHCW"), ValueError, r"data_format.*'NHCW'"),
    row("df-nhwc", dict(data_format="nhwc"), ValueError, r"data_format.*'nhwc'"),
    row("df-nchw", dict(data_format="nchw"), ValueError, r"data_format.*'nchw'"),
    row("df-NCW", dict(data_format="NCW"), ValueError, r"data_format.*'NCW'"),
    row("df-NDHWC", dict(data_format="NDHWC"), ValueError, r"data_format.*'NDHWC'"),
    row("df-empty", dict(data_format=""), ValueError, r"data_format.*''"),
    row("df-int", dict(data_format=1), TypeError, r"data_format.*\b1\b"),
    row("df-bool", dict(data_format=True), TypeError, r"data_format.*True"),
    row("df-bytes", dict(data_format=b"NHWC"), TypeError, r"data_format.*b'NHWC'"),
    row("df-list", dict(data_format=["NHWC"]), TypeError, r"data_format.*\['NHWC'\]"),
]

BACKEND_ROWS = [
    row("backend-unknown", dict(backend="gpu"), ValueError, r"backend.*'gpu'.*cpu"),
    row("backend-empty", dict(backend=""), ValueError, r"backend.*''"),
    row("backend-space", dict(backend="cpu "), ValueError, r"backend.*'cpu '"),
    row("backend-None", dict(backend=None), TypeError, r"backend.*None"),
    row("backend-int", dict(backend=1), TypeError, r"backend.*\b1\b"),
    row("backend-bool", dict(backend=False), TypeError, r"backend.*False"),
]


def _overlap_input():
    buf = np.zeros(2 * 12 * 8 * 2, np.float32)
    out = buf.reshape(2, 12, 8, 2)
    x = buf[: X.size].reshape(X.shape)
    x[...] = X
    return dict(input=x, out=out)


def _overlap_filters():
    buf = np.zeros(2 * 12 * 8 * 2, np.float32)
    out = buf.reshape(2, 12, 8, 2)
    f = buf[100: 100 + F.size].reshape(F.shape)
    f[...] = F
    return dict(filters=f, out=out)


def _read_only():
    out = np.zeros((2, 12, 8, 2), np.float32)
    out.flags.writeable = False
    return dict(out=out)


OUT_ROWS = [
    row("out-list", dict(out=[[0.0]]), TypeError, r"\bout\b.*list"),
    row("out-tuple", dict(out=()), TypeError, r"\bout\b.*tuple"),
    row("out-scalar", dict(out=0.0), TypeError, r"\bout\b.*float"),
    row("out-shape", dict(out=np.zeros((2, 12, 8, 3), np.float32)), ValueError,
        r"\bout\b.*\(2, 12, 8, 2\).*\(2, 12, 8, 3\)"),
    row("out-shape-rank", dict(out=np.zeros((2, 12, 8), np.float32)), ValueError, r"\bout\b.*\(2, 12, 8\)"),
    nchw("out-nhwc-shape-for-nchw", dict(out=np.zeros((2, 12, 8, 2), np.float32)), ValueError,
         r"\bout\b.*\(2, 2, 12, 8\).*\(2, 12, 8, 2\)"),
    row("out-dtype", dict(out=np.zeros((2, 12, 8, 2), np.float64)), ValueError, r"\bout\b.*float32.*float64"),
    row("out-dtype-int", dict(out=np.zeros((2, 12, 8, 2), np.int32)), ValueError, r"\bout\b.*float32.*int32"),
    row("out-dtype-byteswapped", dict(out=np.zeros((2, 12, 8, 2), ">f4" if np.little_endian else "<f4")),
        ValueError, r"\bout\b.*dtype"),
    row("out-noncontiguous", dict(out=np.zeros((2, 12, 8, 4), np.float32)[..., ::2]), ValueError,
        r"\bout\b.*contiguous"),
    row("out-fortran", dict(out=np.zeros((2, 12, 8, 2), np.float32, order="F")), ValueError,
        r"\bout\b.*contiguous"),
    row("out-readonly", _read_only(), ValueError, r"\bout\b.*writeable"),
    row("out-overlaps-input", _overlap_input(), ValueError, r"\bout\b.*memory.*input"),
    row("out-overlaps-filters", _overlap_filters(), ValueError, r"\bout\b.*memory.*filters"),
    row("out-is-input", dict(input=np.zeros((2, 12, 8, 2), np.float32), filters=np.ones((1, 1, 2, 2), np.float32),
                              strides=1, output_shape=[2, 12, 8, 2], out="SELF"), ValueError, r"\bout\b.*memory"),
]


# The largest consistent output: every spatial size 2**31 - 1 (VALID, kernel 1, stride 2**31 - 1).
HUGE = dict(input=np.ones((1, 1, 1, 1), np.float32), filters=np.ones((1, 1, 1, 1), np.float32),
            output_shape=[1, I32_MAX, I32_MAX, 1], strides=I32_MAX, padding="VALID", data_format="NHWC",
            dilations=None)
SIZE_ROWS = [
    pytest.param(HUGE, ValueError, r"output_shape.*2147483647.*(memory|GiB|bytes)", id="huge-output"),
    pytest.param(dict(HUGE, output_shape=[I32_MAX, I32_MAX]), ValueError,
                 r"output_shape.*2147483647.*(memory|GiB|bytes)", id="huge-output-len2"),
    pytest.param(dict(HUGE, input=np.ones((1, 1, 1, 1), np.complex128), filters=np.ones((1, 1, 1, 1), np.complex128),
                      output_shape=[1, 1, I32_MAX, I32_MAX], data_format="NCHW"),
                 ValueError, r"output_shape.*2147483647.*(memory|GiB|bytes)", id="huge-output-nchw-complex128"),
]


ALL_ROWS = (INPUT_ROWS + FILTER_ROWS + OUTPUT_SHAPE_ROWS + WINDOW_ROWS + PADDING_ROWS + MESSAGE_ROWS
            + DATA_FORMAT_ROWS + BACKEND_ROWS + OUT_ROWS + SIZE_ROWS)


@pytest.mark.parametrize("kwargs, exc, pattern", ALL_ROWS)
def test_refused(kwargs, exc, pattern, spy):
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("out"), str):  # "SELF": out is the input array itself
        kwargs["out"] = kwargs["input"]
    expect_error(kwargs, exc, pattern, spy)


def test_huge_rows_are_consistent():
    """The huge-output rows are refused for memory, not for an inconsistent size."""
    assert tf_forward_size(I32_MAX, 1, I32_MAX, 1, "VALID") == 1
    assert 4 * I32_MAX**2 > 2**60  # more than any machine's memory


# --------------------------------------------------------------------------
# Inconsistent spatial sizes: the message lists TF's consistent sizes.
# --------------------------------------------------------------------------

# (in_h, in_w, k_h, k_w, strides, dilations, padding, out_h, out_w, bad dimension)
INCONSISTENT = [
    (6, 4, 3, 3, 2, 1, "SAME", 13, 8, "height"),
    (6, 4, 3, 3, 2, 1, "SAME", 10, 8, "height"),
    (6, 4, 3, 3, 2, 1, "SAME", 12, 9, "width"),
    (6, 4, 3, 3, 2, 1, "SAME", 12, 6, "width"),
    (5, 4, 3, 3, 1, 1, "SAME", 6, 4, "height"),
    (5, 4, 3, 3, 1, 2, "same", 4, 4, "height"),
    (0, 4, 3, 3, 2, 1, "SAME", 1, 8, "height"),     # empty input: only 0 fits
    (6, 4, 3, 3, 2, 1, "VALID", 12, 9, "height"),
    (6, 4, 3, 3, 2, 1, "VALID", 15, 9, "height"),
    (6, 4, 3, 3, 2, 1, "VALID", 13, 11, "width"),
    (0, 4, 4, 3, 2, 1, "VALID", 0, 9, "height"),    # C truncation: 1..3 fit, 0 does not
    (0, 4, 4, 3, 2, 1, "VALID", 4, 9, "height"),
    (2, 4, 5, 3, 1, 1, "VALID", 2, 6, "height"),    # "computed size would be negative"
    (3, 4, 3, 3, 1, 2, "VALID", 6, 8, "height"),    # dilation 2: E = 5
    (3, 4, 3, 2, [2, 3], [3, 2], "valid", 12, 15, "width"),
    (6, 4, 3, 3, 2, 1, [[0, 0], [1, 2], [0, 0], [0, 0]], 12, 9, "height"),
    (6, 4, 3, 3, 2, 1, [[0, 0], [1, 2], [0, 0], [0, 0]], 9, 9, "height"),
    (1, 4, 1, 3, 1, 1, [[0, 0], [3, 3], [0, 0], [0, 0]], 1, 6, "height"),   # nothing fits
    (0, 4, 3, 3, 1, 1, [[0, 0], [1, 0], [0, 0], [0, 0]], 2, 6, "height"),
    (4, 4, 3, 3, 3, 1, [[0, 0], [0, 0], [2, 5], [0, 0]], 12, 8, "width"),
    (4, 4, 3, 3, 3, 2, [[0, 0], [0, 0], [2, 5], [0, 0]], 14, 0, "width"),
]


def _spatial(value):
    value = [value] if isinstance(value, int) else list(value)
    return value * 2 if len(value) == 1 else value


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("in_h, in_w, k_h, k_w, strides, dilations, padding, out_h, out_w, bad", INCONSISTENT)
def test_inconsistent_output_lists_consistent_sizes(in_h, in_w, k_h, k_w, strides, dilations, padding,
                                                    out_h, out_w, bad, data_format, spy):
    s_h, s_w = _spatial(strides)
    d_h, d_w = _spatial(dilations)
    if isinstance(padding, str):
        kind, (pt, pb), (pl, pr) = padding.upper(), (0, 0), (0, 0)
    else:
        kind, (pt, pb), (pl, pr) = "EXPLICIT", padding[1], padding[2]
    legal_h = tf_consistent_sizes(in_h, k_h, s_h, d_h, kind, pt, pb)
    legal_w = tf_consistent_sizes(in_w, k_w, s_w, d_w, kind, pl, pr)
    # The row itself is right: exactly one dimension is inconsistent, and it is `bad`.
    assert (out_h in legal_h) == (bad == "width") and (out_w in legal_w) == (bad == "height")
    legal, axis = (legal_h, 1) if bad == "height" else (legal_w, 2)
    x = np.ones((2, in_h, in_w, 3), np.float64)
    output_shape = [2, out_h, out_w, 4]
    if data_format == "NCHW":
        x, output_shape, axis = x.transpose(0, 3, 1, 2), [2, 4, out_h, out_w], axis + 1
        if not isinstance(padding, str):
            padding = [padding[0], padding[3], padding[1], padding[2]]
    kwargs = dict(input=x, filters=np.ones((k_h, k_w, 4, 3)), output_shape=output_shape, strides=strides,
                  padding=padding, data_format=data_format, dilations=dilations)
    bad_value = out_h if bad == "height" else out_w
    message = expect_error(kwargs, ValueError, rf"output_shape.*{bad}.*\b{bad_value}\b", spy)
    assert re.search(rf"(dimension|dim|axis|index)\D{{0,3}}{axis}\b", message), f"dimension {axis} not named: {message}"
    listed = re.search(r"consistent output \w+ are (none|\d+\.\.\d+|\d+(?:, \d+)*)\s*$", message)
    assert listed, f"no list of consistent sizes in {message!r}"
    text = listed.group(1)
    if text == "none":
        sizes = []
    elif ".." in text:
        low, high = map(int, text.split(".."))
        sizes = list(range(low, high + 1))
    else:
        sizes = [int(v) for v in text.split(", ")]
    assert sizes == legal, f"message lists {sizes}, TF's rule gives {legal}"
    # Each listed size (when any) is accepted by the same call.
    for size in legal[:1] + legal[-1:]:
        shape = list(output_shape)
        shape[axis] = size
        conv2d_transpose(**dict(kwargs, output_shape=shape), backend="spy")


# --------------------------------------------------------------------------
# Calls TF accepts must not be refused (boundary of the tables above).
# --------------------------------------------------------------------------

VALID_EDGE = [
    pytest.param(dict(GOOD, strides=2.0), id="strides-integral-float"),
    pytest.param(dict(GOOD, strides=np.int64(2)), id="strides-np-int64"),
    pytest.param(dict(GOOD, strides=(2, 2)), id="strides-tuple"),
    pytest.param(dict(GOOD, strides=[1, 2, 2, 1]), id="strides-len4"),
    pytest.param(dict(GOOD, strides=np.array([2, 2])), id="strides-array"),
    pytest.param(dict(GOOD, dilations=[1, 1, 1, 1]), id="dilations-len4"),
    pytest.param(dict(GOOD, data_format=None), id="data-format-None"),
    pytest.param(dict(GOOD, output_shape=(2, 12, 8, 2)), id="output-shape-tuple"),
    pytest.param(dict(GOOD, output_shape=np.array([2, 12, 8, 2], np.int64)), id="output-shape-int64-array"),
    pytest.param(dict(GOOD, output_shape=[12, 8]), id="output-shape-len2"),
    pytest.param(dict(GOOD, output_shape=[2, 11, 7, 2]), id="output-shape-smallest-same"),
    pytest.param(dict(GOOD, padding=[[0, 0], [1, 1], [1, 1], [0, 0]], output_shape=[2, 11, 7, 2]), id="explicit"),
    pytest.param(dict(GOOD, input=np.ones((0, 6, 4, 3), np.float32), output_shape=[0, 12, 8, 2]), id="empty-batch"),
    pytest.param(dict(GOOD, input=np.ones((2, 0, 4, 3), np.float32), output_shape=[2, 0, 8, 2]), id="empty-spatial"),
    pytest.param(dict(GOOD, input=np.ones((1, 0, 1, 1), np.float32), filters=np.ones((4, 1, 1, 1), np.float32),
                      output_shape=[1, 1, 1, 1], padding="VALID", strides=[2, 1]), id="valid-truncation-H_in-0"),
    pytest.param(dict(GOOD, strides=range(2, 4), output_shape=[2, 12, 12, 2]), id="strides-range"),
]


@pytest.mark.parametrize("kwargs", VALID_EDGE)
def test_tf_accepted_edge_calls(kwargs):
    result = conv2d_transpose(**kwargs, backend="numpy")
    shape = list(kwargs["output_shape"])
    if len(shape) == 2:
        shape = [kwargs["input"].shape[0], *shape, kwargs["filters"].shape[2]]
    assert result.shape == tuple(shape)


def test_numpy_backend_huge_explicit_pads():
    s = I32_MAX
    kwargs = dict(input=np.ones((1, 2, 2, 1), np.float32), filters=np.ones((1, 1, 1, 1), np.float32),
                  output_shape=[1, 1, 1, 1], strides=s, padding=[[0, 0], [s, 0], [s, 0], [0, 0]])
    # Consistent by TF's rule: (1 + s - 1 + s) / s == 2 == H_in.
    assert tf_forward_size(1, 1, s, 1, "EXPLICIT", s, 0) == 2
    # Row 1 (iy = 1) lands at s * 1 - pad_top = 0: the output is the last input pixel.
    assert conv2d_transpose(**kwargs, backend="cpu")[0, 0, 0, 0] == 1.0
    assert conv2d_transpose(**kwargs, backend="numpy")[0, 0, 0, 0] == 1.0
