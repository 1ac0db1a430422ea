"""One layer of ``benchmarks.layers`` as calls of numba_convt and of each peer.

Each maker takes ``(layer, x, filters, layout)`` (``x`` in ``layout``,
``filters`` TF's ``[KH, KW, C_out/G, C_in]``) and returns the calls to time,
each giving the result in ``layout`` as a NumPy array; it raises where the
library cannot run the layer.
"""

import numpy as np


def _crops(layer):
    """TF's crop of the full transposed output, ``(before, after)`` per spatial axis."""
    if isinstance(layer["padding"], list):
        return [tuple(pair) for pair in layer["padding"]]
    crops = []
    for i in range(2):
        reach = (layer["filters"][i] - 1) * layer["dilations"][i] + 1
        full = (layer["input"][1 + i] - 1) * layer["strides"][i] + reach
        total = full - layer["output"][1 + i]  # negative where the output reaches past the full one
        before = max(0, total) // 2 if layer["padding"] == "SAME" else 0
        crops.append((before, total - before))
    return crops


def arguments(layer, layout):
    """``output_shape, strides, padding, data_format, dilations`` of ``conv2d_transpose``."""
    n, h, w, c = layer["output"]
    padding = layer["padding"]
    if not isinstance(padding, str):
        padding = [[0, 0], [0, 0], *padding] if layout == "NCHW" else [[0, 0], *padding, [0, 0]]
    shape = [n, c, h, w] if layout == "NCHW" else [n, h, w, c]
    return shape, layer["strides"], padding, layout, layer["dilations"]


def call_ours(layer, x, f, layout):
    import numba_convt

    args = arguments(layer, layout)
    return [lambda: numba_convt.conv2d_transpose(x, f, *args)]


def torch_calls(layer, x, f, layout):
    """``conv_transpose2d`` in NCHW and in channels_last; TF's crop as PyTorch's
    symmetric ``padding`` plus ``output_padding``, then a slice."""
    import torch

    torch.set_grad_enabled(False)
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
    weight = torch.from_numpy(np.ascontiguousarray(f.transpose(3, 2, 0, 1)))  # [C_in, C_out/G, KH, KW]
    xn = torch.from_numpy(np.ascontiguousarray(x if layout == "NCHW" else x.transpose(0, 3, 1, 2)))
    back = (lambda y: y.numpy()) if layout == "NCHW" else (lambda y: y.permute(0, 2, 3, 1).numpy())
    options = dict(stride=layer["strides"], padding=pads, output_padding=extra, dilation=layer["dilations"],
                   groups=layer["groups"])
    conv = torch.nn.functional.conv_transpose2d

    def call(xin, wt, memory_format):
        return back(conv(xin, wt, **options)[:, :, slices[0], slices[1]].contiguous(memory_format=memory_format))

    xl, wl = (a.contiguous(memory_format=torch.channels_last) for a in (xn, weight))
    return [lambda: call(xn, weight, torch.contiguous_format), lambda: call(xl, wl, torch.channels_last)]


def tf_calls(layer, x, f, layout):
    """``tf.nn.conv2d_transpose``, NHWC only (TF's CPU kernel refuses NCHW and groups)."""
    import tensorflow as tf

    if layout == "NCHW" or layer["groups"] > 1:
        raise ValueError("TF's CPU kernel runs NHWC without groups only")
    padding = layer["padding"] if isinstance(layer["padding"], str) else [[0, 0], *layer["padding"], [0, 0]]
    xt, ft = tf.constant(x), tf.constant(f)
    fn = tf.function(lambda a, b: tf.nn.conv2d_transpose(a, b, layer["output"], layer["strides"], padding,
                                                         dilations=layer["dilations"]))
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
    spec = ("NCHW", "HWIO", "NCHW") if layout == "NCHW" else ("NHWC", "HWIO", "NHWC")
    fn = jax.jit(lambda a, b: jax.lax.conv_transpose(a, b, layer["strides"], pads, rhs_dilation=layer["dilations"],
                                                     dimension_numbers=spec, transpose_kernel=True))
    xa, fa = jax.device_put(x), jax.device_put(f)
    return [lambda: np.asarray(fn(xa, fa).block_until_ready())]


PEERS = {"torch": torch_calls, "tf": tf_calls, "jax": jax_calls}
