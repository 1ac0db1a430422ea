"""Every argument ``tf.nn.conv1d_transpose``/``conv3d_transpose``/``conv_transpose`` refuse, refused here too.

Each row is one bad call (``tf_nd_semantics.md`` sections 2 and 4): it must
raise exactly ``ValueError`` or ``TypeError`` with a message naming the
argument and the value, before any kernel runs (a spy backend records calls),
without touching the arguments. Rows run through the rank's function and,
where the rank routes the same way, through ``conv_transpose``. The sizes an
inconsistency message lists are checked against the brute force of TF's
rule in ``common.py``.
"""

import re

import numpy as np
import pytest
from common import tf_consistent_sizes
from common_nd import FORMATS, FUNCTIONS

import numba_convt
from numba_convt import conv_transpose

SPY_CALLS = []


@pytest.fixture(autouse=True)
def spy():
    numba_convt.register_backend("spy_nd", lambda spec, x, f, out: SPY_CALLS.append(spec), overwrite=True)
    SPY_CALLS.clear()
    yield SPY_CALLS
    numba_convt._registry._registry.pop("spy_nd", None)  # no public unregister


def _snapshot(value):
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.strides, value.dtype.str,
                value.tolist() if value.dtype.hasobject else value.tobytes())
    return ("other", type(value), repr(value))


def expect_error(function, kwargs, exc, pattern):
    """Call on the spy backend: exactly ``exc``, message matching ``pattern``, nothing run or modified."""
    kwargs = dict(kwargs, backend="spy_nd")
    before = {key: _snapshot(value) for key, value in kwargs.items()}
    with pytest.raises(Exception) as info:
        function(**kwargs)
    assert type(info.value) is exc, f"expected {exc.__name__}, got {type(info.value).__name__}: {info.value}"
    message = str(info.value)
    assert re.search(pattern, message), f"message {message!r} does not match {pattern!r}"
    assert SPY_CALLS == [], "a kernel ran before the error was raised"
    assert {key: _snapshot(value) for key, value in kwargs.items()} == before, "an argument was modified"
    return message


_RNG = np.random.default_rng(0)
X = {1: _RNG.standard_normal((2, 4, 3)).astype(np.float32), 3: _RNG.standard_normal((2, 2, 3, 4, 3)).astype(np.float32)}
F = {1: _RNG.standard_normal((3, 2, 3)).astype(np.float32), 3: _RNG.standard_normal((2, 2, 2, 2, 3)).astype(np.float32)}
OUT = {1: [8], 3: [4, 6, 8]}  # SAME, stride 2


def good(rank, first=False):
    """A valid call: channels-last, or channels-first (``first``)."""
    x = np.ascontiguousarray(np.moveaxis(X[rank], -1, 1)) if first else X[rank]
    shape = [2, 2, *OUT[rank]] if first else [2, *OUT[rank], 2]
    return dict(input=x, filters=F[rank], output_shape=shape, strides=2, padding="SAME",
                data_format=FORMATS[rank][first], dilations=None)


def test_spy_sees_valid_calls():
    for rank in (1, 3):
        for first in (False, True):
            FUNCTIONS[rank](**good(rank, first), backend="spy_nd")
            conv_transpose(**good(rank, first), backend="spy_nd")
    assert len(SPY_CALLS) == 8


def _full(rank, first, spatial, outer=(1, 1)):
    """A length rank+2 window/pad list: ``outer`` in the batch and channel slots."""
    return [outer[0], outer[1], *spatial] if first else [outer[0], *spatial, outer[1]]


def rows(rank):
    """(id, overrides, exc, regex, channels-first base, routed by conv_transpose like the rank function)."""
    n, cl, cf = rank + 2, *FORMATS[rank]
    lengths = "1 or 3" if rank == 1 else "1, 3 or 5"
    x, f = X[rank], F[rank]
    ones, twos = [1] * rank, [2] * rank
    table = []

    def add(id_, overrides, exc, pattern, first=False, routed=True):
        table.append(pytest.param(rank, first, routed, overrides, exc, pattern, id=f"{rank}d-{id_}"))

    # data_format: other ranks' formats, letter case, non-strings
    for bad in [fmt for r, fmts in FORMATS.items() if r != rank for fmt in fmts] + [cl.lower(), cf.lower(), "", cl + " "]:
        add(f"df-{bad!r}", dict(data_format=bad), ValueError, rf"data_format.*'{cl}'.*'{cf}'.*{re.escape(repr(bad))}")
    for bad in (1, True, cl.encode(), [cl]):
        add(f"df-{bad!r}", dict(data_format=bad), TypeError, rf"data_format.*{re.escape(repr(bad))}")
    # strides / dilations
    for arg in ("strides", "dilations"):
        for bad in ([], [2, 2], [1, 2, 2, 1], [1] * (n + 1)):
            if len(bad) not in (1, rank, n):
                add(f"{arg}-len{len(bad)}", {arg: bad}, ValueError,
                    rf"{arg} should be of length {lengths}.*{re.escape(str(bad))} of length {len(bad)}")
        add(f"{arg}-zero", {arg: 0}, ValueError, rf"{arg}=\[0(, 0)*\] must all be in \[1,")
        add(f"{arg}-zero-one-axis", {arg: [*ones[1:], 0]}, ValueError, rf"{arg}=\[(1, )*0\]")
        add(f"{arg}-negative", {arg: -2}, ValueError, rf"{arg}=\[-2.*must all be in \[1,")
        add(f"{arg}-huge", {arg: 2**31}, ValueError, rf"{arg}.*2147483648")
        for first in (False, True):
            for slot, outer in (("batch", (2, 1)), ("channel", (1, 2)), ("zero-batch", (0, 1))):
                bad = _full(rank, first, ones, outer)
                add(f"{arg}-{slot}-{FORMATS[rank][first]}", {arg: bad}, ValueError,
                    rf"{arg}={re.escape(str(bad))} must be 1 in the batch and channel", first=first)
        add(f"{arg}-bool", {arg: True}, TypeError, rf"{arg}.*boolean.*True")
        add(f"{arg}-bool-entry", {arg: [*ones[1:], False]}, TypeError, rf"{arg}.*boolean.*False")
        add(f"{arg}-fraction", {arg: 1.5}, TypeError, rf"{arg}.*1\.5")
        add(f"{arg}-fraction-entry", {arg: [*ones[1:], 2.5]}, TypeError, rf"{arg}.*2\.5")
        add(f"{arg}-nan", {arg: float("nan")}, TypeError, rf"{arg}.*nan")
        add(f"{arg}-None-entry", {arg: [*ones[1:], None]}, TypeError, rf"{arg}.*None")
        add(f"{arg}-str", {arg: "2"}, TypeError, rf"{arg}.*'2'")
        add(f"{arg}-array-2d", {arg: np.ones((1, rank), int)}, ValueError, rf"{arg} must be 1-D.*\(1, {rank}\)")
    # padding
    spatial_pairs = [[1, 1]] * rank
    for bad in ("EXPLICIT", "explicit"):
        add(f"padding-{bad}", dict(padding=bad), ValueError, rf"'{bad}' is not a valid value for `padding`")
    for bad in ("FULL", "", "SAME "):
        add(f"padding-{bad!r}", dict(padding=bad), ValueError, rf"padding must be 'SAME', 'VALID'.*{n} .*{bad!r}")
    for bad in (5, None, True, b"SAME"):
        add(f"padding-{bad!r}", dict(padding=bad), TypeError, rf"padding must be a string.*{re.escape(repr(bad))}")
    for count in sorted({0, n - 1, n + 1, 4} - {n}):
        add(f"padding-{count}-pairs", dict(padding=[[0, 0]] * count), ValueError, rf"padding.*size {n}.*size {count}")
    add("padding-flat", dict(padding=[0] * (2 * n)), ValueError, r"padding.*size 2.*index 0")
    add("padding-pair-len3", dict(padding=[[0, 0], *spatial_pairs[1:], [1, 1, 1], [0, 0]]), ValueError,
        rf"padding.*size 2.*index {rank}.*\[1, 1, 1\]")
    add("padding-negative", dict(padding=[[0, 0], *spatial_pairs[1:], [-1, 1], [0, 0]]), ValueError,
        r"padding=.*-1.*must be in \[0,")
    add("padding-float", dict(padding=[[0, 0], *spatial_pairs[1:], [1.5, 1], [0, 0]]), TypeError, r"padding.*1\.5")
    for first in (False, True):
        for slot, pair in (("batch", 0), ("channel", 1 if first else n - 1)):
            bad = [[0, 0] for _ in range(n)]
            bad[pair] = [0, 1]
            add(f"padding-{slot}-{FORMATS[rank][first]}", dict(padding=bad), ValueError,
                rf"padding=.*must be \[0, 0\] in the batch and channel dimensions \({FORMATS[rank][first]}",
                first=first)
    # output_shape: lengths (2-D's spatial-only [H, W], and 1-D/3-D's own spatial-only form, do not exist)
    for bad in ([], OUT[rank], [8, 2], [2, 8, 8, 2], [2, *OUT[rank], 2, 1]):
        if len(bad) != n:
            add(f"os-len{len(bad)}-{bad}", dict(output_shape=bad), ValueError,
                rf"output_shape must have {n} values \({cl}\); got {len(bad)}: {re.escape(str(bad))}",
                routed=False)
    add("os-negative", dict(output_shape=[2, *OUT[rank][1:], -8, 2]), ValueError, r"output_shape=.*-8.*\[0, 2\*\*31")
    add("os-huge", dict(output_shape=[2, *OUT[rank][1:], 2**31, 2]), ValueError, r"output_shape.*2147483648")
    for bad, shown in ((8.0, r"8\.0"), (8.5, r"8\.5"), ("8", "'8'"), (True, "True"), (None, "None")):
        add(f"os-entry-{bad!r}", dict(output_shape=[2, *OUT[rank][:-1], bad, 2]), TypeError,
            rf"output_shape entries.*{shown}")
    add("os-float-array", dict(output_shape=np.array([2, *OUT[rank], 2], float)), TypeError,
        r"output_shape must hold integers.*float64")
    add("os-dict", dict(output_shape={i: i for i in range(n)}), TypeError, r"output_shape must be a list.*\{0: 0")
    add("os-batch", dict(output_shape=[3, *OUT[rank], 2]), ValueError, r"output_shape batch 3 must equal the input batch 2")
    add("os-batch-ncw", dict(output_shape=[1, 2, *OUT[rank]]), ValueError, r"output_shape batch 1 .* batch 2", first=True)
    add("os-channels", dict(output_shape=[2, *OUT[rank], 3]), ValueError,
        rf"output_shape channels 3 must be a positive multiple of filters\.shape\[{rank}\] = 2")
    add("os-channels-zero", dict(output_shape=[2, *OUT[rank], 0]), ValueError, r"output_shape channels 0")
    add("os-channels-first-given-last", dict(output_shape=[2, *OUT[rank], 2]), ValueError,
        rf"output_shape channels {OUT[rank][0]}\b", first=True)
    add("groups-not-dividing", dict(output_shape=[2, *OUT[rank], 4]), ValueError,
        rf"input channels 3 must be divisible by the group count 2 .*filters\.shape\[{rank}\] 2")
    # input / filters
    for what, arr in (("input", x), ("filters", f)):
        for bad in (arr[0], arr[None], np.ones((1,) * (n + 1), np.float32), np.float32(1)):
            add(f"{what}-rank{bad.ndim}", {what: bad}, ValueError,
                rf"{what} must be {n}-D; got {bad.ndim}-D with shape {re.escape(str(bad.shape))}")
        for dtype in (np.uint8, np.int16, np.bool_, object, "U1", "M8[s]"):
            bad = arr.astype(dtype)
            add(f"{what}-{bad.dtype}", {what: bad}, TypeError, rf"{what} has unsupported dtype {re.escape(str(bad.dtype))}; accepted")
    add("input-ragged-list", dict(input=[[[1.0, 2.0]], [[1.0]]]), ValueError, r"input could not be converted to an array")
    add("filters-ragged-list", dict(filters=[[[1.0, 2.0]], [[1.0]]]), ValueError, r"filters could not be converted")
    add("input-None", dict(input=None), TypeError, r"input has unsupported dtype object")
    add("filters-in-channels", dict(filters=np.ones((*f.shape[:-1], 5), np.float32)), ValueError,
        rf"filters\.shape\[{rank + 1}\] \(input channels\) = 5 must equal the input's channels 3")
    add("filters-in-channels-ncw", dict(filters=np.ones((*f.shape[:-1], 4), np.float32)), ValueError,
        rf"filters\.shape\[{rank + 1}\].* = 4 must equal the input's channels 3", first=True)
    for axis in range(rank + 1):  # every kernel axis, then the output channels
        shape = list(f.shape)
        shape[axis] = 0
        add(f"filters-zero-axis{axis}", dict(filters=np.ones(shape, np.float32)), ValueError,
            rf"filters must have non-zero .*output channels.*got shape {re.escape(str(tuple(shape)))}")
    return table


ROWS = rows(1) + rows(3)


@pytest.mark.parametrize("rank, first, routed, overrides, exc, pattern", ROWS)
def test_refused(rank, first, routed, overrides, exc, pattern):
    expect_error(FUNCTIONS[rank], dict(good(rank, first), **overrides), exc, pattern)


@pytest.mark.parametrize("rank, first, routed, overrides, exc, pattern", [row for row in ROWS if row.values[2]])
def test_refused_by_conv_transpose(rank, first, routed, overrides, exc, pattern):
    """The same rows through ``conv_transpose`` (all but output_shape lengths, which pick another rank)."""
    expect_error(conv_transpose, dict(good(rank, first), **overrides), exc, pattern)


# --------------------------------------------------------------------------
# conv_transpose's own dispatch (TF's nn_test.py ConvTransposeTest, spec 2.3)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("args, exc, pattern", [
    ((None, 2, [2, 3], "SAME"), ValueError, r"`output_shape` must be of length 3, 4 or 5.* of length 2\."),
    ((None, 2, [2, 3, 4, 2, 5, 1], "SAME"), ValueError, r"`output_shape` must be of length 3, 4 or 5.* of length 6\."),
    ((None, None, None, None), ValueError, r"`output_shape` must be a tensor or sized collection.*None"),
    ((None, None, 8, 2), ValueError, r"`output_shape` must be a tensor or sized collection.*=8"),
    ((None, None, "abc", 2), ValueError, r"sized collection.*'abc'"),
    ((None, None, np.array(8), 2), ValueError, r"sized collection.*array\(8\)"),
    ((None, None, np.array([[2, 8, 2]]), 2), ValueError, r"sized collection.*\[\[2, 8, 2\]\]"),
    ((None, None, [], 2), ValueError, r"of length 3, 4 or 5.* of length 0\."),
    ((X[1], F[1], [2, 2, 8, 8, 2], 2), ValueError, r"input must be 5-D; got 3-D"),      # rank from output_shape
    ((X[3], F[3], [2, 8, 2], 2), ValueError, r"input must be 3-D; got 5-D"),
    ((X[1], F[1], [2, 8, 8, 2], 2), ValueError, r"input must be 4-D; got 3-D"),
    ((X[1], F[1], [2, 8, 2], 2, "SAME", "NCDHW"), ValueError, r"data_format must be 'NWC' or 'NCW' for 1-D; got 'NCDHW'"),
    ((X[3], F[3], [2, 4, 6, 8, 2], 2, "SAME", "NCHW"), ValueError, r"data_format must be 'NDHWC' or 'NCDHW'.*'NCHW'"),
])
def test_conv_transpose_dispatch_errors(args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        conv_transpose(*args, backend="spy_nd")
    assert SPY_CALLS == []


# --------------------------------------------------------------------------
# Where TF crashes, aborts or ignores an argument (spec 2.1, 3.4, 4.6, 4.7): a clear ValueError here
# --------------------------------------------------------------------------

def _one(rank, x_size, k, out_size, strides, padding):
    """A 1-channel call with one spatial axis of interest (the last), the others of size 1."""
    x = np.ones((1, *[1] * (rank - 1), x_size, 1), np.float32)
    f = np.ones((*[1] * (rank - 1), k, 1, 1), np.float32)
    return dict(input=x, filters=f, output_shape=[1, *[1] * (rank - 1), out_size, 1], strides=strides,
                padding=padding, dilations=None)


TF_UNDEFINED = [
    # 1-D length-3 quirk: TF reads [v0, s, v2] as 4-D [1, v0, s, v2] and runs these as stride 2
    (1, dict(good(1), strides=[5, 2, 1]), r"strides=\[5, 2, 1\] must be 1 in the batch and channel"),
    (1, dict(good(1, True), strides=[1, 3, 2]), r"strides=\[1, 3, 2\] must be 1 in the batch and channel"),
    (1, dict(good(1), dilations=[2, 1, 1]), r"dilations=\[2, 1, 1\] must be 1"),       # oneDNN: ignored
    (3, dict(good(3), dilations=[2, 1, 1, 1, 1]), r"dilations=\[2, 1, 1, 1, 1\] must be 1"),  # oneDNN: ignored
    (3, dict(good(3), dilations=[1, 1, 1, 1, 3]), r"dilations=\[1, 1, 1, 1, 3\] must be 1"),
    # oneDNN returns without checking sizes: empty output, empty input, small VALID outputs
    (1, _one(1, 3, 3, 0, 2, "VALID"), r"width \(dimension 1\) = 0 .*consistent output widths are 7\.\.8"),
    (1, _one(1, 0, 3, 5, 2, "SAME"), r"= 5 .*input width 0.*consistent output widths are 0\.\.0"),
    (3, _one(3, 0, 3, 5, 2, "VALID"), r"width \(dimension 3\) = 5 .*are 0\.\.2"),
    (1, _one(1, 1, 5, 3, 2, "VALID"), r"= 3 .*consistent output widths are 5\.\.6"),
    # oneDNN aborts the process (CHECK failures): output_shape lengths, negative entries
    (1, dict(good(1), output_shape=[8, 2]), r"output_shape must have 3 values \(NWC\); got 2"),
    (1, dict(good(1), output_shape=[2, 1, 8, 2]), r"output_shape must have 3 values \(NWC\); got 4"),
    (3, dict(good(3), output_shape=[6, 8, 2]), r"output_shape must have 5 values \(NDHWC\); got 3"),
    (3, dict(good(3), output_shape=[2, 4, 6, -8, 2]), r"output_shape=\[2, 4, 6, -8, 2\] entries must be in"),
    # TF's spatial-only reading of a 1-value 1-D output_shape
    (1, dict(good(1), output_shape=[1]), r"output_shape must have 3 values \(NWC\); got 1: \[1\]"),
    # zero-size kernel (TF: InternalError in 1-D float32, zeros in 3-D) and zero output channels (TF: IAE)
    (1, dict(good(1), filters=np.ones((0, 2, 3), np.float32)), r"filters must have non-zero width"),
    (3, dict(good(3), filters=np.ones((2, 0, 2, 2, 3), np.float32)), r"non-zero depth, height, width"),
    (3, dict(good(3), filters=np.ones((2, 2, 2, 0, 3), np.float32), output_shape=[2, 4, 6, 8, 0]),
     r"non-zero .*output channels.*\(2, 2, 2, 0, 3\)"),
]


@pytest.mark.parametrize("rank, kwargs, pattern", TF_UNDEFINED)
def test_what_tf_leaves_undefined_is_refused(rank, kwargs, pattern):
    expect_error(FUNCTIONS[rank], kwargs, ValueError, pattern)


# --------------------------------------------------------------------------
# Inconsistent sizes: the message names the dimension and lists TF's consistent sizes
# --------------------------------------------------------------------------

INCONSISTENT = [  # rank, input sizes, kernel, strides, dilations, padding, output sizes, bad axis
    (1, (4,), (3,), (2,), (1,), "SAME", (9,), 0),
    (1, (4,), (3,), (2,), (2,), "VALID", (8,), 0),
    (1, (0,), (4,), (2,), (1,), "VALID", (0,), 0),
    (1, (3,), (2,), (3,), (1,), [2, 1], (4,), 0),
    (3, (2, 3, 4), (2, 2, 2), (2, 2, 2), (1, 1, 1), "SAME", (5, 6, 8), 0),
    (3, (2, 3, 4), (2, 3, 2), (2, 1, 2), (1, 2, 1), "VALID", (4, 6, 8), 1),
    (3, (2, 3, 4), (2, 2, 3), (1, 2, 3), (1, 1, 2), "same", (2, 6, 13), 2),
    (3, (2, 3, 4), (2, 2, 2), (2, 2, 2), (1, 1, 1), [1, 0], (4, 6, 3), 2),
]


@pytest.mark.parametrize("first", [False, True])
@pytest.mark.parametrize("rank, in_sizes, kernel, strides, dilations, padding, out_sizes, bad", INCONSISTENT)
def test_inconsistent_output_lists_consistent_sizes(rank, in_sizes, kernel, strides, dilations, padding, out_sizes,
                                                    bad, first):
    explicit = not isinstance(padding, str)
    kind, pads = ("EXPLICIT", padding) if explicit else (padding.upper(), (0, 0))
    legal = [tf_consistent_sizes(i, k, s, d, kind, *pads) for i, k, s, d in zip(in_sizes, kernel, strides, dilations)]
    assert [o in sizes for o, sizes in zip(out_sizes, legal)] == [axis != bad for axis in range(rank)]
    if explicit:
        padding = _full(rank, first, [list(pads)] * rank, ([0, 0], [0, 0]))
    x = np.ones((2, *in_sizes, 3))
    kwargs = dict(input=np.moveaxis(x, -1, 1) if first else x, filters=np.ones((*kernel, 4, 3)),
                  output_shape=[2, 4, *out_sizes] if first else [2, *out_sizes, 4], strides=list(strides),
                  padding=padding, data_format=FORMATS[rank][first], dilations=list(dilations))
    name = ("depth", "height", "width")[3 - rank + bad]
    dimension = bad + (2 if first else 1)
    message = expect_error(FUNCTIONS[rank], kwargs, ValueError,
                           rf"output_shape {name} \(dimension {dimension}\) = {out_sizes[bad]} is inconsistent")
    listed = re.search(r"consistent output \w+s are (none|(\d+)\.\.(\d+))$", message)
    sizes = [] if listed.group(1) == "none" else list(range(int(listed.group(2)), int(listed.group(3)) + 1))
    assert sizes == legal[bad], f"message lists {sizes}, TF's rule gives {legal[bad]}"


# --------------------------------------------------------------------------
# Calls TF accepts, and the documented extensions, are not refused
# --------------------------------------------------------------------------

ACCEPTED = [
    (1, dict(strides=None, output_shape=[2, 4, 2])), (1, dict(strides=2.0)), (1, dict(strides=np.int64(2))),
    (1, dict(strides=[1, 2, 1])), (1, dict(strides=(2,))), (1, dict(strides=np.array([2]))),
    (1, dict(output_shape=(2, 8, 2))), (1, dict(output_shape=np.array([2, 8, 2], np.uint8))),
    (1, dict(output_shape=[np.int32(2), np.int64(8), 2])), (1, dict(data_format=None)), (1, dict(padding="same")),
    (1, dict(output_shape=[2, 7, 2])), (1, dict(padding=[[0, 0], [1, 1], [0, 0]], output_shape=[2, 7, 2])),
    (1, dict(output_shape=[2, 8, 4], input=np.ones((2, 4, 4), np.float32), filters=np.ones((3, 2, 4)))),  # groups
    (1, dict(dilations=[1, 2, 1])), (1, dict(input=X[1].astype(np.int32), filters=F[1].astype(np.int32))),
    (3, dict(strides=None, output_shape=[2, 2, 3, 4, 2])), (3, dict(strides=[2, 2, 2])),
    (3, dict(strides=[1, 2, 2, 2, 1])), (3, dict(output_shape=np.array([2, 4, 6, 8, 2], np.int64))),
    (3, dict(data_format=None)), (3, dict(dilations=[2, 1, 1])),
    (3, dict(padding=[[0, 0], [1, 0], [0, 1], [1, 1], [0, 0]], output_shape=[2, 3, 5, 6, 2])),
    (3, dict(input=X[3].astype(np.int32), filters=F[3].astype(np.int32))),                    # not in TF's 3-D op
    (3, dict(input=X[3].astype(np.int64), filters=F[3].astype(np.complex64))),
    (3, dict(input=np.ones((0, 2, 3, 4, 3)), output_shape=[0, 4, 6, 8, 2])),
    (3, dict(input=np.ones((2, 0, 3, 4, 3)), output_shape=[2, 0, 6, 8, 2])),
]


@pytest.mark.parametrize("rank, overrides", ACCEPTED)
def test_accepted_calls(rank, overrides):
    kwargs = dict(good(rank), **overrides)
    result = FUNCTIONS[rank](**kwargs, backend="numpy")
    assert result.shape == tuple(int(v) for v in kwargs["output_shape"])
    assert conv_transpose(**kwargs, backend="numpy").shape == result.shape
