"""The direct loops: any dtype, groups, NHWC. Each output row sums its
phases' taps into a small buffer, in one of four inner loops picked by the
channel counts (:func:`_form`): three in :func:`_direct`, and one over
groups (:func:`_direct_groups`) for many groups of few channels.
"""

import numba
import numpy as np

from ..._parallel import FLAGS, build, launch
from . import _cost
from ._rows import _input_coord

_F_CO, _F_CI, _F_PIX, _F_GRP = 0, 1, 2, 3  # inner loop over output channels, input channels, pixels, groups


@numba.njit(inline="always", **FLAGS)
def _tap_column(ox0, kx, pl, sw, dw):
    """``(c, meets)``: whether filter column ``kx`` meets output columns
    ``ox0 + sw*b``, and then at input column ``b + c`` (``c`` may be negative)."""
    tx = ox0 + pl - kx * dw
    c = tx // sw  # floor division
    return c, c * sw == tx


def _direct(x, wp, out, sh, sw, dh, dw, pt, pl, groups, part, parts):
    """Direct kernel, in the inner loop ``_FORM`` (a constant of each build);
    ``wp`` is ``[G, KH, KW, Cig, Cog]`` (``_F_CO``, ``_F_PIX``) or ``[G, KH,
    KW, Cog, Cig]`` (``_F_CI``). ``x`` is indexed with explicit
    channel offsets, never sliced: a sliced row has an unknown stride and
    LLVM then leaves the loop scalar (measured 5x)."""
    batch, in_h, in_w, _ = x.shape
    _, out_h, out_w, _ = out.shape
    _, k_h, k_w, a, b_ = wp.shape
    cig, cog = (b_, a) if _FORM == _F_CI else (a, b_)
    nbmax = (out_w + sw - 1) // sw
    tasks = batch * out_h
    for row in range(part * tasks // parts, (part + 1) * tasks // parts):  # this share's tasks
        n = np.int64(row) // out_h
        oy = np.int64(row) - n * out_h
        orow = out[n, oy]
        acc = np.empty((nbmax, cog), out.dtype) if _FORM != _F_PIX else np.empty((cog, nbmax), out.dtype)
        xrows = np.empty((k_h, cig if _FORM == _F_PIX else 0, in_w), x.dtype)
        for g in range(groups):
            c0 = g * cig
            for ky in range(k_h if _FORM == _F_PIX else 0):  # contiguous input rows, copied once for all phases
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
                    for ci in range(cig if _FORM == _F_PIX else 1):
                        for kx in range(k_w):
                            c, meets = _tap_column(ox0, kx, pl, sw, dw)
                            if not meets:
                                continue
                            b0, b1 = max(0, -c), min(nb, in_w - c)
                            w = wp[g, ky, kx]
                            if _FORM == _F_PIX:
                                xs = xrows[ky, ci, b0 + c:b1 + c]
                                for co in range(cog):
                                    wv, ac = w[ci, co], acc[co, b0:b1]
                                    for j in range(b1 - b0):  # from 0: no wraparound test, vectorizes
                                        ac[j] += xs[j] * wv
                            elif _FORM == _F_CI:
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
                if _FORM == _F_PIX:  # a channel at a time: simple strided stores (4x faster)
                    for co in range(cog):
                        a_ = acc[co]
                        for b in range(nb):
                            orow[ox0 + sw * b, g * cog + co] = a_[b]
                else:
                    for b in range(nb):
                        ov, ab = orow[ox0 + sw * b], acc[b]
                        for co in range(cog):
                            ov[g * cog + co] = ab[co]


def _direct_groups(x, wr, out, sh, sw, dh, dw, pt, pl, cig, groups, part, parts):
    """Direct kernel over groups: depthwise layers and channel multipliers.
    ``x`` is ``[N, H, W * C_in]`` (NHWC, its pixels' channels in a row) and
    ``wr`` is ``[KH, KW, Cig, Cog, P * G]``: each filter's ``G`` groups
    repeated for a block of ``P`` pixels. The innermost loop runs over the
    groups of ``P`` neighbouring pixels, ``acc[m, b*G + g] += x[n, iy,
    (b + c)*C_in + g*Cig + i] * w[ky, kx, i, m, g]``, so a vector holds one
    channel of many groups and pixels, and the loop (``_GROUPS_SPAN`` values
    or a row's rest) fills the unrolled vector loop LLVM makes: a trip of
    ``G = 16`` alone ran on its 4-lane remainder loop. Each output value sums its taps
    ``(ky, kx)``, then ``i``, in that order. With one input channel per
    group ``x`` is read in place (its channels are contiguous); with more,
    each output row first copies its input rows to ``xr[ky, i, j*G + g]``,
    so every inner loop reads unit strides. Indexed with explicit offsets,
    never sliced rows (see :func:`_direct`)."""
    batch, in_h, _ = x.shape
    in_w = x.shape[2] // (cig * groups)
    _, out_h, out_w, _ = out.shape
    k_h, k_w, _, cog, span = wr.shape
    block = span // groups
    nbmax = (out_w + sw - 1) // sw
    tasks = batch * out_h
    for row in range(part * tasks // parts, (part + 1) * tasks // parts):  # this share's tasks
        n = np.int64(row) // out_h
        oy = np.int64(row) - n * out_h
        acc = np.empty((cog, nbmax * groups), out.dtype)
        xr = np.empty((k_h if cig > 1 else 0, cig, in_w * groups), x.dtype)
        for ky in range(k_h if cig > 1 else 0):  # groups contiguous, copied once for all phases
            iy = _input_coord(oy, ky, pt, sh, dh, in_h)
            for j in range(in_w if iy >= 0 else 0):
                for i in range(cig):
                    for g in range(groups):
                        xr[ky, i, j * groups + g] = x[n, iy, (j * groups + g) * cig + i]
        for ox0 in range(min(sw, out_w)):
            nb = (out_w - ox0 + sw - 1) // sw
            for m in range(cog):
                for u in range(nb * groups):
                    acc[m, u] = 0
            for ky in range(k_h):
                iy = _input_coord(oy, ky, pt, sh, dh, in_h)
                if iy < 0:
                    continue
                for kx in range(k_w):
                    c, meets = _tap_column(ox0, kx, pl, sw, dw)
                    if not meets:
                        continue
                    b0, b1 = max(0, -c), min(nb, in_w - c)
                    for b in range(b0, b1, block):
                        a0, s0, t = np.uint64(b * groups), np.uint64((b + c) * groups), min(block, b1 - b) * groups
                        for i in range(cig):
                            for m in range(cog):
                                if cig == 1:
                                    for u in range(t):
                                        v = np.uint64(u)  # unsigned: no wraparound test, vectorizes
                                        acc[m, a0 + v] += x[n, iy, s0 + v] * wr[ky, kx, 0, m, v]
                                else:
                                    for u in range(t):
                                        v = np.uint64(u)
                                        acc[m, a0 + v] += xr[ky, i, s0 + v] * wr[ky, kx, i, m, v]
            for b in range(nb):
                ov = out[n, oy, ox0 + sw * b]
                for m in range(cog):
                    ab = acc[m, b * groups:(b + 1) * groups]
                    if cog == 1:
                        for g in range(groups):
                            ov[g] = ab[g]
                    else:
                        for g in range(groups):
                            ov[g * cog + m] = ab[g]


_FORM = _F_CO  # replaced in each build of _direct: a constant, so LLVM compiles one inner loop per build
_DIRECT = {form: build(_direct, f"_direct_{form}", _FORM=form) for form in (_F_CO, _F_CI, _F_PIX)}
_DIRECT_GROUPS = build(_direct_groups)
_GROUPS_SPAN = 512  # the groups form's inner loop: at least this many values of a row


def _form(spec):
    """The inner loop: over groups where the cost model says so (many groups of
    few channels, :func:`._cost._direct_over_groups`), else over output channels
    where a group has 8 or more, else over input channels where it has 16 or
    more, else over pixels."""
    if _cost._direct_over_groups(spec):
        return _F_GRP
    cig, cog = spec.in_c // spec.groups, spec.out_c // spec.groups
    return _F_CO if cog >= 8 else (_F_CI if cig >= 16 else _F_PIX)


def _run_direct(plan, x, filters, out):
    """The direct loops, on NHWC ``x`` and ``out``; ``plan.split`` is ``(form,)``."""
    spec, (form,) = plan.spec, plan.split
    g, k_h, k_w = spec.groups, spec.k_h, spec.k_w
    cig, cog = spec.in_c // g, spec.out_c // g
    if form == _F_GRP:
        wp = filters.reshape(k_h, k_w, cog, g, cig).transpose(0, 1, 4, 2, 3)  # [KH, KW, Cig, Cog, G]
        wr = np.ascontiguousarray(np.tile(wp, -(-_GROUPS_SPAN // g)))  # [KH, KW, Cig, Cog, P * G]
        launch(_DIRECT_GROUPS, plan.work, x.reshape(x.shape[0], x.shape[1], -1), wr, out, *plan.args, cig, g)
        return
    f = filters.reshape(k_h, k_w, cog, g, cig).transpose(3, 0, 1, 4, 2)  # [G, KH, KW, Cig, Cog]
    wp = np.ascontiguousarray(f.transpose(0, 1, 2, 4, 3) if form == _F_CI else f)
    launch(_DIRECT[form], plan.work, x, wp, out, *plan.args, g)
