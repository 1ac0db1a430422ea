"""Index helpers the kernels share: a task's images and rows, the input rows
they reach, NCHW rows copied to NHWC, and the taps of a row phase. All are
inlined into the kernels that call them.
"""

import math

import numba
import numpy as np

from ..._geometry import first_tap, input_coord
from ..._parallel import FLAGS as _FLAGS

_input_coord = numba.njit(inline="always", **_FLAGS)(input_coord)
_first_tap = numba.njit(inline="always", **_FLAGS)(first_tap)


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
        else:  # element by element: copying a slice from an array compiles Numba's shape check (~3.5 s)
            src = x[n, i0 + r]
            for j in range(in_w):
                for c in range(in_c):
                    row[pad_left + j, c] = src[j, c]
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
