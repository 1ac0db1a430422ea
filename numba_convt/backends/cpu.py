"""Backend ``"cpu"``: a parallel Numba kernel in gather form.

Each output row ``(n, oy)`` is computed by exactly one thread, summing in a
fixed order, so results are race-free and bitwise identical for any number
of threads.
"""

import numba
import numpy as np


@numba.njit(parallel=True, cache=True, nogil=True)
def _conv2d_transpose_nhwc(x, filters, out, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, groups):
    """Gather-form transposed convolution: ``out[n, oy, ox, co]`` sums every
    ``x[n, iy, ix, ci] * filters[ky, kx, co % (C_out/G), ci]`` with
    ``oy = iy*stride_h + ky*dil_h - pad_top``, ``ox`` likewise, ``ci`` in
    ``co``'s group. Shapes come from the arrays; the ints are the spec's.
    """
    batch, in_h, in_w, in_c = x.shape
    k_h, k_w, group_out, _ = filters.shape
    _, out_h, out_w, out_c = out.shape
    group_in = in_c // groups
    for row in numba.prange(batch * out_h):
        n, oy = divmod(np.int64(row), out_h)  # prange indices are unsigned
        acc = np.zeros(out_c, out.dtype)
        for ox in range(out_w):
            acc[:] = 0
            for ky in range(k_h):
                ty = oy + pad_top - ky * dil_h
                iy = ty // stride_h
                if ty < 0 or iy * stride_h != ty or iy >= in_h:
                    continue
                for kx in range(k_w):
                    tx = ox + pad_left - kx * dil_w
                    ix = tx // stride_w
                    if tx < 0 or ix * stride_w != tx or ix >= in_w:
                        continue
                    for co in range(out_c):
                        c0 = (co // group_out) * group_in
                        for ci in range(group_in):
                            acc[co] += x[n, iy, ix, c0 + ci] * filters[ky, kx, co % group_out, c0 + ci]
            out[n, oy, ox, :] = acc


def run(spec, x, filters, out):
    """Compute the transposed convolution of ``x`` into ``out`` (all NHWC)."""
    _conv2d_transpose_nhwc(
        x, filters, out, spec.stride_h, spec.stride_w, spec.dil_h, spec.dil_w,
        spec.pad_top, spec.pad_left, spec.groups,
    )
