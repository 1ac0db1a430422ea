"""Helpers for the 1-D and 3-D tests: an independent direct loop and the call builders.

The direct loop is the definition of ``tf_nd_semantics.md`` section 3.2 written
out position by position, sharing no code with the package; pads come from
the section's formula (SAME: ``T // 2``), computed here.
"""

import itertools

import numpy as np

from numba_convt import conv1d_transpose, conv3d_transpose

FUNCTIONS = {1: conv1d_transpose, 3: conv3d_transpose}
FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


def pad_before(in_size, out_size, kernel, stride, dilation, kind, explicit_before=0):
    """The forward convolution's leading pad on one axis (section 3.2)."""
    if kind == "SAME":
        return max(0, (in_size - 1) * stride + (kernel - 1) * dilation + 1 - out_size) // 2
    return explicit_before if kind == "EXPLICIT" else 0


def accumulator(dtype):
    """The dtype the direct loop sums in: int64, complex128 or float64."""
    kind = np.dtype(dtype).kind
    return np.int64 if kind in "iu" else np.complex128 if kind == "c" else np.float64


def direct(x, f, out_sizes, out_c, strides, dilations, pads_before, acc=None):
    """The transposed convolution of channels-last ``x`` by the definition.

    ``x``: ``[N, *I, C_in]``; ``f``: ``[*K, C_out / G, C_in]``; groups from
    ``out_c``. Products are NumPy elementwise (no BLAS), summed in ``acc``.
    """
    acc = acc or accumulator(np.result_type(x, f))
    rank = x.ndim - 2
    groups = out_c // f.shape[-2]
    group_in, group_out = x.shape[-1] // groups, f.shape[-2]
    y = np.zeros((x.shape[0], *out_sizes, out_c), acc)
    x, f = x.astype(acc), f.astype(acc)
    for pos in itertools.product(*map(range, x.shape[1:-1])):
        for taps in itertools.product(*map(range, f.shape[:rank])):
            o = [i * s + k * d - p for i, k, s, d, p in zip(pos, taps, strides, dilations, pads_before)]
            if not all(0 <= v < n for v, n in zip(o, out_sizes)):
                continue
            for g in range(groups):
                cin, cout = slice(g * group_in, (g + 1) * group_in), slice(g * group_out, (g + 1) * group_out)
                terms = x[(slice(None), *pos, None, cin)] * f[(*taps, slice(None), cin)][None]
                y[(slice(None), *o, cout)] += terms.sum(axis=-1)
    return y


def to_first(a):
    """Channels-last array -> channels-first (NWC -> NCW, NDHWC -> NCDHW)."""
    return np.ascontiguousarray(np.moveaxis(a, -1, 1))


def to_last(a):
    """Channels-first array -> channels-last."""
    return np.moveaxis(a, 1, -1)


def layer_call(layer, x, f, channels_first=False):
    """Keyword arguments of ``conv{rank}d_transpose`` for ``layer`` (a dict of per-axis tuples)."""
    rank = len(layer["out"])
    batch, out_c = x.shape[0], layer["out_c"]
    shape = [batch, out_c, *layer["out"]] if channels_first else [batch, *layer["out"], out_c]
    return dict(input=to_first(x) if channels_first else x, filters=f, output_shape=shape,
                strides=list(layer["strides"]), padding=layer.get("padding", "SAME"),
                data_format=FORMATS[rank][channels_first], dilations=list(layer["dilations"]))


def layer_oracle(layer, x, f, acc=None):
    """``direct`` for ``layer`` with its SAME/VALID pads derived here (channels-last result)."""
    kind = layer.get("padding", "SAME")
    pads = [pad_before(i, o, k, s, d, kind) for i, o, k, s, d in
            zip(x.shape[1:-1], layer["out"], f.shape[:-2], layer["strides"], layer["dilations"])]
    return direct(x, f, layer["out"], layer["out_c"], layer["strides"], layer["dilations"], pads, acc)


# Small layers, grouped, strided, dilated, with SAME odd/even pads; per-axis tuples.
LAYERS = {
    1: dict(x_shape=(2, 5, 4), f_shape=(3, 3, 4), out=(9,), out_c=6, strides=(2,), dilations=(2,)),
    3: dict(x_shape=(2, 3, 2, 3, 4), f_shape=(2, 3, 2, 3, 4), out=(5, 4, 3), out_c=6, strides=(2, 2, 1),
            dilations=(1, 2, 1)),
}
