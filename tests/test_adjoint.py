"""conv2d_transpose is the adjoint of conv2d: <conv2d(y), x> == <y, conv2d_transpose(x)>.

The forward conv2d below is written independently from TF's definition
(zero padding, dilated taps, strided windows), so this checks every backend
without trusting any of numba_convt's index math.
"""

import numpy as np
import pytest
from common import BACKENDS

import numba_convt


def conv2d(y, f, strides, dilations, pads, groups):
    """Forward NHWC conv2d of ``y`` with ``f`` ([KH, KW, C_out/G, C_in]) -> C_in channels."""
    (top, bottom), (left, right) = pads
    padded = np.pad(y, [(0, 0), (top, bottom), (left, right), (0, 0)])
    k_h, k_w, group_out, c_in = f.shape
    group_in = c_in // groups
    n, h, w, _ = padded.shape
    out_h = (h - (k_h - 1) * dilations[0] - 1) // strides[0] + 1
    out_w = (w - (k_w - 1) * dilations[1] - 1) // strides[1] + 1
    x = np.zeros((n, out_h, out_w, c_in))
    for i, j in np.ndindex(out_h, out_w):
        for ky, kx in np.ndindex(k_h, k_w):
            pixel = padded[:, i * strides[0] + ky * dilations[0], j * strides[1] + kx * dilations[1]]
            for g in range(groups):
                channels = slice(g * group_in, (g + 1) * group_in)
                x[:, i, j, channels] += pixel[:, g * group_out:(g + 1) * group_out] @ f[ky, kx, :, channels]
    return x


def _split(rng, total):
    before = int(rng.integers(0, total + 1))
    return before, int(rng.integers(0, total - before + 1))


def _same_pads(in_size, out_size, k, s, d):
    need = max(0, (in_size - 1) * s + (k - 1) * d + 1 - out_size)
    return need // 2, need - need // 2


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(12))
def test_adjoint_identity(seed, backend):
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 3))
    k_h, k_w = rng.integers(1, 5, size=2)
    s_h, s_w = rng.integers(1, 4, size=2)
    d_h, d_w = rng.integers(1, 3, size=2)
    in_h, in_w = rng.integers(1, 6, size=2)
    padding = ["SAME", "VALID", "EXPLICIT"][seed % 3]
    pads = [(0, 0), (0, 0)]
    if padding == "EXPLICIT":  # at most the effective kernel minus one, so some output size fits
        pads = [_split(rng, (k - 1) * d) for k, d in ((k_h, d_h), (k_w, d_w))]
    out = []
    for size, k, s, d, (b, a) in zip((in_h, in_w), (k_h, k_w), (s_h, s_w), (d_h, d_w), pads):
        base = (size - 1) * s + (1 if padding == "SAME" else (k - 1) * d + 1 - b - a)
        out.append(base + int(rng.integers(0, s)))
    if padding == "SAME":
        pads = [_same_pads(i, o, k, s, d) for i, o, k, s, d in zip((in_h, in_w), out, (k_h, k_w), (s_h, s_w), (d_h, d_w))]
    c_in, group_out = 2 * groups, int(rng.integers(1, 4))
    x = rng.standard_normal((2, in_h, in_w, c_in))
    f = rng.standard_normal((k_h, k_w, group_out, c_in))
    y = rng.standard_normal((2, *out, group_out * groups))
    padding_arg = [[0, 0], *map(list, pads), [0, 0]] if padding == "EXPLICIT" else padding
    xt = numba_convt.conv2d_transpose(
        x, f, y.shape, [s_h, s_w], padding_arg, dilations=[d_h, d_w], backend=backend
    )
    forward = conv2d(y, f, (s_h, s_w), (d_h, d_w), pads, groups)
    assert forward.shape == x.shape
    np.testing.assert_allclose(np.vdot(forward, x), np.vdot(y, xt), rtol=1e-10)
