"""Golden data for the 1-D and 3-D functions, from TensorFlow 2.21 (``make_golden.py --nd``).

Output
------
``tests/data/tf_golden_nd.npz``, the record format of ``tf_golden.npz``
(see ``make_golden.py``) with two more keys per case: ``op`` (the TF function
called: ``conv1d_transpose``, ``conv3d_transpose`` or ``conv_transpose``) and
``rank`` (1 or 3). ``data_format`` may be ``null`` (the function's default,
channels-last). The arguments are recorded exactly as passed to ``tf.nn.<op>``.

How TF's answer is computed
---------------------------
Seed ``numpy.random.default_rng(SEED)``; STOCK kernels
(``TF_ENABLE_ONEDNN_OPTS=0``). Where the stock kernel accepts the call it is
made as is (route ``direct``). It refuses NCW/NCDHW, dilations and groups;
then ``route`` names the exact identities built from TF ops, as in 2-D:
``nchw_transpose`` (transpose to NWC/NDHWC and back), ``dilated_filter``
(zeros inserted into the filter, dilation 1: same effective size, so the
same size checks and pads) and ``grouped_split`` (one call per group on the
group's input-channel slice of input and filters, outputs concatenated).
``--check-routes`` compares the routes with oneDNN's direct calls (float32),
which accept channels-first and dilations (and 1-D groups).
"""
import os

import numpy as np

from make_golden import _legal_sizes, _to_tf_dtype, print_summary, record

SEED = 2114
OUT_PATH = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "tf_golden_nd.npz")
FORMATS = {1: ("NWC", "NCW"), 3: ("NDHWC", "NCDHW")}
FUNCTION = {1: "conv1d_transpose", 3: "conv3d_transpose"}
BUDGET = {False: 2500, True: 9000}  # elements of x + filters + output: small / 16-48 channels


# ----------------------------------------------------------------------------- sampling
def _as_form(form, values, fmt):
    """Write per-axis values in one of the forms TF accepts (1-D: 1 or 3, 3-D: 1, 3 or 5)."""
    if form == "none":
        return None
    if form == "int":
        return values[0]
    if form == "len1":
        return [values[0]]
    if form == "rank":
        return list(values)
    return [1, *values, 1] if fmt in ("NWC", "NDHWC") else [1, 1, *values]  # "outer": rank + 2


def _draw_form(rng, values, allow_none):
    """A form for ``values`` (forms with one value only when the axes agree)."""
    forms = (["none"] if allow_none and values == [1] * len(values) else []) + ["rank", "outer"]
    if len(set(values)) == 1:
        forms += ["int", "len1"]
    return str(rng.choice(forms))


def _channels(rng, groups, big):
    """(C_in, C_out / G): 1-5 per group, or C_in and C_out in 16-48."""
    low, high = (-(-16 // groups), 48 // groups) if big else (1, 6 // groups)
    return groups * int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1))


def _sample(rng, rank, dtype, force=None):
    """Draw one valid configuration of ``rank`` spatial axes; ``force`` overrides draws."""
    force = force or {}
    while True:
        fmt = force.get("fmt", FORMATS[rank][int(rng.random() < 0.4)])
        groups = force.get("groups", int(rng.choice([2, 3])) if rng.random() < 0.15 else 1)
        big = force.get("big", rng.random() < 0.15)
        n = force.get("n", 0 if rng.random() < 0.03 else int(rng.integers(1, 4)))
        max_in, max_k = (9, 6) if rank == 1 else (4, 3)
        ins = force.get("ins", [0 if rank == 1 and rng.random() < 0.05 else int(rng.integers(1, max_in + 1))
                                for _ in range(rank)])
        ks = force.get("k", [int(rng.integers(1, (2 if big and rank == 3 else max_k) + 1)) for _ in range(rank)])
        ss = force.get("s", [int(rng.integers(1, 4)) for _ in range(rank)])
        ds = force.get("d", [int(rng.integers(1, 4)) for _ in range(rank)] if rng.random() < 0.35 else [1] * rank)
        if rng.random() < 0.5:  # equal axes, so the one-value forms get drawn
            ss, ds = force.get("s", ss[:1] * rank), force.get("d", ds[:1] * rank)
        padding = force.get("pad", str(rng.choice(["SAME", "VALID"])))
        c_in, c_pg = _channels(rng, groups, big)
        legal = [_legal_sizes(ins[a], ks[a], ss[a], ds[a], padding) for a in range(rank)]
        if not all(legal):
            continue
        pick = force.get("out", "random")
        outs = [lg[0] if pick == "min" else lg[-1] if pick == "max" else int(rng.choice(lg)) for lg in legal]
        c_out = groups * c_pg
        xshape = [n, *ins, c_in] if fmt == FORMATS[rank][0] else [n, c_in, *ins]
        fshape = [*ks, c_pg, c_in]
        size = np.prod(xshape) + np.prod(fshape) + n * np.prod(outs) * c_out
        if size <= BUDGET[big]:
            break

    output_shape = [n, *outs, c_out] if fmt == FORMATS[rank][0] else [n, c_out, *outs]
    if dtype == "int32":
        x = rng.integers(-4, 5, xshape).astype(np.int32)
        f = rng.integers(-4, 5, fshape).astype(np.int32)
    else:
        x, f = rng.uniform(-1, 1, xshape), rng.uniform(-1, 1, fshape)
    op = force.get("op", "conv_transpose" if rng.random() < 0.3 else FUNCTION[rank])
    strides = _as_form(_draw_form(rng, ss, allow_none=True), ss, fmt)
    dilations = _as_form(_draw_form(rng, ds, allow_none=True), ds, fmt)
    data_format = None if op == "conv_transpose" and fmt == FORMATS[rank][0] and rng.random() < 0.5 else fmt
    case = dict(op=op, rank=rank, dtype=dtype, output_shape=output_shape, strides=strides,
                padding=padding, data_format=data_format, dilations=dilations)
    route = [r for r, on in (("nchw_transpose", fmt == FORMATS[rank][1]),
                             ("dilated_filter", ds != [1] * rank),
                             ("grouped_split", groups > 1)) if on]
    case["route"] = "+".join(route) or "direct"
    return case, x, f


# Configurations that random draws rarely hit, by (rank, case index).
FORCED = {
    (1, 3): dict(pad="SAME", k=[1], s=[3], d=[1], out="min"),                 # E < s, smallest size
    (1, 9): dict(pad="VALID", k=[2], s=[3], d=[1], out="max"),                # VALID extra sizes, E < s
    (1, 14): dict(pad="VALID", ins=[0], k=[5], s=[2], d=[1], out="max"),      # empty input: zeros
    (1, 20): dict(n=0, groups=1),
    (1, 27): dict(fmt="NCW", groups=2, d=[2], pad="VALID", out="max"),
    (1, 33): dict(big=True, groups=1, fmt="NWC", op="conv1d_transpose"),
    (1, 41): dict(big=True, groups=2, fmt="NCW"),
    (1, 48): dict(pad="SAME", k=[4], s=[2], d=[3], fmt="NCW", out="max"),
    (3, 2): dict(pad="SAME", k=[1, 2, 1], s=[3, 1, 2], d=[1, 1, 1], out="min"),
    (3, 8): dict(pad="VALID", k=[2, 1, 3], s=[3, 2, 1], d=[1, 1, 1], out="max"),
    (3, 15): dict(n=0, groups=1),
    (3, 21): dict(fmt="NCDHW", groups=3, d=[2, 1, 3], pad="SAME"),
    (3, 29): dict(big=True, groups=1, fmt="NDHWC", op="conv3d_transpose"),
    (3, 37): dict(big=True, groups=2, fmt="NCDHW"),
    (3, 44): dict(fmt="NDHWC", groups=2, pad="VALID", d=[1, 2, 1], out="max"),
    (3, 52): dict(pad="VALID", k=[3, 3, 3], s=[2, 1, 2], d=[1, 1, 1], ins=[2, 3, 2], out="max"),
}


def make_cases():
    """The (case, x, filters) triples: 60 1-D ones, then 60 3-D ones."""
    rng = np.random.default_rng(SEED)
    dtypes = {1: ["float32"] * 30 + ["float64"] * 8 + ["float16"] * 8 + ["bfloat16"] * 6 + ["int32"] * 8,
              3: ["float32"] * 34 + ["float64"] * 10 + ["float16"] * 9 + ["bfloat16"] * 7}
    cases = []
    for rank in (1, 3):
        rng.shuffle(dtypes[rank])
        cases += [_sample(rng, rank, dt, FORCED.get((rank, i))) for i, dt in enumerate(dtypes[rank])]
    return cases


# ----------------------------------------------------------------------------- TF calls
def _spatial(value, rank, fmt):
    """Per-axis values of a strides/dilations argument, as TF's ``_get_sequence`` reads them."""
    if value is None:
        return [1] * rank
    v = [value] if isinstance(value, int) else list(value)
    if len(v) == rank + 2:
        return v[1:-1] if fmt == FORMATS[rank][0] else v[2:]
    return v * rank if len(v) == 1 else v


def tf_direct(tf, x, f, c):
    return getattr(tf.nn, c["op"])(x, f, c["output_shape"], c["strides"], c["padding"],
                                   c["data_format"], c["dilations"])


def tf_route(tf, x, f, c):
    """TF's answer via channels-last, dilation-1, ungrouped calls of the rank's function."""
    rank = c["rank"]
    fmt = c["data_format"] or FORMATS[rank][0]
    strides, dils = _spatial(c["strides"], rank, fmt), _spatial(c["dilations"], rank, fmt)
    osh = list(c["output_shape"])
    first = fmt == FORMATS[rank][1]
    if first:
        x = tf.transpose(x, [0, *range(2, rank + 2), 1])
        osh = [osh[0], *osh[2:], osh[1]]
    if dils != [1] * rank:
        ks = f.shape[:rank]
        fd = np.zeros(tuple((k - 1) * d + 1 for k, d in zip(ks, dils)) + f.shape[rank:], f.dtype)
        fd[tuple(slice(None, None, d) for d in dils)] = f
        f = fd
    c_pg, c_in = f.shape[-2:]
    groups = osh[-1] // c_pg
    cg = c_in // groups
    call = getattr(tf.nn, FUNCTION[rank])
    parts = [call(x[..., g * cg:(g + 1) * cg], f[..., g * cg:(g + 1) * cg], osh[:-1] + [c_pg],
                  strides, c["padding"], FORMATS[rank][0], None) for g in range(groups)]
    y = tf.concat(parts, axis=-1)
    return tf.transpose(y, [0, rank + 1, *range(1, rank + 1)]) if first else y


def check_routes(tf, cases):
    """oneDNN mode: each routed float32 case, direct call vs route."""
    for i, (c, x, f) in enumerate(cases):
        if c["route"] == "direct" or c["dtype"] != "float32":
            continue
        x, f = x.astype(np.float32), f.astype(np.float32)
        try:
            yd = tf_direct(tf, x, f, c).numpy()
        except Exception as e:  # oneDNN refuses it too (3-D groups)
            print(f"case {i:3d} {c['route']:40s} direct refused: {type(e).__name__}")
            continue
        d = np.abs(yd - tf_route(tf, x, f, c).numpy()).max(initial=0)
        print(f"case {i:3d} {c['route']:40s} |direct-route|={d:.3g} (max |y| {np.abs(yd).max(initial=0):.3g})")


def main(tf, routes=False):
    cases = make_cases()
    if routes:
        return check_routes(tf, cases)
    arrays, meta, size = record(tf, cases, tf_direct, tf_route, OUT_PATH, lambda i, c: f"{c['rank']}d_case{i:03d}")
    print_summary(_facts(c, arrays[f"x{i}"], arrays[f"y{i}"]) for i, c in enumerate(meta))
    return size


def _facts(c, x, y):
    """What the summary counts of one case."""
    c_in = x.shape[-1 if (c["data_format"] or "NWC").endswith("C") else 1]
    return (("rank/op", f"{c['rank']} {c['op']}"), ("dtype", f"{c['rank']} {c['dtype']}"),
            ("data_format", c["data_format"]), ("padding", c["padding"]), ("route", c["route"]),
            ("strides", _form_name(c["strides"])), ("dilations", _form_name(c["dilations"])),
            ("C_in 16-48", c_in >= 16), ("empty", y.size == 0), ("batch", y.shape[0]))


def _form_name(v):
    return "None" if v is None else "int" if isinstance(v, int) else f"list{len(v)}"
