"""Backend ``"numpy"``: the readable reference, straight from the definition.

It is the scatter form of spec section 2: every input pixel ``(iy, ix)``
adds ``x[iy, ix] @ filters[ky, kx].T`` at row ``iy*stride + ky*dilation`` of
the full (uncropped) output; the result is that full output cropped by the
forward padding. It shares no index code with the compiled backends, so tests
use it as an independent oracle.
"""

import numpy as np


def run(spec, x, filters, out):
    """Compute the transposed convolution of ``x`` into ``out`` (all NHWC)."""
    full_h = max((spec.in_h - 1) * spec.stride_h + (spec.k_h - 1) * spec.dil_h + 1, spec.pad_top + spec.out_h)
    full_w = max((spec.in_w - 1) * spec.stride_w + (spec.k_w - 1) * spec.dil_w + 1, spec.pad_left + spec.out_w)
    full = np.zeros((spec.batch, full_h, full_w, spec.out_c), spec.compute_dtype)
    group_in = spec.in_c // spec.groups
    group_out = spec.out_c // spec.groups
    for g in range(spec.groups):
        x_g = x[..., g * group_in:(g + 1) * group_in]
        for ky in range(spec.k_h):
            rows = slice(ky * spec.dil_h, ky * spec.dil_h + spec.in_h * spec.stride_h, spec.stride_h)
            for kx in range(spec.k_w):
                cols = slice(kx * spec.dil_w, kx * spec.dil_w + spec.in_w * spec.stride_w, spec.stride_w)
                taps = filters[ky, kx, :, g * group_in:(g + 1) * group_in]  # [C_out / G, C_in / G]
                full[:, rows, cols, g * group_out:(g + 1) * group_out] += x_g @ taps.T
    out[...] = full[:, spec.pad_top:spec.pad_top + spec.out_h, spec.pad_left:spec.pad_left + spec.out_w]
