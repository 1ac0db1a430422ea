"""Transposed-convolution layers drawn from real uses, for the sweep benchmark.

A layer is a JSON-able dict: ``input`` (channels last: ``[N, W, C]``,
``[N, H, W, C]`` or ``[N, D, H, W, C]``; its length gives the rank),
``filters`` (``[*K, C_out/G, C_in]``), ``output`` (channels last),
``strides``, ``dilations``, ``padding`` ("SAME", "VALID" or one
``[before, after]`` pair per spatial axis), ``groups`` and ``kind``.
"""

import numpy as np

from .common import ND_WORKLOADS, WORKLOADS

# kind: share of the 2-D layers
KINDS = {"imaging": 0.40, "decoder": 0.30, "anisotropic": 0.12, "dilated": 0.08, "grouped": 0.10}
# and of the 1-D and 3-D ones
KINDS_ND = {1: {"signal": 0.40, "decoder-1d": 0.30, "dilated-1d": 0.15, "grouped-1d": 0.15},
            3: {"volume": 0.35, "decoder-3d": 0.30, "aniso-3d": 0.10, "dilated-3d": 0.10, "grouped-3d": 0.15}}


def gflop(layer):
    """2 * multiply-adds of the layer, in GFLOP."""
    return 2 * float(np.prod(layer["input"])) * float(np.prod(layer["filters"][:-1])) / 1e9


def named_set(name):
    """The layers of a named set: ``"workloads"`` (the 8 2-D workloads) or ``"nd_workloads"`` (issue 15's 5)."""
    sets = {"workloads": WORKLOADS, "nd_workloads": ND_WORKLOADS}
    if name not in sets:
        raise ValueError(f"set must be one of {sorted(sets)}, got {name!r}")
    layers = []
    for kind, (x, f, out, stride, padding, dilation) in sets[name].items():
        r = len(x) - 2
        layers.append({"kind": kind, "input": list(x), "filters": list(f), "output": list(out),
                       "strides": [stride] * r, "dilations": [dilation] * r, "padding": padding,
                       "groups": out[-1] // f[-2]})
    return layers


def draw_layers(count, seed, max_gflop, ranks=(2,)):
    """``count`` layers of the given ranks (spatial dimensions), each of at most ``max_gflop`` GFLOP,
    the same for a ``seed`` (2-D only: the same layers as before 1-D/3-D existed)."""
    rng = np.random.default_rng(seed)
    layers = []
    while len(layers) < count:
        r = ranks[0] if len(ranks) == 1 else ranks[rng.integers(len(ranks))]  # no draw for one rank
        shares = KINDS if r == 2 else KINDS_ND[r]
        layer = _DRAW[rng.choice(list(shares), p=list(shares.values()))](rng)
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


def _signal(rng):
    """1-D: traces, audio, spectra with 1-16 channels; kernels 2-32, often twice the stride."""
    length, stride = _pick(rng, [1024, 2048, 4096, 8192, 16384, 32768, 65536]), int(rng.integers(1, 9))
    kernel = 2 * stride if rng.random() < 0.5 else int(rng.integers(max(2, stride), 33))
    c_in, c_out = _pick(rng, [1, 1, 2, 3, 4, 6, 8, 12, 16]), _pick(rng, [1, 1, 2, 3, 4, 6, 8, 12, 16])
    return _layer("signal", rng, _pick(rng, [1, 2, 4, 8, 16]), (length,), (c_in, c_out), (kernel,), (stride,),
                  (1,), 1)


def _decoder_1d(rng):
    """1-D decoders (wave/audio upsamplers): 16-256 channels."""
    c_in = _pick(rng, [16, 32, 64, 128, 256])
    stride = _pick(rng, [1, 2, 2, 4, 4, 8])
    kernel = int(rng.integers(max(2, stride), 33)) if stride > 1 else _pick(rng, [1, 3, 5, 7, 9, 15, 25])
    return _layer("decoder-1d", rng, _pick(rng, [1, 2, 4, 8, 16, 32]), (_pick(rng, [64, 256, 1024, 4096]),),
                  (c_in, max(1, c_in // _pick(rng, [1, 2, 2, 4]))), (kernel,), (stride,), (1,), 1)


def _decoder_3d(rng):
    """3-D decoders (U-Net, V-Net): 16-256 channels, 4^3-32^3 inputs, kernels 2-5, strides 1-3."""
    c_in, size = _pick(rng, [16, 32, 64, 128, 256]), _pick(rng, [4, 8, 16, 32])
    stride = _pick(rng, [1, 2, 2, 2, 3])
    kernel = int(rng.integers(stride, 6)) if stride > 1 else _pick(rng, [1, 3, 3, 5])
    return _layer("decoder-3d", rng, _pick(rng, [1, 2, 4, 8]), (size,) * 3,
                  (c_in, max(1, c_in // _pick(rng, [1, 2, 2, 4]))), (kernel,) * 3, (stride,) * 3, (1,) * 3, 1)


def _volume(rng):
    """Microscopy/CT volumes with 1-16 channels, 16^3-128^3; kernels 2-5, often twice the stride."""
    size, stride = _pick(rng, [16, 24, 32, 48, 64, 96, 128]), int(rng.integers(1, 4))
    kernel = 2 * stride if stride < 3 and rng.random() < 0.5 else int(rng.integers(max(2, stride), 6))
    c_in, c_out = _pick(rng, [1, 1, 2, 3, 4, 8, 16]), _pick(rng, [1, 1, 2, 3, 4, 8, 16])
    return _layer("volume", rng, _pick(rng, [1, 1, 2, 4]), (size,) * 3, (c_in, c_out), (kernel,) * 3,
                  (stride,) * 3, (1,) * 3, 1)


def _aniso_3d(rng):
    """Stacks with coarse depth: upsampled in-plane only, or a thin depth kernel."""
    c_in, c_out = _pick(rng, [1, 2, 4, 16, 32]), _pick(rng, [1, 2, 4, 16, 32])
    size = _pick(rng, [32, 64, 128])
    return _layer("aniso-3d", rng, _pick(rng, [1, 2]), (_pick(rng, [4, 8, 16]), size, size), (c_in, c_out),
                  (_pick(rng, [1, 3]), 4, 4), (1, 2, 2), (1, 1, 1), 1)


def _dilated_nd(r, sizes):
    def draw(rng):
        c, dilation = _pick(rng, [4, 8, 16, 32]), int(rng.integers(2, 4))
        return _layer(f"dilated-{r}d", rng, int(rng.integers(1, 5)), (_pick(rng, sizes),) * r, (c, c), (3,) * r,
                      (1,) * r, (dilation,) * r, 1)
    return draw


def _grouped_nd(r, sizes):
    """Grouped and depthwise (groups == channels)."""
    def draw(rng):
        c = _pick(rng, [8, 16, 32, 64])
        groups = c if rng.random() < 0.5 else _pick(rng, [2, 4])
        stride = _pick(rng, [1, 2])
        return _layer(f"grouped-{r}d", rng, int(rng.integers(1, 5)), (_pick(rng, sizes),) * r, (c, c),
                      (4 if stride == 2 else 3,) * r, (stride,) * r, (1,) * r, groups)
    return draw


_DRAW = {"imaging": _imaging, "decoder": _decoder, "anisotropic": _anisotropic, "dilated": _dilated,
         "grouped": _grouped, "signal": _signal, "decoder-1d": _decoder_1d,
         "dilated-1d": _dilated_nd(1, [256, 1024, 4096, 8192]), "grouped-1d": _grouped_nd(1, [256, 1024, 4096]),
         "volume": _volume, "decoder-3d": _decoder_3d, "aniso-3d": _aniso_3d,
         "dilated-3d": _dilated_nd(3, [16, 32, 48]), "grouped-3d": _grouped_nd(3, [8, 16, 32])}


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
