"""The dot kernel, for few output channels (NHWC): ``_tile``'s ``dot`` gives
a few pixels of a row phase all their channels, as vectors of partial sums
over input channels, reading the input in place. A group is a sub-problem:
its input channels and filters a ``C_in/G``-deep slice of each pixel's and
filter's ``C_in``, its output channels a slice of the row.
"""

import numba
import numpy as np

from ..._parallel import FLAGS as _FLAGS, build, launch
from . import _tile
from ._rows import _phase_taps, _task_count, _task_span


def _dot_tasks(x, f, out, dot, rows, single, band, sh, sw, dh, dw, pt, pl, part, parts):
    """Direct kernel for few output channels (NHWC): :mod:`_tile`'s dot
    kernel gives ``rows`` pixels of one column phase all ``C_out/G`` channels
    of a group, each a vector of partial dot products over the group's input
    channels, summed over the phase's taps, reading ``x`` in place; pixels at
    the row's edges, where some taps fall outside, go one at a time
    (``single``). A task takes ``band`` output rows of one image. ``f`` is
    the filters as given, ``[KH, KW, C_out/G, C_in]``."""
    batch, out_h = x.shape[0], out.shape[1]
    tasks = _task_count(batch, 1, out_h, band)
    for task in range(part * tasks // parts, (part + 1) * tasks // parts):  # this share's tasks
        n, _, o0, o1 = _task_span(task, batch, 1, out_h, band)
        taps = f.shape[0] * f.shape[1]
        found, scratch = np.empty((taps, 3), np.int64), np.empty((4, taps), np.int64)
        for oy in range(o0, o1):
            _dot_row(dot, rows, single, x, f, out[n, oy], found, scratch, n, oy, sh, sw, dh, dw, pt, pl)


@numba.njit(**_FLAGS)  # not inlined: the arrays stay referenced while the kernels have their addresses
def _dot_row(dot, rows, single, x, f, orow, found, scratch, n, oy, sh, sw, dh, dw, pt, pl):
    """Output row ``orow`` (``[W, C_out]``) of image ``n`` for :func:`_dot_tasks`;
    ``found`` and ``scratch`` hold the taps and the kernels' offsets, the
    same for every group (the group moves the base pointers)."""
    _, in_h, in_w, in_c = x.shape
    k_h, k_w, cog, _ = f.shape
    out_w, cout = orow.shape
    groups = cout // cog
    cig, size = in_c // groups, x.itemsize
    a_off, b_off, edge_a, edge_b = scratch[0], scratch[1], scratch[2], scratch[3]
    for ox0 in range(min(sw, out_w)):
        taps = _phase_taps(oy, ox0, in_h, k_h, k_w, sh, sw, dh, dw, pt, pl, found)
        nb = (out_w - ox0 + sw - 1) // sw
        lo, hi = 0, nb  # narrowed to the pixels every tap reaches
        for t in range(taps):
            c = found[t, 1]
            a_off[t] = ((n * in_h + found[t, 0]) * in_w + c) * in_c
            b_off[t] = found[t, 2] * cog * in_c
            lo, hi = max(lo, -c), min(hi, in_w - c)
        tiled = hi - lo >= rows  # pixels lo:hi meet every tap: tiles, the last one ending at hi
        for i in range(lo, hi if tiled else lo, rows):
            j = min(i, hi - rows)
            for g in range(groups):
                dot(x.ctypes.data + (j * in_c + g * cig) * size, a_off.ctypes.data, b_off.ctypes.data, taps, cig,
                    in_c, f.ctypes.data + g * cig * size, in_c, orow[ox0 + sw * j:].ctypes.data + g * cog * size,
                    sw * cout)
        for j in range(nb):  # the rest, each with the taps in range
            if tiled and lo <= j < hi:
                continue
            kept = 0
            for t in range(taps):
                if 0 <= j + found[t, 1] < in_w:
                    edge_a[kept], edge_b[kept] = a_off[t], b_off[t]
                    kept += 1
            for g in range(groups):
                single(x.ctypes.data + (j * in_c + g * cig) * size, edge_a.ctypes.data, edge_b.ctypes.data, kept,
                       cig, in_c, f.ctypes.data + g * cig * size, in_c,
                       orow[ox0 + sw * j:].ctypes.data + g * cog * size, sw * cout)


_DOT = build(_dot_tasks)


def _run_dot(plan, x, filters, out):
    """The dot kernel, in full tiles and one pixel at a time; ``plan.split`` is ``(band,)``."""
    spec, (band,) = plan.spec, plan.split
    cog = spec.out_c // spec.groups
    dot, rows = _tile.dot_kernel(spec.compute_dtype, cog)
    single, _ = _tile.dot_kernel(spec.compute_dtype, cog, 1)
    launch(_DOT, plan.work, x, filters, out, dot, rows, single, band, *plan.args)
