"""Generate golden reference data for ``numba_convt`` from real TensorFlow.

This is a maintenance tool. Run it where ``tensorflow-cpu`` (2.21.0) is
installed; it is **not** a test dependency -- the test suite only reads the
file it writes.

Usage
-----
::

    python tools/make_golden.py                  # writes tests/data/tf_golden.npz
    python tools/make_golden.py --check-routes   # compare identity routes with
                                                 # oneDNN's direct calls; writes nothing
    python tools/make_golden.py --nd             # 1-D and 3-D: writes tests/data/tf_golden_nd.npz
    python tools/make_golden.py --nd --check-routes

The 1-D/3-D cases (``conv1d_transpose``, ``conv3d_transpose``,
``conv_transpose``) are drawn and recorded by ``make_golden_nd.py``; its
docstring describes that file.

Output
------
``tests/data/tf_golden.npz`` (``np.savez_compressed``):

* ``cases``: 0-d str array holding a JSON list of dicts with keys ``id``,
  ``dtype`` (float32/float64/float16/int32/bfloat16), ``output_shape``,
  ``strides``, ``padding``, ``data_format``, ``dilations`` and ``route``.
  The argument values are recorded exactly as passed to
  ``tf.nn.conv2d_transpose``, except that tuples are written as JSON lists.
* ``x{i}``, ``f{i}``, ``y{i}``: input, filters and TF's output for case ``i``.
  bfloat16 arrays are stored as float32 (exact widening).

How TF's answer is computed
---------------------------
The cases are generated with a fixed seed (``numpy.random.default_rng(2021)``).
TF runs with ``TF_ENABLE_ONEDNN_OPTS=0``, so its stock CPU kernel is used.
Where that kernel accepts the arguments, the recorded call is made as is
(route ``direct``). Where it refuses a valid form, the answer comes from
exact identities built from TF ops, and ``route`` names them (joined by
``+``):

* ``nchw_transpose``: transpose the input to NHWC, call with NHWC, transpose
  the output back.
* ``dilated_filter``: insert zeros into the filter (size ``(K-1)*D+1``,
  taps at multiples of ``D``) and call with dilation 1. The effective kernel
  size is unchanged, so the size checks and padding are identical.
* ``grouped_split``: filters are ``[KH, KW, C_out/G, C_in]``. Group ``g``
  maps input channels ``[g*C_in/G, (g+1)*C_in/G)``, using the same slice of
  ``filters.shape[3]``, to output channels
  ``[g*C_out/G, (g+1)*C_out/G)``. The script calls TF once per group and
  concatenates the outputs.
"""
import argparse
import json
import os
import sys

import numpy as np

SEED = 2021
N_CASES = 110
MAX_OUT_ELEMS = 4000
OUT_PATH = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "tf_golden.npz")


# ----------------------------------------------------------------------------- sampling
def _legal_sizes(h_in, k, s, d, pad):
    """All output sizes TF accepts for one spatial dim (TF's C++ size check)."""
    e = (k - 1) * d + 1
    ok = []
    for h_out in range(0, h_in * s + e + s + 1):
        if pad == "SAME":
            f = (h_out + s - 1) // s
        else:
            pb, pa = (0, 0) if pad == "VALID" else pad
            num = h_out + pb + pa - e + s
            f = int(num / s)  # C++ division truncates toward zero
        if f == h_in:
            ok.append(h_out)
    return ok


def _as_form(form, h, w, fmt):
    """Write a (h, w) pair in one of the argument forms TF accepts."""
    if form == "int":
        return h
    if form == "len1":
        return [h]
    if form == "list2":
        return [h, w]
    if form == "tuple2":
        return (h, w)
    return [1, h, w, 1] if fmt == "NHWC" else [1, 1, h, w]  # "len4"


def _sample(rng, dtype, force=None):
    """Draw one valid configuration. ``force`` overrides some draws."""
    force = force or {}
    while True:
        fmt = force.get("fmt", str(rng.choice(["NHWC", "NCHW"], p=[0.6, 0.4])))
        groups = force.get("groups", int(rng.choice([2, 3])) if rng.random() < 0.12 else 1)
        n = force.get("n", 0 if rng.random() < 0.02 else int(rng.integers(1, 4)))
        hw_in = [0 if rng.random() < 0.025 else int(rng.integers(1, 8)) for _ in range(2)]
        hw_in = force.get("hw_in", hw_in)
        ks = force.get("k", [int(v) for v in rng.integers(1, 6, 2)])
        s_form = str(rng.choice(["int", "len1", "list2", "tuple2", "len4"]))
        ss = [int(v) for v in rng.integers(1, 5, 2)]
        d_form = str(rng.choice(["none", "int", "len1", "list2", "tuple2", "len4"]))
        ds = [int(v) for v in rng.integers(1, 4, 2)] if rng.random() < 0.4 else [1, 1]
        if s_form in ("int", "len1"):
            ss[1] = ss[0]
        if d_form in ("int", "len1"):
            ds[1] = ds[0]
        if d_form == "none":
            ds = [1, 1]
        if "s" in force:
            ss = force["s"]
            s_form = "list2" if ss[0] != ss[1] and s_form in ("int", "len1") else s_form
        if "d" in force:
            ds = force["d"]
            d_form = "len4" if ds != [1, 1] and d_form == "none" else d_form
            d_form = "tuple2" if ds[0] != ds[1] and d_form in ("int", "len1") else d_form
        pad_kind = force.get("pad", str(rng.choice(["SAME", "VALID", "EXPLICIT"])))
        pads = [[int(v) for v in rng.integers(0, 4, 2)] for _ in range(2)]
        c_in = groups * int(rng.integers(1, 6 // groups + 1))
        c_pg = int(rng.integers(1, 6 // groups + 1))  # output channels per group
        out_len = 4 if groups > 1 or rng.random() < 0.7 else 2
        out_len = force.get("out_len", out_len)

        sp_pads = pads if pad_kind == "EXPLICIT" else [pad_kind, pad_kind]
        legal = [_legal_sizes(hw_in[i], ks[i], ss[i], ds[i], sp_pads[i]) for i in range(2)]
        if not legal[0] or not legal[1]:
            continue
        hw_out = force.get("hw_out", [int(rng.choice(lg)) for lg in legal])
        assert all(hw_out[i] in legal[i] for i in range(2)), (force, legal)
        c_out = groups * c_pg
        if n * hw_out[0] * hw_out[1] * c_out > MAX_OUT_ELEMS:
            continue
        break

    if pad_kind == "EXPLICIT":
        padding = [[0, 0], pads[0], pads[1], [0, 0]] if fmt == "NHWC" else [[0, 0], [0, 0], pads[0], pads[1]]
    else:
        padding = pad_kind
    if out_len == 2:
        output_shape = list(hw_out)
    elif fmt == "NHWC":
        output_shape = [n, hw_out[0], hw_out[1], c_out]
    else:
        output_shape = [n, c_out, hw_out[0], hw_out[1]]
    xshape = [n, *hw_in, c_in] if fmt == "NHWC" else [n, c_in, *hw_in]
    fshape = [ks[0], ks[1], c_pg, c_in]
    if dtype == "int32":
        x = rng.integers(-4, 5, xshape).astype(np.int32)
        f = rng.integers(-4, 5, fshape).astype(np.int32)
    else:
        x = rng.uniform(-1, 1, xshape)
        f = rng.uniform(-1, 1, fshape)
    case = dict(dtype=dtype, output_shape=output_shape, strides=_as_form(s_form, *ss, fmt),
                padding=padding, data_format=fmt,
                dilations=None if d_form == "none" else _as_form(d_form, *ds, fmt))
    route = [r for r, on in (("nchw_transpose", fmt == "NCHW"),
                             ("dilated_filter", ds != [1, 1]),
                             ("grouped_split", groups > 1)) if on]
    case["route"] = "+".join(route) or "direct"
    return case, x, f


# Forced configurations that random draws rarely hit.
FORCED = {
    5: dict(pad="VALID", hw_in=[0, 3], k=[4, 2], s=[2, 1], d=[1, 1], hw_out=[1, 4]),   # C-truncation edge
    17: dict(pad="VALID", hw_in=[2, 0], k=[3, 5], s=[1, 3], d=[1, 1], hw_out=[4, 2], fmt="NCHW"),
    29: dict(n=0, out_len=2, groups=1),
    41: dict(n=0, groups=2, fmt="NCHW"),
    53: dict(pad="SAME", hw_in=[0, 0], hw_out=[0, 0], groups=1),
    64: dict(groups=2, fmt="NHWC", pad="SAME", d=[1, 1]),
    77: dict(groups=3, fmt="NCHW", pad="VALID", d=[2, 1]),
    88: dict(groups=2, pad="EXPLICIT", d=[1, 2]),
    99: dict(pad="VALID", hw_in=[0, 4], k=[3, 3], s=[2, 2], d=[2, 2], hw_out=[3, 11], out_len=2),
}


def make_cases():
    rng = np.random.default_rng(SEED)
    dtypes = ["float32"] * 70 + ["float64"] * 12 + ["float16"] * 11 + ["int32"] * 12 + ["bfloat16"] * 5
    rng.shuffle(dtypes)
    return [_sample(rng, dt, FORCED.get(i)) for i, dt in enumerate(dtypes)]


# ----------------------------------------------------------------------------- TF calls
def _hw(value, fmt):
    """Spatial (h, w) of a strides/dilations argument, as tf's _get_sequence."""
    if value is None:
        return 1, 1
    v = [value] if isinstance(value, int) else list(value)
    if len(v) == 4:
        return (v[1], v[2]) if fmt == "NHWC" else (v[2], v[3])
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def tf_direct(tf, x, f, c):
    return tf.nn.conv2d_transpose(x, f, c["output_shape"], c["strides"], c["padding"],
                                  c["data_format"], c["dilations"])


def tf_route(tf, x, f, c):
    """TF's answer via NHWC, dilation-1, ungrouped calls (exact identities)."""
    fmt = c["data_format"]
    sh, sw = _hw(c["strides"], fmt)
    dh, dw = _hw(c["dilations"], fmt)
    pad, osh = c["padding"], list(c["output_shape"])
    if fmt == "NCHW":
        x = tf.transpose(x, [0, 2, 3, 1])
        if isinstance(pad, list):
            pad = [pad[0], pad[2], pad[3], pad[1]]
        if len(osh) == 4:
            osh = [osh[0], osh[2], osh[3], osh[1]]
    if (dh, dw) != (1, 1):
        kh, kw = f.shape[:2]
        fd = np.zeros(((kh - 1) * dh + 1, (kw - 1) * dw + 1) + f.shape[2:], f.dtype)
        fd[::dh, ::dw] = f
        f = fd
    c_pg, c_in = f.shape[2], f.shape[3]
    groups = osh[3] // c_pg if len(osh) == 4 else 1
    cg = c_in // groups
    parts = []
    for g in range(groups):
        osh_g = osh[:3] + [c_pg] if len(osh) == 4 else osh
        parts.append(tf.nn.conv2d_transpose(x[..., g * cg:(g + 1) * cg], f[..., g * cg:(g + 1) * cg],
                                            osh_g, [1, sh, sw, 1], pad, "NHWC", [1, 1, 1, 1]))
    y = tf.concat(parts, axis=-1)
    return tf.transpose(y, [0, 3, 1, 2]) if fmt == "NCHW" else y


def _to_tf_dtype(a, dtype):
    import ml_dtypes
    return a.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check-routes", action="store_true",
                    help="with oneDNN on, compare direct calls with the identity routes")
    ap.add_argument("--nd", action="store_true", help="the 1-D and 3-D cases (tf_golden_nd.npz)")
    args = ap.parse_args()
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if args.check_routes else "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if args.nd:
        import make_golden_nd

        size = make_golden_nd.main(tf, routes=args.check_routes)
        if size is not None and size >= 2 * 1024 * 1024:
            sys.exit("golden file is not below 2 MB")
        return

    cases = make_cases()
    if args.check_routes:
        golden = np.load(OUT_PATH) if os.path.exists(OUT_PATH) else None
        for i, (c, x, f) in enumerate(cases):
            if c["route"] == "direct" or c["dtype"] != "float32":
                continue
            x, f = _to_tf_dtype(x, "float32"), _to_tf_dtype(f, "float32")
            try:
                yd = tf_direct(tf, x, f, c).numpy()
            except Exception as e:  # oneDNN refuses it too (e.g. explicit padding)
                print(f"case {i:3d} {c['route']:40s} direct refused: {type(e).__name__}")
                continue
            d1 = np.abs(yd - tf_route(tf, x, f, c).numpy()).max(initial=0)
            d2 = np.abs(yd - golden[f"y{i}"]).max(initial=0) if golden is not None else float("nan")
            print(f"case {i:3d} {c['route']:40s} |direct-route|={d1:.3g} |direct-golden|={d2:.3g}")
        return

    arrays, meta, size = record(tf, cases, tf_direct, tf_route, OUT_PATH, lambda i, c: f"case{i:03d}")
    print_summary((("dtype", c["dtype"]), ("layout", c["data_format"]),
                   ("padding", c["padding"] if isinstance(c["padding"], str) else "explicit"),
                   ("route", c["route"]), ("grouped", "grouped" if "grouped" in c["route"] else "ungrouped"),
                   ("empty input", "empty" if arrays[f"x{i}"].size == 0 else "nonempty"),
                   ("output_shape len", len(c["output_shape"])),
                   ("strides form", _form_name(c["strides"])),
                   ("dilations form", _form_name(c["dilations"])))
                  for i, c in enumerate(meta))
    if size >= 2 * 1024 * 1024:
        sys.exit("golden file is not below 2 MB")


def record(tf, cases, direct, route, path, case_id):
    """TF's answer to every case (``direct`` for route "direct", else ``route``),
    written to ``path``; returns the arrays, the cases' metadata and the file size."""
    arrays, meta = {}, []
    for i, (c, x, f) in enumerate(cases):
        xt, ft = _to_tf_dtype(x, c["dtype"]), _to_tf_dtype(f, c["dtype"])
        y = (direct if c["route"] == "direct" else route)(tf, xt, ft, c).numpy()
        store = np.float32 if c["dtype"] == "bfloat16" else c["dtype"]
        arrays.update({f"x{i}": xt.astype(store), f"f{i}": ft.astype(store), f"y{i}": y.astype(store)})
        meta.append({"id": case_id(i, c), **c})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, cases=np.array(json.dumps(meta)), **arrays)
    size = os.path.getsize(path)
    print(f"wrote {os.path.normpath(path)}: {len(meta)} cases, {size} bytes")
    return arrays, meta, size


def print_summary(per_case):
    """Print how many cases have each value of each fact (``per_case``: each case's ``(fact, value)`` pairs)."""
    summary = {}
    for facts in per_case:
        for key, val in facts:
            summary.setdefault(key, {}).setdefault(str(val), 0)
            summary[key][str(val)] += 1
    width = max(map(len, summary)) + 2
    for key, counts in summary.items():
        print(f"{key:{width}s}" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))


def _form_name(v):
    if v is None or isinstance(v, int):
        return repr(v) if v is None else "int"
    return f"{type(v).__name__}{len(v)}"


if __name__ == "__main__":
    main()
