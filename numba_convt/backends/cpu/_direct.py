"""The direct loops: any dtype, groups, NHWC. Each output row sums its
phases' taps into a small buffer, in one of three inner loops picked by the
channel counts (:func:`_form`).
"""

import numba
import numpy as np

from ..._parallel import builds, launch
from ._rows import _input_coord

_F_CO, _F_CI, _F_PIX = 0, 1, 2  # inner loop over output channels, input channels, pixels


def _direct(x, wp, out, form, sh, sw, dh, dw, pt, pl, groups):
    """Direct kernel; ``wp`` is ``[G, KH, KW, Cig, Cog]`` (``_F_CO``, ``_F_PIX``)
    or ``[G, KH, KW, Cog, Cig]`` (``_F_CI``). ``x`` is indexed with explicit
    channel offsets, never sliced: a sliced row has an unknown stride and
    LLVM then leaves the loop scalar (measured 5x)."""
    batch, in_h, in_w, _ = x.shape
    _, out_h, out_w, _ = out.shape
    _, k_h, k_w, a, b_ = wp.shape
    cig, cog = (b_, a) if form == _F_CI else (a, b_)
    nbmax = (out_w + sw - 1) // sw
    for row in numba.prange(batch * out_h):
        n = np.int64(row) // out_h
        oy = np.int64(row) - n * out_h
        orow = out[n, oy]
        acc = np.empty((nbmax, cog), out.dtype) if form != _F_PIX else np.empty((cog, nbmax), out.dtype)
        xrows = np.empty((k_h, cig if form == _F_PIX else 0, in_w), x.dtype)
        for g in range(groups):
            c0 = g * cig
            for ky in range(k_h if form == _F_PIX else 0):  # contiguous input rows, copied once for all phases
                iy = _input_coord(oy, ky, pt, sh, dh, in_h)
                for ci in range(cig if iy >= 0 else 0):
                    for j in range(in_w):
                        xrows[ky, ci, j] = x[n, iy, j, c0 + ci]
            for ox0 in range(min(sw, out_w)):
                nb = (out_w - ox0 + sw - 1) // sw
                acc[:] = 0
                for ky in range(k_h):
                    iy = _input_coord(oy, ky, pt, sh, dh, in_h)
                    if iy < 0:
                        continue
                    for ci in range(cig if form == _F_PIX else 1):
                        for kx in range(k_w):
                            tx = ox0 + pl - kx * dw
                            c = tx // sw  # floor division: may be negative
                            if c * sw != tx:
                                continue
                            b0, b1 = max(0, -c), min(nb, in_w - c)
                            w = wp[g, ky, kx]
                            if form == _F_PIX:
                                xs = xrows[ky, ci, b0 + c:b1 + c]
                                for co in range(cog):
                                    wv, ac = w[ci, co], acc[co, b0:b1]
                                    for j in range(b1 - b0):  # from 0: no wraparound test, vectorizes
                                        ac[j] += xs[j] * wv
                            elif form == _F_CI:
                                for b in range(b0, b1):
                                    xv = x[n, iy, b + c, c0:c0 + cig]
                                    for co in range(cog):
                                        s, wc = acc[b, co], w[co]
                                        for k in range(cig):
                                            s += xv[k] * wc[k]
                                        acc[b, co] = s
                            else:
                                for b in range(b0, b1):
                                    ab, xv = acc[b], x[n, iy, b + c, c0:c0 + cig]
                                    k = 0
                                    while k + 4 <= cig:  # 4 input channels per pass over acc
                                        x0, x1, x2, x3 = xv[k], xv[k + 1], xv[k + 2], xv[k + 3]
                                        w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
                                        for co in range(cog):
                                            ab[co] += x0 * w0[co] + x1 * w1[co] + x2 * w2[co] + x3 * w3[co]
                                        k += 4
                                    for kk in range(k, cig):
                                        x0, w0 = xv[kk], w[kk]
                                        for co in range(cog):
                                            ab[co] += x0 * w0[co]
                if form == _F_PIX:  # a channel at a time: simple strided stores (4x faster)
                    for co in range(cog):
                        a_ = acc[co]
                        for b in range(nb):
                            orow[ox0 + sw * b, g * cog + co] = a_[b]
                else:
                    for b in range(nb):
                        ov, ab = orow[ox0 + sw * b], acc[b]
                        for co in range(cog):
                            ov[g * cog + co] = ab[co]


_DIRECT = builds(_direct)  # (serial, parallel)


def _form(spec):
    """The inner loop: over output channels where a group has 8 or more,
    else over input channels where it has 16 or more, else over pixels."""
    cig, cog = spec.in_c // spec.groups, spec.out_c // spec.groups
    return _F_CO if cog >= 8 else (_F_CI if cig >= 16 else _F_PIX)


def _run_direct(plan, x, filters, out):
    """The direct loops, on NHWC ``x`` and ``out``; ``plan.split`` is ``(form,)``."""
    spec, (form,) = plan.spec, plan.split
    g, k_h, k_w = spec.groups, spec.k_h, spec.k_w
    cig, cog = spec.in_c // g, spec.out_c // g
    f = filters.reshape(k_h, k_w, cog, g, cig).transpose(3, 0, 1, 4, 2)  # [G, KH, KW, Cig, Cog]
    wp = np.ascontiguousarray(f.transpose(0, 1, 2, 4, 3) if form == _F_CI else f)
    launch(_DIRECT, plan.work, x, wp, out, form, *plan.args, g)
