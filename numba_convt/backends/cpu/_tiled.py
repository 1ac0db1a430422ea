"""The register-tiled kernel: ``_tile``'s ``tile`` sums every tap of a row
phase into a tile of output pixels by a block of output channels, reading
zero-padded input rows; NHWC, or NCHW in place. A group is a sub-problem:
its input channels are a ``C_in/G``-deep slice of each pixel's ``C_in``
(the kernel's depth and row step differ), its output channels a slice of
the row, its filters packed apart.
"""

import numba
import numpy as np

from ..._parallel import FLAGS as _FLAGS, build, launch
from . import _cost
from ._rows import _by_phase, _flush_row, _input_rows, _out_row, _padded_rows, _phase_taps, _task_count, _task_span


def _tiled_tasks(x, wp, out, tile, rows, band, pad_left, width, copy, nchw, sh, sw, dh, dw, pt, pl, part, parts):
    """Register-tiled direct kernel: :mod:`_tile` computes ``rows`` output
    pixels of one column phase (``ox = ox0 + sw*j``, consecutive ``j``) by a
    block of ``wp.shape[-1]`` output channels of one group, summing over the
    phase's taps and the group's input channels. A task takes a band of
    ``band`` output rows of one image, and copies the input rows they reach
    into a zero-padded buffer, so every tap of a phase is in range for every
    pixel (exact for finite filters: ``0 * w == 0``); NHWC rows that need no
    padding are read in place unless ``copy``. ``wp`` is ``[G, blocks, KH,
    KW, C_in/G, block]``, zero beyond ``C_out/G``. ``x`` and ``out`` are
    NHWC, or NCHW if ``nchw``: then the band is assembled NHWC first."""
    batch = x.shape[0]
    in_h = x.shape[2] if nchw else x.shape[1]
    out_h, out_w, cout = (out.shape[2], out.shape[3], out.shape[1]) if nchw else (out.shape[1], out.shape[2], out.shape[3])
    groups, blocks, k_h, k_w, cig, block = wp.shape
    cog = cout // groups
    tasks = _task_count(batch, 1, out_h, band)
    for task in range(part * tasks // parts, (part + 1) * tasks // parts):  # this share's tasks
        n, _, o0, o1 = _task_span(task, batch, 1, out_h, band)
        i0, i1 = _input_rows(o0, o1, in_h, k_h, sh, dh, pt)
        if copy or nchw:
            xs = _padded_rows(x, n, i0, max(i0, i1), pad_left, width, rows, nchw)
        else:
            xs = x[n, i0:]
        assembled = np.empty((o1 - o0, out_w if nchw else 0, cout), out.dtype)
        found, offsets = np.empty((k_h * k_w, 3), np.int64), np.empty((2, k_h * k_w), np.int64)
        order = _by_phase(o0, o1, sh)
        for gb in range(groups * blocks):  # each block's filters serve every row of the band while in cache
            g, b = gb // blocks, gb % blocks
            c0 = g * cog + b * block
            for ox0 in range(min(sw, out_w)):
                for oy in order:
                    orow = _out_row(out[n], oy, assembled[oy - o0], nchw)
                    _tiled_phase(tile, rows, xs, g * cig, wp[g, b], orow[ox0:, c0:(g + 1) * cog], found, offsets[0],
                                 offsets[1], oy - sh * i0, ox0, in_h - i0, pad_left, width, sh, sw, dh, dw, pt, pl)
        for oy in range(o0, o1):
            _flush_row(out[n], oy, assembled[oy - o0], nchw)


@numba.njit(**_FLAGS)  # not inlined: the arrays stay referenced while the kernel has their addresses
def _tiled_phase(tile, rows, xs, ci0, w, dest, found, xoff, woff, oy, ox0, in_h, pad_left, width, sh, sw, dh, dw,
                 pt, pl):
    """Columns ``ox0 + sw*j`` of an output row of :func:`_tiled_tasks`, for one
    block of one group's channels: ``dest[sw*j, :block]``. ``xs`` holds the
    padded input rows, in which the output row is row ``oy`` and the input
    ``in_h`` rows tall; the group's input channels start at ``ci0`` and ``w``
    is the block's filters. ``found``, ``xoff`` and ``woff`` are scratch for
    the taps and the kernel's offsets."""
    k_h, k_w, depth, block = w.shape
    in_c = xs.shape[-1]
    taps = _phase_taps(oy, ox0, in_h, k_h, k_w, sh, sw, dh, dw, pt, pl, found)
    for t in range(taps):
        xoff[t] = (found[t, 0] * width + pad_left + found[t, 1]) * in_c + ci0
        woff[t] = found[t, 2] * depth * block
    nb, cols = (dest.shape[0] + sw - 1) // sw, min(block, dest.shape[1])
    ldc, size = dest.strides[0] // dest.itemsize * sw, dest.itemsize
    for j in range(0, nb, rows):
        tile(xs.ctypes.data + j * in_c * size, xoff.ctypes.data, woff.ctypes.data, taps, depth, in_c, w.ctypes.data,
             dest[sw * j:].ctypes.data, ldc, nb - j, cols)


def _packed(filters, groups, block, dtype):
    """``wp[g, b, ky, kx, ci, j] = filters[ky, kx, b*block + j, g*cig + ci]``,
    zero past ``C_out/G``: each block of output channels contiguous for the
    tile. (NumPy's strided copy runs within ~20% of a compiled one here, and
    a compiled one cost 0.4 s of every cold process.)"""
    k_h, k_w, cog, cin = filters.shape
    blocks = -(-cog // block)
    src = filters.reshape(k_h, k_w, cog, groups, cin // groups)
    if blocks * block != cog:
        src = np.concatenate([src, np.zeros((k_h, k_w, blocks * block - cog, groups, cin // groups), src.dtype)], 2)
    return np.ascontiguousarray(src.reshape(k_h, k_w, blocks, block, groups, -1).transpose(4, 2, 0, 1, 5, 3), dtype)


_TILED = build(_tiled_tasks)


def _run_tiled(plan, x, filters, out):
    """The register-tiled kernel, if every filter value is finite (zero
    padding is exact then); returns whether it ran. ``plan.split`` is
    ``(band, pad_left, width, copy)``."""
    spec, (band, pad_left, width, copy) = plan.spec, plan.split
    # a NaN or inf anywhere makes the sum so; finite float32 values cannot overflow it (float64 ones
    # near the largest may: that layer then takes another path, as for inf)
    if not np.isfinite(filters.sum(dtype=np.float64)):
        return False
    tile, rows, block = _cost._tile_kernel(spec)
    wp = _packed(filters, spec.groups, block, spec.compute_dtype)
    launch(_TILED, plan.work, x, wp, out, tile, rows, band, pad_left, width, copy, spec.data_format == "NCHW",
           *plan.args)
    return True
