"""The BLAS path: each task computes ``Y = x @ W`` for the input rows that
reach its output rows with one GEMM, called on the task's own thread (see
``_blas``), then gathers ``Y`` into those rows with the phase loops; or, in
the sub-pixel form, one GEMM over every tap whose result is copied out. Both
read and write NCHW in place.
"""

import numba
import numpy as np
from numba.core import types

from ..._parallel import FLAGS as _FLAGS, build, launch, pointer
from . import _blas
from ._blas import NO_TRANS as _NO_TRANS, ROW_MAJOR as _ROW_MAJOR, TRANS as _TRANS
from ._rows import _flush_row, _input_coord, _input_rows, _out_row, _rows_nhwc, _task_count, _task_span

_NCHW_GEMM_PIXELS = 256  # NCHW images this large get a GEMM each, smaller ones are copied to NHWC first


def _gather_co(y6, i, out_n, nchw, o0, o1, i0, in_h, sh, sw, dh, dw, pt, pl):
    """Output rows ``o0:o1`` of image ``i`` of a task (``out_n``: ``[H, W, C]``,
    or ``[C, H, W]`` if ``nchw``) from ``y6[i, iy - i0, ix, ky, kx, co] =
    x[n, iy, ix] @ filters[ky, kx].T``, which holds every input row they need."""
    y = y6[i]
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


# called through a function pointer, a kernel argument: a call compiles the one gather it runs
_GATHER_CO, _GATHER_PIX = numba.njit(**_FLAGS)(_gather_co), numba.njit(**_FLAGS)(_gather_pix)


@numba.njit(**_FLAGS)  # not inlined: the arrays stay referenced until the call returns
def _gemm(gemm, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """``c = alpha * op(a) @ op(b) + beta * c``, row-major, from the arrays'
    first elements (``op`` transposes when asked)."""
    gemm(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, m, n, k, alpha,
         a.ctypes.data, lda, b.ctypes.data, ldb, beta, c.ctypes.data, ldc)


def _blas_tasks(x, w, out, gather, gemm, alpha, beta, images, band_h, pixels_last, nchw, sh, sw, dh, dw, pt, pl,
                part, parts):
    """Each task takes ``images`` whole images, or ``band_h`` output rows of one
    image: GEMMs on the task's own thread give ``Y`` for the input rows that
    reach them, then ``gather`` (:func:`_gather_pix` if ``pixels_last``, else
    :func:`_gather_co`). Bands share a few input rows, computed by
    both. ``x`` and ``out`` are NHWC, or NCHW if ``nchw``: then each task
    copies its input rows into NHWC order and assembles its output rows
    before storing them plane by plane."""
    batch = x.shape[0]
    in_h, in_w, in_c = (x.shape[2], x.shape[3], x.shape[1]) if nchw else (x.shape[1], x.shape[2], x.shape[3])
    k_h, k_w, cout, _ = w.shape
    out_h = out.shape[2 if nchw else 1]
    cols = k_h * k_w * cout
    tasks = _task_count(batch, images, out_h, band_h)
    for task in range(part * tasks // parts, (part + 1) * tasks // parts):  # this share's tasks
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
        rows = i1 - i0
        y6 = y.reshape(k_h, k_w, cout, m, rows, in_w) if pixels_last else y.reshape(m, rows, in_w, k_h, k_w, cout)
        for i in range(m):
            gather(y6, i, out[n0 + i], nchw, o0, o1, i0, in_h, sh, sw, dh, dw, pt, pl)


@numba.njit(inline="always", **_FLAGS)
def _block_of(row, n0, q_first, q_count, qx_first, qx_count):
    """Image and block coordinates ``(n, q, qx)`` of a row of a sub-pixel task's ``A``."""
    block = row // qx_count
    return n0 + block // q_count, q_first + block % q_count, qx_first + row % qx_count


def _subpixel_tasks(x, wp, out, gemm, alpha, beta, images, band_q, th, tw, nchw, sh, sw, dh, dw, pt, pl, part, parts):
    """Sub-pixel form, for filters whose taps split evenly over the phases
    (see :func:`._cost._is_subpixel`). Output pixel ``(q*sh + r - pt, qx*sw + rx - pl)``
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
    tasks = _task_count(batch, images, bh, band_q)
    for task in range(part * tasks // parts, (part + 1) * tasks // parts):  # this share's tasks
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


_BLAS, _SUBPIXEL = build(_blas_tasks), build(_subpixel_tasks)


def _run_blas(plan, x, filters, out):
    """``Y = x @ W`` band by band, ``W`` being ``[KH*KW*C_out, C_in]``: the
    filters as given; ``plan.split`` is ``(sub-pixel form?, images, band,
    GEMMs alone?)``: if alone, the tasks run one after another on this
    thread and OpenBLAS runs each GEMM on Numba's thread count, else each
    task's GEMM on its own thread. ``x`` and ``out`` in ``spec.data_format``."""
    spec, (subpixel, images, band, alone) = plan.spec, plan.split
    gemm = _blas.gemm(spec.compute_dtype)
    if spec.compute_dtype.kind == "c":  # complex gemm takes alpha and beta by address
        one, zero = np.ones(1, spec.compute_dtype), np.zeros(1, spec.compute_dtype)
        alpha, beta = one.ctypes.data, zero.ctypes.data
    else:
        alpha, beta = 1.0, 0.0
    nchw = spec.data_format == "NCHW"
    work = 0 if alone else plan.work  # no work: launch runs the kernel whole on this thread
    with _blas.threads(numba.get_num_threads() if alone else 1):
        if subpixel:
            th, tw = spec.k_h // spec.stride_h, spec.k_w // spec.stride_w
            wp = filters.reshape(th, spec.stride_h, tw, spec.stride_w, spec.out_c, spec.in_c)
            wp = np.ascontiguousarray(wp.transpose(1, 3, 4, 0, 2, 5))  # [r, rx, co, t, tx, ci]
            launch(_SUBPIXEL, work, x, wp, out, gemm, alpha, beta, images, band, th, tw, nchw, *plan.args)
        else:
            pixels_last = spec.out_c < 16
            gather = pointer(_GATHER_PIX if pixels_last else _GATHER_CO, _gather_types, out)
            launch(_BLAS, work, x, filters, out, gather, gemm, alpha, beta, images, band, pixels_last, nchw,
                   *plan.args)


def _gather_types(out):
    """The Numba types of a gather's arguments in :func:`_blas_tasks`."""
    out_type, int64 = numba.typeof(out), types.int64
    return out_type.copy(ndim=6, layout="C"), int64, out_type.copy(ndim=3), types.boolean, *[int64] * 10
