"""One layer of ``benchmarks.layers`` as calls of numba_convt and of each peer.

Each maker takes ``(layer, x, filters, layout)`` (``x`` channels-last for
layout ``"NHWC"``, channels-first for ``"NCHW"``, at the layer's rank;
``filters`` TF's ``[*K, C_out/G, C_in]``) and returns the calls to time, each
giving the result in ``layout`` as a NumPy array; it raises where the library
cannot run the layer.
"""

import numpy as np

# data_format by rank: channels last, channels first
FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


def rank(layer):
    """Spatial dimensions of ``layer`` (its ``"rank"``, else from its input's length)."""
    return layer.get("rank", len(layer["input"]) - 2)


def data_format(layer, layout):
    """TF's ``data_format`` of ``layer`` in ``layout`` ("NHWC": channels last, "NCHW": channels first)."""
    return FORMATS[rank(layer)][layout == "NCHW"]


def _crops(layer):
    """TF's crop of the full transposed output, ``(before, after)`` per spatial axis."""
    if isinstance(layer["padding"], list):
        return [tuple(pair) for pair in layer["padding"]]
    crops = []
    for i in range(rank(layer)):
        reach = (layer["filters"][i] - 1) * layer["dilations"][i] + 1
        full = (layer["input"][1 + i] - 1) * layer["strides"][i] + reach
        total = full - layer["output"][1 + i]  # negative where the output reaches past the full one
        before = max(0, total) // 2 if layer["padding"] == "SAME" else 0
        crops.append((before, total - before))
    return crops


def arguments(layer, layout):
    """``output_shape, strides, padding, data_format, dilations`` of the layer's ``conv*d_transpose``."""
    *_, c = layer["output"]
    first = layout == "NCHW"
    padding = layer["padding"]
    if not isinstance(padding, str):
        padding = [[0, 0], [0, 0], *padding] if first else [[0, 0], *padding, [0, 0]]
    shape = [layer["output"][0], c, *layer["output"][1:-1]] if first else list(layer["output"])
    return shape, layer["strides"], padding, data_format(layer, layout), layer["dilations"]


def ours_function(layer):
    """numba_convt's function for the layer's rank."""
    import numba_convt

    return {1: numba_convt.conv1d_transpose, 2: numba_convt.conv2d_transpose,
            3: numba_convt.conv3d_transpose}[rank(layer)]


def call_ours(layer, x, f, layout):
    function, args = ours_function(layer), arguments(layer, layout)
    return [lambda: function(x, f, *args)]


def torch_calls(layer, x, f, layout):
    """``conv_transpose1d/2d/3d`` channels-first, and channels_last(_3d) for 2-D/3-D; TF's crop
    as PyTorch's symmetric ``padding`` plus ``output_padding``, then a slice."""
    import torch

    torch.set_grad_enabled(False)
    r = rank(layer)
    pads, extra, slices = [], [], []
    for i, (before, after) in enumerate(_crops(layer)):
        pad = min(before, max(after, 0))
        reach = (layer["filters"][i] - 1) * layer["dilations"][i] + 1
        size = (layer["input"][1 + i] - 1) * layer["strides"][i] + reach - 2 * pad
        grow = max(0, before - pad + layer["output"][1 + i] - size)
        if grow >= max(layer["strides"][i], layer["dilations"][i]):
            raise ValueError("PyTorch's output_padding cannot reach this size")
        pads.append(pad)
        extra.append(grow)
        slices.append(slice(before - pad, before - pad + layer["output"][1 + i]))
    weight = torch.from_numpy(np.ascontiguousarray(f.transpose(r + 1, r, *range(r))))  # [C_in, C_out/G, *K]
    xn = torch.from_numpy(np.ascontiguousarray(x if layout == "NCHW" else np.moveaxis(x, -1, 1)))
    back = (lambda y: y.numpy()) if layout == "NCHW" else (lambda y: y.permute(0, *range(2, r + 2), 1).numpy())
    options = dict(stride=layer["strides"], padding=pads, output_padding=extra, dilation=layer["dilations"],
                   groups=layer["groups"])
    conv = getattr(torch.nn.functional, f"conv_transpose{r}d")
    index = (slice(None), slice(None), *slices)

    def call(xin, wt, memory_format):
        return back(conv(xin, wt, **options)[index].contiguous(memory_format=memory_format))

    calls = [lambda: call(xn, weight, torch.contiguous_format)]
    last = {2: torch.channels_last, 3: torch.channels_last_3d}.get(r)
    if last is not None:
        xl, wl = (a.contiguous(memory_format=last) for a in (xn, weight))
        calls.append(lambda: call(xl, wl, last))
    return calls


def tf_calls(layer, x, f, layout):
    """``tf.nn.conv1d/2d/3d_transpose`` where TF's CPU kernel runs the layer.

    2-D: NHWC without groups only (as the 2-D sweeps of issue 12 measured it).
    1-D/3-D: whatever TF accepts when run (its default oneDNN kernels take
    channels-first and dilation in float32, and groups in 1-D; explicit
    padding is 2-D only).
    """
    import tensorflow as tf

    r = rank(layer)
    if r == 2 and (layout == "NCHW" or layer["groups"] > 1):
        raise ValueError("TF's CPU kernel runs NHWC without groups only")
    if r != 2 and not isinstance(layer["padding"], str):
        raise ValueError("TF's conv1d/3d_transpose take no explicit padding")
    shape, strides, padding, fmt, dilations = arguments(layer, layout)
    op = {1: tf.nn.conv1d_transpose, 2: tf.nn.conv2d_transpose, 3: tf.nn.conv3d_transpose}[r]
    xt, ft = tf.constant(x), tf.constant(f)
    fn = tf.function(lambda a, b: op(a, b, shape, strides, padding, data_format=fmt, dilations=dilations))
    fn(xt, ft)  # TF refuses some layers only when run
    return [lambda: fn(xt, ft).numpy()]


def jax_calls(layer, x, f, layout):
    """``jax.lax.conv_transpose(transpose_kernel=True)`` with explicit padding that places TF's crop."""
    import jax

    if layer["groups"] > 1:
        raise ValueError("jax.lax.conv_transpose has no groups")
    pads = []
    for i, (before, _) in enumerate(_crops(layer)):
        reach = (layer["filters"][i] - 1) * layer["dilations"][i] + 1
        low = reach - 1 - before
        pads.append((low, layer["output"][1 + i] - (layer["input"][1 + i] - 1) * layer["strides"][i] - 1 - low
                     + reach - 1))
    spatial = "DHW"[3 - rank(layer):]
    fmt = data_format(layer, layout)
    spec = (fmt, spatial + "IO", fmt)
    fn = jax.jit(lambda a, b: jax.lax.conv_transpose(a, b, layer["strides"], pads, rhs_dilation=layer["dilations"],
                                                     dimension_numbers=spec, transpose_kernel=True))
    xa, fa = jax.device_put(x), jax.device_put(f)
    return [lambda: np.asarray(fn(xa, fa).block_until_ready())]


PEERS = {"torch": torch_calls, "tf": tf_calls, "jax": jax_calls}
