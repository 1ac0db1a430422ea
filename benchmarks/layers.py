"""Transposed-convolution layers drawn from real uses, for the sweep benchmark.

A layer is a JSON-able dict: ``input`` (NHWC), ``filters`` ([KH, KW, C_out/G,
C_in]), ``output`` (NHWC), ``strides``, ``dilations``, ``padding`` ("SAME",
"VALID" or [[top, bottom], [left, right]]), ``groups`` and ``kind``.
"""

import numpy as np

# kind: share of the layers
KINDS = {"imaging": 0.40, "decoder": 0.30, "anisotropic": 0.12, "dilated": 0.08, "grouped": 0.10}


def gflop(layer):
    """2 * multiply-adds of the layer, in GFLOP."""
    n, h, w, c_in = layer["input"]
    k_h, k_w, c_out_group, _ = layer["filters"]
    return 2 * n * h * w * c_in * k_h * k_w * c_out_group / 1e9


def draw_layers(count, seed, max_gflop):
    """``count`` layers, each of at most ``max_gflop`` GFLOP, the same for a ``seed``."""
    rng = np.random.default_rng(seed)
    kinds, shares = list(KINDS), list(KINDS.values())
    layers = []
    while len(layers) < count:
        layer = _DRAW[rng.choice(kinds, p=shares)](rng)
        if layer is not None and 1e-5 < gflop(layer) <= max_gflop and np.prod(layer["output"]) <= 2**24:
            layers.append(layer)
    return layers


def _pick(rng, values):
    return values[rng.integers(len(values))]


def _imaging(rng):
    """Grayscale to multispectral frames; kernels 2-8, often twice the stride (interpolation)."""
    size, stride = _pick(rng, [64, 96, 128, 192, 256, 384, 512, 1024]), int(rng.integers(1, 5))
    kernel = 2 * stride if rng.random() < 0.5 else int(rng.integers(max(2, stride), 9))
    c_in, c_out = _pick(rng, [1, 1, 2, 3, 3, 4, 6, 8, 12, 16]), _pick(rng, [1, 1, 2, 3, 3, 4, 6, 8, 12, 16])
    return _layer("imaging", rng, int(rng.integers(1, 5)), (size, size), (c_in, c_out), (kernel, kernel),
                  (stride, stride), (1, 1), 1)


def _decoder(rng):
    c_in = _pick(rng, [16, 32, 64, 128, 256, 512])
    c_out = max(1, c_in // _pick(rng, [1, 2, 2, 4]))
    size, stride = _pick(rng, [4, 8, 16, 32, 64, 128]), _pick(rng, [1, 2, 2, 2])
    kernel = _pick(rng, [2, 3, 4, 5]) if stride > 1 else _pick(rng, [1, 3, 3, 5])
    return _layer("decoder", rng, _pick(rng, [1, 2, 4, 8, 16, 32]), (size, size), (c_in, c_out),
                  (kernel, kernel), (stride, stride), (1, 1), 1)


def _anisotropic(rng):
    """1-D-style (one axis of size 1) and anisotropic kernels and strides."""
    c_in, c_out = _pick(rng, [1, 4, 16, 32, 64]), _pick(rng, [1, 4, 16, 32, 64])
    stride, kernel = _pick(rng, [2, 4]), _pick(rng, [3, 4, 8])
    if rng.random() < 0.5:  # a signal as one image row
        return _layer("anisotropic", rng, int(rng.integers(1, 9)), (1, _pick(rng, [256, 1024, 4096])),
                      (c_in, c_out), (1, kernel), (1, stride), (1, 1), 1)
    size = _pick(rng, [32, 64, 128])
    return _layer("anisotropic", rng, int(rng.integers(1, 5)), (size, size // 2), (c_in, c_out),
                  (kernel, _pick(rng, [1, 2, 3])), (stride, 1), (1, 1), 1)


def _dilated(rng):
    c = _pick(rng, [4, 8, 16, 32])
    dilation, size = int(rng.integers(2, 4)), _pick(rng, [32, 64, 128])
    return _layer("dilated", rng, int(rng.integers(1, 5)), (size, size), (c, c), (3, 3), (1, 1),
                  (dilation, dilation), 1)


def _grouped(rng):
    """Grouped and depthwise (groups == channels)."""
    c = _pick(rng, [8, 16, 32, 64])
    groups = c if rng.random() < 0.5 else _pick(rng, [2, 4])
    size, stride = _pick(rng, [16, 32, 64, 128]), _pick(rng, [1, 2])
    return _layer("grouped", rng, int(rng.integers(1, 5)), (size, size), (c, c), (4, 4) if stride == 2 else (3, 3),
                  (stride, stride), (1, 1), groups)


_DRAW = {"imaging": _imaging, "decoder": _decoder, "anisotropic": _anisotropic, "dilated": _dilated,
         "grouped": _grouped}


def _layer(kind, rng, batch, size, channels, kernel, stride, dilation, groups):
    """A layer of TF's output size for a padding drawn from SAME, VALID and explicit."""
    (c_in, c_out), padding = channels, _pick(rng, ["SAME", "SAME", "VALID", "EXPLICIT"])
    out, pads = [], []
    for n, k, s, d in zip(size, kernel, stride, dilation):
        reach = (k - 1) * d + 1
        if padding == "SAME":
            out.append(n * s)
        elif padding == "VALID":
            out.append((n - 1) * s + reach)
        else:  # PyTorch-style symmetric crop
            crop = min(reach - 1, (reach - 1) // 2 + int(rng.integers(0, 2)))
            pads.append([crop // 2, crop - crop // 2])
            out.append((n - 1) * s + reach - crop)
    return {"kind": kind, "input": [batch, *size, c_in], "filters": [*kernel, c_out // groups, c_in],
            "output": [batch, *out, c_out], "strides": list(stride), "dilations": list(dilation),
            "padding": pads if padding == "EXPLICIT" else padding, "groups": groups}
