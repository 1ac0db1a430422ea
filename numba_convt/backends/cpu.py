"""Backend ``"cpu"``: phase-decomposed Numba kernels, plus a BLAS path.

Output row ``(n, oy)`` only meets filter rows ``ky`` with
``(oy + pad_top - ky*dil_h) % stride_h == 0`` and, within the row, output
columns of one phase ``ox = ox0 + stride_w*b`` only meet the filter columns
``kx`` of that phase, at input column ``b + c(kx)``. So every kernel loops
over (row, column phase, valid taps) with no modulo test and no product with
an inserted zero, accumulates a row in a small buffer, and writes each output
element from one thread in a fixed order of summation: results are bitwise
identical for any thread count.

Float and complex layers with at least 16 input channels use BLAS: each
task (several whole images, or a band of output rows of one) computes
``Y = x @ W`` for the input rows that reach it with one GEMM (``W`` is
``[KH*KW*C_out, C_in]``, the filters as given) and gathers ``Y`` into its
output rows with the same phase loops. The GEMM is NumPy's own OpenBLAS,
called from inside the ``prange`` on the task's thread (see ``_blas``), so
GEMM and gather share the cores and the cache; how work is split depends on
the shapes (and the machine's core count) only, so these results are
deterministic too. Kernels whose taps split evenly over the phases use the
sub-pixel form instead: one GEMM over all taps, copied out. These paths read
and write NCHW calls in place.

Most float layers skip ``Y`` altogether, in kernels written with explicit
vectors (``_tile``: 512-bit where the CPU has them): with at least 16 output
channels and rows wide enough, a register tile sums every tap of a phase
into 8 output pixels by 32 channels at a time (NCHW in place too); with
fewer output channels (NHWC), a dot kernel gives a few pixels all their
channels, as vectors of partial sums over input channels. Layers BLAS's
cost model does not take (fewer than 16 input channels, groups, few pixels)
run whichever of the direct loops (NHWC), the tile and the dot kernel needs
the fewest vector operations (:func:`_few_channel_path`).
"""

import math

import numba
import numpy as np

from .._geometry import first_tap, input_coord
from .._layout import change_layout
from .._parallel import FLAGS as _FLAGS, builds, launch
from . import _blas, _tile
from ._blas import NO_TRANS as _NO_TRANS, ROW_MAJOR as _ROW_MAJOR, TRANS as _TRANS

_F_CO, _F_CI, _F_PIX = 0, 1, 2  # inner loop over output channels, input channels, pixels
# Bound on a task's Y, ~L2: larger GEMMs run faster (M=64 rows: 108 GFLOP/s,
# 512: 170, one core) until Y spills out of L2.
_Y_BYTES = 1 << 21
_NCHW_GEMM_PIXELS = 256  # NCHW images this large get a GEMM each, smaller ones are copied to NHWC first
_MAX_TASK_BYTES = 1 << 26  # beyond, a task's scratch is too large: direct loops instead
_MIN_TASKS = numba.config.NUMBA_DEFAULT_NUM_THREADS  # the machine's cores, whatever set_num_threads says
_input_coord = numba.njit(inline="always", **_FLAGS)(input_coord)
_first_tap = numba.njit(inline="always", **_FLAGS)(first_tap)


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


@numba.njit(inline="always", **_FLAGS)
def _out_row(out_n, oy, rowbuf, nchw):
    """Where output row ``oy`` of one image is assembled, ``[W, C]``: the row
    itself (NHWC), or ``rowbuf``, which :func:`_flush_row` then stores (NCHW)."""
    return rowbuf if nchw else out_n[oy]


@numba.njit(inline="always", **_FLAGS)
def _flush_row(out_n, oy, row, nchw):
    """Store an assembled row into an NCHW image ``[C, H, W]``, a plane at a time."""
    if nchw:
        for co in range(row.shape[1]):
            plane = out_n[co, oy]
            for ox in range(row.shape[0]):
                plane[ox] = row[ox, co]


def _gather_co(y, out_n, nchw, o0, o1, i0, in_h, sh, sw, dh, dw, pt, pl):
    """Output rows ``o0:o1`` of one image (``[H, W, C]``, or ``[C, H, W]`` if
    ``nchw``) from ``y[iy - i0, ix, ky, kx, co] = x[n, iy, ix] @ filters[ky, kx].T``,
    which holds every input row they need."""
    _, in_w, k_h, k_w, cout = y.shape
    out_w = out_n.shape[2 if nchw else 1]
    acc = np.empty(((out_w + sw - 1) // sw, cout), out_n.dtype)
    rowbuf = np.empty((out_w if nchw else 0, cout), out_n.dtype)
    for oy in range(o0, o1):
        orow = _out_row(out_n, oy, rowbuf, nchw)
        for ox0 in range(min(sw, out_w)):
            nb = (out_w - ox0 + sw - 1) // sw
            acc[:nb] = 0
            for ky in range(k_h):
                iy = _input_coord(oy, ky, pt, sh, dh, in_h)
                if iy < 0:
                    continue
                for kx in range(k_w):
                    tx = ox0 + pl - kx * dw
                    c = tx // sw
                    if c * sw != tx:
                        continue
                    for b in range(max(0, -c), min(nb, in_w - c)):
                        yv, ab = y[iy - i0, b + c, ky, kx], acc[b]
                        for co in range(cout):
                            ab[co] += yv[co]
            for b in range(nb):
                ov, ab = orow[ox0 + sw * b], acc[b]
                for co in range(cout):
                    ov[co] = ab[co]
        _flush_row(out_n, oy, orow, nchw)


def _gather_pix(yt, i, out_n, nchw, o0, o1, i0, in_h, sh, sw, dh, dw, pt, pl):
    """As :func:`_gather_co` from ``yt[ky, kx, co, i, iy - i0, ix]``: pixels
    contiguous, so the adds vectorize over pixels when ``C_out`` is small."""
    k_h, k_w, cout, _, _, in_w = yt.shape
    out_w = out_n.shape[2 if nchw else 1]
    acc = np.empty((sw, cout, (out_w + sw - 1) // sw), out_n.dtype)
    rowbuf = np.empty((out_w if nchw else 0, cout), out_n.dtype)
    for oy in range(o0, o1):
        orow = _out_row(out_n, oy, rowbuf, nchw)
        acc[:] = 0
        for ky in range(k_h):
            iy = _input_coord(oy, ky, pt, sh, dh, in_h)
            if iy < 0:
                continue
            for kx in range(k_w):
                ox0 = (kx * dw - pl) % sw
                c = (ox0 + pl - kx * dw) // sw
                b0, b1 = max(0, -c), min((out_w - ox0 + sw - 1) // sw, in_w - c)
                for co in range(cout):
                    ys, ac = yt[ky, kx, co, i, iy - i0, b0 + c:b1 + c], acc[ox0, co, b0:b1]
                    for j in range(b1 - b0):
                        ac[j] += ys[j]
        for ox0 in range(min(sw, out_w)):
            for co in range(cout):
                a_ = acc[ox0, co]
                for b in range((out_w - ox0 + sw - 1) // sw):
                    orow[ox0 + sw * b, co] = a_[b]
        _flush_row(out_n, oy, orow, nchw)


_gather_co_kernel = numba.njit(**_FLAGS)(_gather_co)
_gather_pix_kernel = numba.njit(**_FLAGS)(_gather_pix)


@numba.njit(inline="always", **_FLAGS)
def _task_count(batch, images, rows, band):
    """Tasks of ``images`` whole images, or of ``band`` of the ``rows`` of one."""
    return (batch + images - 1) // images * ((rows + band - 1) // band)


@numba.njit(inline="always", **_FLAGS)
def _task_span(task, batch, images, rows, band):
    """Images ``n0:n0 + m`` and rows ``r0:r1`` of task number ``task``."""
    bands = (rows + band - 1) // band
    group = task // bands
    n0, r0 = group * images, (task - group * bands) * band
    return n0, min(images, batch - n0), r0, min(rows, r0 + band)


@numba.njit(**_FLAGS)  # not inlined: the arrays stay referenced until the call returns
def _gemm(gemm, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """``c = alpha * op(a) @ op(b) + beta * c``, row-major, from the arrays'
    first elements (``op`` transposes when asked)."""
    gemm(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, m, n, k, alpha,
         a.ctypes.data, lda, b.ctypes.data, ldb, beta, c.ctypes.data, ldc)


@numba.njit(inline="always", **_FLAGS)
def _input_rows(o0, o1, in_h, k_h, sh, dh, pt):
    """The input rows ``i0:i1`` that output rows ``o0:o1`` reach (``i1 <= i0`` if none)."""
    return max(0, -(((k_h - 1) * dh - pt - o0) // sh)), min(in_h, (o1 - 1 + pt) // sh + 1)


@numba.njit(inline="always", **_FLAGS)
def _row_nhwc(x, n, iy, dst):
    """Row ``iy`` of NCHW image ``n`` into ``dst`` (``[W, C]``), in 16x16 tiles
    so that each written line is filled while in L1."""
    in_c, in_w = x.shape[1], x.shape[3]
    for c0 in range(0, in_c, 16):
        for b0 in range(0, in_w, 16):
            for ci in range(c0, min(in_c, c0 + 16)):
                src = x[n, ci, iy]
                for ix in range(b0, min(in_w, b0 + 16)):
                    dst[ix, ci] = src[ix]


@numba.njit(inline="always", **_FLAGS)
def _rows_nhwc(x, n0, m, i0, i1):
    """Rows ``i0:i1`` of NCHW images ``n0:n0 + m``, copied into NHWC order: a
    task's input, small enough to stay in cache, as its GEMM wants it."""
    xs = np.empty((m, i1 - i0, x.shape[3], x.shape[1]), x.dtype)
    for i in range(m):
        for r in range(i1 - i0):
            _row_nhwc(x, n0 + i, i0 + r, xs[i, r])
    return xs


def _blas_tasks(x, w, out, gemm, alpha, beta, images, band_h, pixels_last, nchw, sh, sw, dh, dw, pt, pl):
    """Each task takes ``images`` whole images, or ``band_h`` output rows of one
    image: GEMMs on the task's own thread give ``Y`` for the input rows that
    reach them, then the gather. Bands share a few input rows, computed by
    both. ``x`` and ``out`` are NHWC, or NCHW if ``nchw``: then each task
    copies its input rows into NHWC order and assembles its output rows
    before storing them plane by plane."""
    batch = x.shape[0]
    in_h, in_w, in_c = (x.shape[2], x.shape[3], x.shape[1]) if nchw else (x.shape[1], x.shape[2], x.shape[3])
    k_h, k_w, cout, _ = w.shape
    out_h = out.shape[2 if nchw else 1]
    cols = k_h * k_w * cout
    for task in numba.prange(_task_count(batch, images, out_h, band_h)):
        n0, m, o0, o1 = _task_span(task, batch, images, out_h, band_h)
        i0, i1 = 0, in_h
        if band_h < out_h:  # only the input rows that reach o0:o1
            i0, i1 = _input_rows(o0, o1, in_h, k_h, sh, dh, pt)
            if i1 <= i0:  # rows no input reaches (o0 >= o1 included)
                if nchw:
                    out[n0, :, o0:o1] = 0
                else:
                    out[n0, o0:o1] = 0
                continue
        each = (i1 - i0) * in_w  # pixels per image
        pixels = m * each
        y = np.empty(pixels * cols, out.dtype)
        if nchw and each >= _NCHW_GEMM_PIXELS:  # a GEMM per image, reading its [C_in, pixels] rows transposed
            for i in range(m):
                xt = x[n0 + i, :, i0:]  # X.T: [C_in, pixels], rows in_h * in_w apart
                if pixels_last:  # Y.T = W @ X.T, image i's columns
                    _gemm(gemm, False, False, cols, each, in_c, alpha, w, in_c, xt, in_h * in_w,
                          beta, y[i * each:], pixels)
                else:
                    _gemm(gemm, True, True, each, cols, in_c, alpha, xt, in_h * in_w, w, in_c,
                          beta, y[i * each * cols:], cols)
        else:  # one GEMM over the task's rows as an NHWC [pixels, C_in] matrix (copied from NCHW)
            xs = _rows_nhwc(x, n0, m, i0, i1) if nchw else x[n0:n0 + m, i0:i1]
            if pixels_last:  # Y.T = W @ X.T
                _gemm(gemm, False, True, cols, pixels, in_c, alpha, w, in_c, xs, in_c, beta, y, pixels)
            else:
                _gemm(gemm, False, True, pixels, cols, in_c, alpha, xs, in_c, w, in_c, beta, y, cols)
        if pixels_last:
            yt = y.reshape(k_h, k_w, cout, m, i1 - i0, in_w)
            for i in range(m):
                _gather_pix_kernel(yt, i, out[n0 + i], nchw, o0, o1, i0, in_h, sh, sw, dh, dw, pt, pl)
        else:
            y6 = y.reshape(m, i1 - i0, in_w, k_h, k_w, cout)
            for i in range(m):
                _gather_co_kernel(y6[i], out[n0 + i], nchw, o0, o1, i0, in_h, sh, sw, dh, dw, pt, pl)


@numba.njit(inline="always", **_FLAGS)
def _block_of(row, n0, q_first, q_count, qx_first, qx_count):
    """Image and block coordinates ``(n, q, qx)`` of a row of a sub-pixel task's ``A``."""
    block = row // qx_count
    return n0 + block // q_count, q_first + block % q_count, qx_first + row % qx_count


def _subpixel_tasks(x, wp, out, gemm, alpha, beta, images, band_q, th, tw, nchw, sh, sw, dh, dw, pt, pl):
    """Sub-pixel form, for filters whose taps split evenly over the phases
    (see :func:`_is_subpixel`). Output pixel ``(q*sh + r - pt, qx*sw + rx - pl)``
    is row ``(q, qx)``, column ``(r, rx, co)`` of ``A @ wp.T``, where row
    ``(q, qx)`` of ``A`` holds ``x[q - t*dh, qx - tx*dw]`` for each tap
    ``(t, tx)`` and ``wp[(r, rx, co), (t, tx, ci)] = filters[r + sh*t, rx + sw*tx, co, ci]``.
    So one GEMM per task sums every tap, and its result is copied out.
    ``x`` and ``out`` are NHWC, or NCHW if ``nchw``."""
    batch = x.shape[0]
    in_h, in_w, in_c = (x.shape[2], x.shape[3], x.shape[1]) if nchw else (x.shape[1], x.shape[2], x.shape[3])
    out_h, out_w, cout = (out.shape[2], out.shape[3], out.shape[1]) if nchw else (out.shape[1], out.shape[2], out.shape[3])
    q0, qx0 = pt // sh, pl // sw
    bh, bw = (out_h - 1 + pt) // sh + 1 - q0, (out_w - 1 + pl) // sw + 1 - qx0
    depth, width = th * tw * in_c, sh * sw * cout
    for task in numba.prange(_task_count(batch, images, bh, band_q)):
        n0, m, b0, b1 = _task_span(task, batch, images, bh, band_q)
        rows = m * (b1 - b0) * bw
        lo = max(0, q0 + b0 - (th - 1) * dh)  # the input rows the task's blocks reach
        hi = max(lo, min(in_h, q0 + b1))
        xs = _rows_nhwc(x, n0, m, lo, hi) if nchw else x[n0:n0 + m, lo:hi]
        a = np.empty((rows, th, tw, in_c), out.dtype)
        c = np.empty((rows, sh, sw, cout), out.dtype)
        for row in range(rows):
            n, q, qx = _block_of(row, n0, q0 + b0, b1 - b0, qx0, bw)
            for t in range(th):
                iy = q - t * dh
                for tx in range(tw):
                    ix, at = qx - tx * dw, a[row, t, tx]
                    if 0 <= iy < in_h and 0 <= ix < in_w:
                        xv = xs[n - n0, iy - lo, ix]
                        for ci in range(in_c):
                            at[ci] = xv[ci]
                    else:
                        at[:] = 0
        _gemm(gemm, False, True, rows, width, depth, alpha, a, depth, wp, depth, beta, c, width)
        rowbuf = np.empty((out_w if nchw else 0, cout), out.dtype)
        for block in range(m * (b1 - b0)):  # a block row at a time, so each output row completes
            n, q, _ = _block_of(block * bw, n0, q0 + b0, b1 - b0, qx0, bw)
            for r in range(sh):
                oy = q * sh + r - pt
                if oy < 0 or oy >= out_h:
                    continue
                orow = _out_row(out[n], oy, rowbuf, nchw)
                for row in range(block * bw, (block + 1) * bw):
                    qx = qx0 + row % bw
                    for rx in range(sw):
                        ox = qx * sw + rx - pl
                        if 0 <= ox < out_w:
                            ov, cv = orow[ox], c[row, r, rx]
                            for co in range(cout):
                                ov[co] = cv[co]
                _flush_row(out[n], oy, orow, nchw)


@numba.njit(inline="always", **_FLAGS)
def _padded_rows(x, n, i0, i1, pad_left, width, rows, nchw):
    """Input rows ``i0:i1`` of image ``n`` as ``[H, width, C_in]``, with
    ``pad_left`` zero columns before and zeros after, then zero rows enough
    for a tile of ``rows`` pixels to read past the end (it never stores those)."""
    in_c, in_w = (x.shape[1], x.shape[3]) if nchw else (x.shape[3], x.shape[2])
    xs = np.empty((i1 - i0 + (rows + width - 1) // width, width, in_c), x.dtype)
    xs[i1 - i0:] = 0
    for r in range(i1 - i0):
        row = xs[r]
        row[:pad_left] = 0
        row[pad_left + in_w:] = 0
        if nchw:
            _row_nhwc(x, n, i0 + r, row[pad_left:])
        else:
            row[pad_left:pad_left + in_w] = x[n, i0 + r]
    return xs


@numba.njit(inline="always", **_FLAGS)
def _phase_taps(oy, ox0, in_h, k_h, k_w, sh, sw, dh, dw, pt, pl, found):
    """The taps that reach output row ``oy`` in column phase ``ox0`` from an
    input row in range, as rows ``(iy, c, ky*k_w + kx)`` of ``found``: pixel
    ``j`` of the phase (``ox = ox0 + sw*j``) reads input column ``j + c``.
    Returns how many."""
    step_h, step_w = sh // math.gcd(sh, dh), sw // math.gcd(sw, dw)  # taps of one phase are this far apart
    count = 0
    for ky in range(_first_tap(oy, k_h, pt, sh, dh, step_h), k_h, step_h):
        iy = (oy + pt - ky * dh) // sh
        if iy < 0 or iy >= in_h:
            continue
        for kx in range(_first_tap(ox0, k_w, pl, sw, dw, step_w), k_w, step_w):
            found[count, 0], found[count, 1], found[count, 2] = iy, (ox0 + pl - kx * dw) // sw, ky * k_w + kx
            count += 1
    return count


@numba.njit(inline="always", **_FLAGS)
def _by_phase(o0, o1, sh):
    """Rows ``o0:o1``, those of one phase (so of one set of filter rows) in a run."""
    rows = np.empty(o1 - o0, np.int64)
    i = 0
    for r in range(min(sh, o1 - o0)):
        for oy in range(o0 + r, o1, sh):
            rows[i] = oy
            i += 1
    return rows


def _tiled_tasks(x, wp, out, tile, rows, band, pad_left, width, copy, nchw, sh, sw, dh, dw, pt, pl):
    """Register-tiled direct kernel: :mod:`_tile` computes ``rows`` output
    pixels of one column phase (``ox = ox0 + sw*j``, consecutive ``j``) by a
    block of ``wp.shape[-1]`` output channels, summing over the phase's taps
    and the input channels. A task takes a band of ``band`` output rows of
    one image, and copies the input rows they reach into a zero-padded
    buffer, so every tap of a phase is in range for every pixel (exact for
    finite filters: ``0 * w == 0``); NHWC rows that need no padding are read
    in place unless ``copy``. ``wp`` is ``[blocks, KH, KW, C_in, block]``,
    zero beyond ``C_out``. ``x`` and ``out`` are NHWC, or NCHW if ``nchw``:
    then the band is assembled NHWC first."""
    batch = x.shape[0]
    in_h, in_w, in_c = (x.shape[2], x.shape[3], x.shape[1]) if nchw else (x.shape[1], x.shape[2], x.shape[3])
    out_h, out_w, cout = (out.shape[2], out.shape[3], out.shape[1]) if nchw else (out.shape[1], out.shape[2], out.shape[3])
    blocks, k_h, k_w, _, block = wp.shape
    for task in numba.prange(_task_count(batch, 1, out_h, band)):
        n, _, o0, o1 = _task_span(task, batch, 1, out_h, band)
        i0, i1 = _input_rows(o0, o1, in_h, k_h, sh, dh, pt)
        if copy or nchw:
            xs = _padded_rows(x, n, i0, max(i0, i1), pad_left, width, rows, nchw)
        else:
            xs = x[n, i0:]
        assembled = np.empty((o1 - o0, out_w if nchw else 0, cout), out.dtype)
        found, offsets = np.empty((k_h * k_w, 3), np.int64), np.empty((2, k_h * k_w), np.int64)
        order = _by_phase(o0, o1, sh)
        for b in range(blocks):  # each block's filters serve every row of the band while in cache
            for ox0 in range(min(sw, out_w)):
                for oy in order:
                    orow = _out_row(out[n], oy, assembled[oy - o0], nchw)
                    _tiled_phase(tile, rows, xs, wp[b], orow[ox0:, b * block:], found, offsets[0], offsets[1],
                                 oy - sh * i0, ox0, in_h - i0, pad_left, width, sh, sw, dh, dw, pt, pl)
        for oy in range(o0, o1):
            _flush_row(out[n], oy, assembled[oy - o0], nchw)


@numba.njit(**_FLAGS)  # not inlined: the arrays stay referenced while the kernel has their addresses
def _tiled_phase(tile, rows, xs, w, dest, found, xoff, woff, oy, ox0, in_h, pad_left, width, sh, sw, dh, dw, pt,
                 pl):
    """Columns ``ox0 + sw*j`` of an output row of :func:`_tiled_tasks`, for one
    block of channels: ``dest[sw*j, :block]``. ``xs`` holds the padded input
    rows, in which the output row is row ``oy`` and the input ``in_h`` rows
    tall; ``w`` is the block's filters. ``found``, ``xoff`` and ``woff`` are
    scratch for the taps and the kernel's offsets."""
    k_h, k_w, in_c, block = w.shape
    taps = _phase_taps(oy, ox0, in_h, k_h, k_w, sh, sw, dh, dw, pt, pl, found)
    for t in range(taps):
        xoff[t] = (found[t, 0] * width + pad_left + found[t, 1]) * in_c
        woff[t] = found[t, 2] * in_c * block
    nb, cols = (dest.shape[0] + sw - 1) // sw, min(block, dest.shape[1])
    ldc, size = dest.strides[0] // dest.itemsize * sw, dest.itemsize
    for j in range(0, nb, rows):
        tile(xs.ctypes.data + j * in_c * size, xoff.ctypes.data, woff.ctypes.data, taps, in_c, in_c, w.ctypes.data,
             dest[sw * j:].ctypes.data, ldc, nb - j, cols)


def _dot_tasks(x, f, out, dot, rows, single, band, sh, sw, dh, dw, pt, pl):
    """Direct kernel for few output channels (NHWC): :mod:`_tile`'s dot
    kernel gives ``rows`` pixels of one column phase all ``C_out`` channels,
    each a vector of partial dot products over input channels, summed over
    the phase's taps, reading ``x`` in place; pixels at the row's edges, where
    some taps fall outside, go one at a time (``single``). A task takes
    ``band`` output rows of one image. ``f`` is the filters as given,
    ``[KH, KW, C_out, C_in]``."""
    batch, out_h = x.shape[0], out.shape[1]
    for task in numba.prange(_task_count(batch, 1, out_h, band)):
        n, _, o0, o1 = _task_span(task, batch, 1, out_h, band)
        taps = f.shape[0] * f.shape[1]
        found, scratch = np.empty((taps, 3), np.int64), np.empty((4, taps), np.int64)
        for oy in range(o0, o1):
            _dot_row(dot, rows, single, x, f, out[n, oy], found, scratch, n, oy, sh, sw, dh, dw, pt, pl)


@numba.njit(**_FLAGS)  # not inlined: the arrays stay referenced while the kernels have their addresses
def _dot_row(dot, rows, single, x, f, orow, found, scratch, n, oy, sh, sw, dh, dw, pt, pl):
    """Output row ``orow`` (``[W, C_out]``) of image ``n`` for :func:`_dot_tasks`;
    ``found`` and ``scratch`` hold the taps and the kernels' offsets."""
    _, in_h, in_w, in_c = x.shape
    k_h, k_w, cout, _ = f.shape
    out_w = orow.shape[0]
    size = x.itemsize
    a_off, b_off, edge_a, edge_b = scratch[0], scratch[1], scratch[2], scratch[3]
    for ox0 in range(min(sw, out_w)):
        taps = _phase_taps(oy, ox0, in_h, k_h, k_w, sh, sw, dh, dw, pt, pl, found)
        nb = (out_w - ox0 + sw - 1) // sw
        lo, hi = 0, nb  # narrowed to the pixels every tap reaches
        for t in range(taps):
            c = found[t, 1]
            a_off[t] = ((n * in_h + found[t, 0]) * in_w + c) * in_c
            b_off[t] = found[t, 2] * cout * in_c
            lo, hi = max(lo, -c), min(hi, in_w - c)
        tiled = hi - lo >= rows  # pixels lo:hi meet every tap: tiles, the last one ending at hi
        for i in range(lo, hi if tiled else lo, rows):
            j = min(i, hi - rows)
            dot(x.ctypes.data + j * in_c * size, a_off.ctypes.data, b_off.ctypes.data, taps, in_c, in_c,
                f.ctypes.data, in_c, orow[ox0 + sw * j:].ctypes.data, sw * cout)
        for j in range(nb):  # the rest, each with the taps in range
            if tiled and lo <= j < hi:
                continue
            kept = 0
            for t in range(taps):
                if 0 <= j + found[t, 1] < in_w:
                    edge_a[kept], edge_b[kept] = a_off[t], b_off[t]
                    kept += 1
            single(x.ctypes.data + j * in_c * size, edge_a.ctypes.data, edge_b.ctypes.data, kept, in_c, in_c,
                   f.ctypes.data, in_c, orow[ox0 + sw * j:].ctypes.data, sw * cout)


def _pack(filters, wp):
    """``wp[b, ky, kx, ci, j] = filters[ky, kx, b*block + j, ci]``, zero past
    ``C_out``, in 16x16 tiles; returns how many taps hold a value that is not
    finite."""
    blocks, k_h, k_w, in_c, block = wp.shape
    cout = filters.shape[2]
    bad = 0
    for tap in numba.prange(k_h * k_w):
        ky, kx = tap // k_w, tap % k_w
        src, finite = filters[ky, kx], True
        for co in range(cout):
            for ci in range(in_c):  # not ``x * 0 != 0``: LLVM 14 folded that under reassoc
                finite &= np.isfinite(src[co, ci])
        bad += not finite
        for b in range(blocks):
            for i0 in range(0, in_c, 16):
                for j0 in range(0, block, 16):
                    for ci in range(i0, min(in_c, i0 + 16)):
                        dst = wp[b, ky, kx, ci]
                        for j in range(j0, j0 + 16):
                            co = b * block + j
                            dst[j] = src[co, ci] if co < cout else 0
    return bad


_KERNELS = {function: builds(function)  # (serial, parallel) builds of each kernel
            for function in (_direct, _blas_tasks, _subpixel_tasks, _tiled_tasks, _dot_tasks, _pack)}


def _work(spec, out):
    """About how many multiply-adds the call does: what picks serial or parallel."""
    return out.size * max(1, spec.k_h * spec.k_w * (spec.in_c // spec.groups) // (spec.stride_h * spec.stride_w))


def _rows_per_task(spec):
    """Output rows per task for about 4 tasks per core (balance against start-up)."""
    return max(1, -(-spec.batch * spec.out_h // (4 * _MIN_TASKS)))


def _launch(function, work, *args):
    """Run ``function``'s serial or parallel build (see ``numba_convt._parallel``)."""
    return launch(_KERNELS[function], work, *args)


def _use_blas(spec):
    """Cost model: BLAS pays when a ``C_in``-deep product per value of ``Y``
    beats the extra pass over ``Y`` (``KH*KW*C_out`` values per input pixel),
    and a task's scratch stays within ``_MAX_TASK_BYTES`` (the direct loops
    need none: very wide rows with large kernels go there)."""
    return (
        _blas.gemm(spec.compute_dtype) is not None
        and spec.groups == 1 and spec.in_c >= 16 and spec.batch * spec.in_h * spec.in_w >= 64
        and _split(spec)[3] <= _MAX_TASK_BYTES
    )


def _split(spec):
    """(sub-pixel form?, images, band, scratch bytes) of a BLAS task."""
    subpixel = _is_subpixel(spec)
    return (subpixel, *(_subpixel_split if subpixel else _tasks)(spec, spec.compute_dtype.itemsize))


def _tasks(spec, itemsize):
    """(images, band_h, bytes of Y): each task takes ``images`` whole images,
    or a band of ``band_h`` output rows of one image, as large as keeps its
    ``Y`` within ``_Y_BYTES`` while giving at least ``_MIN_TASKS`` tasks. A
    band owns at least 4x the input rows it shares with the next (recomputing
    at most a quarter), so ``Y`` may reach ``5 * overlap + 1`` rows. Fixed by
    the shapes and the machine: results do not depend on the thread count."""
    y_row = spec.in_w * spec.k_h * spec.k_w * spec.out_c * itemsize
    if spec.in_h * y_row <= _Y_BYTES:
        images = max(1, min(_Y_BYTES // (spec.in_h * y_row), -(-spec.batch // _MIN_TASKS)))
        return images, spec.out_h, images * spec.in_h * y_row
    reach = (spec.k_h - 1) * spec.dil_h
    own = max(_Y_BYTES // y_row - reach // spec.stride_h - 1, 4 * (reach // spec.stride_h), 1)
    bands = max(2, -(-_MIN_TASKS // spec.batch))
    band_h = max(1, min(own * spec.stride_h, -(-spec.out_h // bands)))
    return 1, band_h, min(spec.in_h, (band_h - 1 + reach) // spec.stride_h + 1) * y_row


def _is_subpixel(spec):
    """Cost model for the sub-pixel form: every output phase meets the same
    taps, more than one (kernel a multiple of a stride > 1, dilation 1), and
    edge blocks add at most 10% of work. It then beats ``Y`` and its gather
    (fcn_up8: 2.7 against 5.8 ms, one core), but not where edge blocks add
    more (dcgan_g2, +27%: 4.8 against 3.4 ms) nor at stride 1 (s1_k3: 5.3
    against 4.4 ms: copying taps into ``A`` costs more than the gather)."""
    blocks = pixels = 1
    for k, s, d, out, pad, size in ((spec.k_h, spec.stride_h, spec.dil_h, spec.out_h, spec.pad_top, spec.in_h),
                                    (spec.k_w, spec.stride_w, spec.dil_w, spec.out_w, spec.pad_left, spec.in_w)):
        if s == 1 or k % s or k == s or d != 1:
            return False
        blocks *= (out - 1 + pad) // s + 1 - pad // s
        pixels *= size
    return spec.stride_h * spec.stride_w * spec.out_c >= 16 and blocks <= 1.1 * pixels


def _subpixel_split(spec, itemsize):
    """(images, band_q, bytes of A and C) for :func:`_subpixel_tasks`: whole
    images per task, or bands of ``band_q`` block rows, keeping ``A`` and
    ``C`` within ``_Y_BYTES`` and giving at least ``_MIN_TASKS`` tasks."""
    blocks_h = (spec.out_h - 1 + spec.pad_top) // spec.stride_h + 1 - spec.pad_top // spec.stride_h
    blocks_w = (spec.out_w - 1 + spec.pad_left) // spec.stride_w + 1 - spec.pad_left // spec.stride_w
    row = blocks_w * (spec.k_h * spec.k_w // (spec.stride_h * spec.stride_w) * spec.in_c
                      + spec.stride_h * spec.stride_w * spec.out_c) * itemsize
    if blocks_h * row <= _Y_BYTES:
        images = max(1, min(_Y_BYTES // (blocks_h * row), -(-spec.batch // _MIN_TASKS)))
        return images, blocks_h, images * blocks_h * row
    bands = max(2, -(-_MIN_TASKS // spec.batch))
    band_q = max(1, min(_Y_BYTES // row, -(-blocks_h // bands)))
    return 1, band_q, band_q * row


def _run_blas(spec, x, filters, out, args):
    """``Y = x @ W`` band by band, ``W`` being ``[KH*KW*C_out, C_in]``: the
    filters as given. ``x`` and ``out`` in ``spec.data_format``."""
    gemm = _blas.gemm(spec.compute_dtype)
    if spec.compute_dtype.kind == "c":  # complex gemm takes alpha and beta by address
        one, zero = np.ones(1, spec.compute_dtype), np.zeros(1, spec.compute_dtype)
        alpha, beta = one.ctypes.data, zero.ctypes.data
    else:
        alpha, beta = 1.0, 0.0
    work = _work(spec, out)
    subpixel, images, band, _ = _split(spec)
    nchw = spec.data_format == "NCHW"
    with _blas.single_threaded():
        if subpixel:
            th, tw = spec.k_h // spec.stride_h, spec.k_w // spec.stride_w
            wp = filters.reshape(th, spec.stride_h, tw, spec.stride_w, spec.out_c, spec.in_c)
            wp = np.ascontiguousarray(wp.transpose(1, 3, 4, 0, 2, 5))  # [r, rx, co, t, tx, ci]
            _launch(_subpixel_tasks, work, x, wp, out, gemm, alpha, beta, images, band, th, tw, nchw, *args)
        else:
            _launch(_blas_tasks, work, x, filters, out, gemm, alpha, beta, images, band, spec.out_c < 16, nchw,
                    *args)


def _tiled_geometry(spec, rows):
    """(band, pad_left, width, copy, bytes) for :func:`_tiled_tasks`: the
    padded row spans every column a tile of ``rows`` pixels reads; ``copy``
    is False where that is the input row itself (NHWC then reads the input
    in place). A task takes ``band`` output rows, for about 4 tasks per core,
    its scratch (those rows' input rows, and for NCHW the band assembled)
    within ``_Y_BYTES`` where one output row's allows; ``bytes`` bounds it."""
    reads = [((ox0 + spec.pad_left - kx * spec.dil_w) // spec.stride_w, -(-nb // rows) * rows)
             for ox0 in range(min(spec.stride_w, spec.out_w)) for kx in range(spec.k_w)
             if (ox0 + spec.pad_left - kx * spec.dil_w) % spec.stride_w == 0
             for nb in [(spec.out_w - ox0 + spec.stride_w - 1) // spec.stride_w]]
    pad_left = max([0] + [-c for c, _ in reads])
    width = pad_left + max([spec.in_w] + [c + pixels for c, pixels in reads])
    item = spec.compute_dtype.itemsize
    in_row, out_row = width * spec.in_c * item, spec.out_w * spec.out_c * item * (spec.data_format == "NCHW")
    fixed = ((spec.k_h - 1) * spec.dil_h // spec.stride_h + 2) * in_row  # an output row's input rows, and slack
    fit = (_Y_BYTES - fixed) // (in_row / spec.stride_h + out_row)
    band = int(max(1, min(spec.out_h, _rows_per_task(spec), fit)))
    input_rows = min(spec.in_h, (band - 1 + (spec.k_h - 1) * spec.dil_h) // spec.stride_h + 1)
    scratch = (input_rows + -(-rows // width)) * in_row + band * out_row
    return band, pad_left, width, width != spec.in_w, scratch


def _use_tiled(spec):
    """Cost model, for a layer BLAS's cost model takes (see :func:`_path`): the
    register-tiled kernel beats BLAS and its gather on layers with 16 or more
    output channels and at least two tiles of pixels
    per row phase (2 cores, ms, tiled against BLAS: s1_k3 2.3 against 2.9,
    fcn_up8 1.7 against 2.3, dcgan_g3 2.1 against 2.4). With fewer output
    channels most lanes idle (dcgan_rgb); with fewer pixels each filter value
    loaded serves too few (dcgan_g2, 8 per phase row: 2.4 against 2.1; 4
    with 512 channels: 5.3 against 2.8)."""
    return spec.out_c >= 16 and _tiled_fits(spec)


def _tiled_fits(spec):
    """Whether the register tile can run the layer: a float dtype, one group,
    at least two tiles of pixels per row phase, task scratch within ``_MAX_TASK_BYTES``."""
    found = _tile.kernel(spec.compute_dtype) if spec.groups == 1 else None
    if found is None:
        return False
    rows = found[1]
    return -(-spec.out_w // spec.stride_w) >= 2 * rows and _tiled_geometry(spec, rows)[4] <= _MAX_TASK_BYTES


def _run_tiled(spec, x, filters, out, args):
    """The register-tiled kernel, if every filter value is finite (zero
    padding is exact then); returns whether it ran."""
    tile, rows, block = _tile.kernel(spec.compute_dtype)
    blocks = -(-spec.out_c // block)
    wp = np.empty((blocks, spec.k_h, spec.k_w, spec.in_c, block), spec.compute_dtype)
    if _launch(_pack, wp.size, filters, wp):
        return False
    band, pad_left, width, copy, _ = _tiled_geometry(spec, rows)
    work = _work(spec, out)
    _launch(_tiled_tasks, work, x, wp, out, tile, rows, band, pad_left, width, copy, spec.data_format == "NCHW",
            *args)
    return True


def _use_dot(spec):
    """Cost model, for a layer BLAS's cost model takes (see :func:`_path`): NHWC layers
    with fewer than 16 output channels run the dot kernel, which needs no ``Y`` and no gather (2 cores, ms, dot against
    BLAS: dcgan_rgb 0.40 against 0.53; 1, 4, 8, 12 and 15 channels, 16-256
    input channels: 0.54-0.99x); NCHW ones keep BLAS, whose GEMM reads NCHW
    in place (the dot kernel wants input channels contiguous)."""
    return spec.data_format == "NHWC" and _dot_fits(spec)


def _dot_fits(spec):
    """Whether the dot kernel can run the layer (NHWC arrays): a float dtype,
    one group, fewer than 16 output channels."""
    return spec.groups == 1 and spec.out_c < 16 and _tile.dot_kernel(spec.compute_dtype, spec.out_c) is not None


# Cost of the direct loops per vector multiply-add, in those of the explicit-vector
# kernels (2 cores, float32, 1-16 channels, kernels 3-5): the loops over pixels pay
# their loop overhead (1 -> 1 and 3 -> 3 channels: about 4x), those over channels far
# more (8 -> 8 channels, kernel 4, stride 2: 7.97 ms, tile 0.87 ms at 1/4 of its lanes).
_DIRECT_PIXELS_COST, _DIRECT_CHANNELS_COST = 4, 32


def _few_channel_path(spec):
    """Cost model for layers BLAS's does not take (fewer than 16 input channels,
    groups, ...): the kernel with the fewest vector multiply-adds, counting the
    lanes each fills. The tile's lanes run over output channels, a block at a
    time; the dot kernel's over input channels, plus a lane sum per output
    value; the direct loops' over pixels (few channels) or channels, at their
    cost above. ``taps`` is the filter taps an output pixel meets on average."""
    lanes = _tile.lanes(spec.compute_dtype) if spec.compute_dtype.kind == "f" else 1
    pixels = spec.batch * spec.out_h * spec.out_w
    taps = max(1.0, spec.k_h * spec.k_w / (spec.stride_h * spec.stride_w))
    cig, cog = spec.in_c // spec.groups, spec.out_c // spec.groups
    loop_cost = _DIRECT_PIXELS_COST if cog < 8 and cig < 16 else _DIRECT_CHANNELS_COST
    costs = {"direct": pixels * taps * spec.in_c * cog / lanes * loop_cost}
    if _tiled_fits(spec):
        block = _tile.kernel(spec.compute_dtype)[2]
        costs["tiled"] = pixels * taps * spec.in_c * -(-spec.out_c // block) * block / lanes
    if _dot_fits(spec):
        costs["dot"] = pixels * spec.out_c * (taps * -(-spec.in_c // lanes) + 1)
    return min(costs, key=costs.get)


def _run_dot(spec, x, filters, out, args):
    """The dot kernel, in full tiles and one pixel at a time."""
    dot, rows = _tile.dot_kernel(spec.compute_dtype, spec.out_c)
    single, _ = _tile.dot_kernel(spec.compute_dtype, spec.out_c, 1)
    work = _work(spec, out)
    band = _rows_per_task(spec)
    _launch(_dot_tasks, work, x, filters, out, dot, rows, single, band, *args)


def _path(spec):
    """Which kernel runs the call: where BLAS's cost model takes the layer,
    "tiled" or "dot" if theirs do too (their kernels beat BLAS there), else
    "blas"; otherwise the cheapest of "direct", "tiled" and "dot"."""
    if not _use_blas(spec):
        return _few_channel_path(spec)
    return "tiled" if _use_tiled(spec) else "dot" if _use_dot(spec) else "blas"


def takes_nchw(spec):
    """Whether :func:`run` takes this NCHW call's arrays as they are: the BLAS
    and tiled paths read and write NCHW in place; for the direct loops and
    the dot kernel, which index NHWC, the api converts."""
    return _path(spec) in ("blas", "tiled")


def run(spec, x, filters, out):
    """Compute the transposed convolution of ``x`` into ``out``.

    Parameters
    ----------
    spec : numba_convt.Spec
        The normalized call.
    x, filters : numpy.ndarray
        C-contiguous input, NHWC or, where :func:`takes_nchw`, in
        ``spec.data_format``; and ``[KH, KW, C_out / G, C_in]`` filters.
    out : numpy.ndarray
        C-contiguous result in the layout of ``x``, every element of which is written.
    """
    if out.size == 0:
        return
    if x.size == 0:
        out[...] = 0
        return
    args = (spec.stride_h, spec.stride_w, spec.dil_h, spec.dil_w, spec.pad_top, spec.pad_left)
    path = _path(spec)
    if path == "dot":
        _run_dot(spec, x, filters, out, args)
    elif path == "tiled" and _run_tiled(spec, x, filters, out, args):
        pass
    elif path != "direct" and _use_blas(spec):  # BLAS, also for tiled layers whose filters are not all finite
        _run_blas(spec, x, filters, out, args)
    elif spec.data_format == "NCHW" and path == "tiled":  # its fallback without BLAS: the direct loops, in NHWC
        result = np.empty(spec.nhwc_output_shape, out.dtype)
        _run_direct(spec, change_layout(x, True, x.dtype), filters, result, args)
        change_layout(result, False, out.dtype, out)
    else:
        _run_direct(spec, x, filters, out, args)


def _run_direct(spec, x, filters, out, args):
    """The direct loops, on NHWC ``x`` and ``out``."""
    g, k_h, k_w = spec.groups, spec.k_h, spec.k_w
    cig, cog = spec.in_c // g, spec.out_c // g
    f = filters.reshape(k_h, k_w, cog, g, cig).transpose(3, 0, 1, 4, 2)  # [G, KH, KW, Cig, Cog]
    form = _F_CO if cog >= 8 else (_F_CI if cig >= 16 else _F_PIX)
    wp = np.ascontiguousarray(f.transpose(0, 1, 2, 4, 3) if form == _F_CI else f)
    work = _work(spec, out)
    _launch(_direct, work, x, wp, out, form, *args, g)
