"""The cost model: which kernel runs a layer (:func:`_path`), and how each
path splits its work into tasks. It reads the spec and the machine (core
count, vector width, NumPy's OpenBLAS), never the thread count: results do
not depend on it.
"""

import math

import numba

from . import _blas, _tile

# Bound on a task's Y, ~L2: larger GEMMs run faster (M=64 rows: 108 GFLOP/s,
# 512: 170, one core) until Y spills out of L2.
_Y_BYTES = 1 << 21
_MAX_TASK_BYTES = 1 << 26  # beyond, a task's scratch is too large: direct loops instead
_MIN_TASKS = numba.config.NUMBA_DEFAULT_NUM_THREADS  # the machine's cores, whatever set_num_threads says


def _path(spec):
    """Which kernel runs the call: where BLAS's cost model takes the layer,
    "tiled" or "dot" if theirs do too (their kernels beat BLAS there), else
    "blas"; otherwise the cheapest of "direct", "tiled" and "dot"."""
    if not _use_blas(spec):
        return _few_channel_path(spec)
    return "tiled" if _use_tiled(spec) else "dot" if _use_dot(spec) else "blas"


def _use_blas(spec):
    """Cost model: BLAS pays when a ``C_in``-deep product per value of ``Y``
    beats the extra pass over ``Y`` (``KH*KW*C_out`` values per input pixel),
    and a task's scratch stays within ``_MAX_TASK_BYTES`` (the direct loops
    need none: very wide rows with large kernels go there). Below 64 input
    pixels a task's GEMM has too few rows to run near its peak: there BLAS
    must cost less than the best of the other kernels (:func:`_gemm_cost`)."""
    if not (_blas.gemm(spec.compute_dtype) is not None and spec.groups == 1 and spec.in_c >= 16
            and _split(spec)[3] <= _MAX_TASK_BYTES):
        return False
    return spec.batch * spec.in_h * spec.in_w >= 64 or _gemm_cost(spec) < min(_few_channel_costs(spec).values())


# OpenBLAS's GEMM, one thread, on this project's machine (K = 16-512, N = 256-3200): ~100
# GFLOP/s with many rows, about M / (M + 24) of that with M rows (M = 2: 5, 4: 10-13, 16: 39,
# 32: 56, 64: 72, 256: 94), against the tile's 165-185: a multiply-add in a GEMM of M rows
# costs 1.7 * (M + 24) / M of the tile's; a one-row GEMM runs as a GEMV, 17-27 GFLOP/s: 8.
# The gather loads and adds each value of Y once: 2. A BLAS call costs ~20 us on a layer of
# next to no work (16-24 us on 1-60 pixels, 2 cores; the direct loops' few us are within
# their estimate's error): at the tile's ~5.5e9 vector multiply-adds a second, 110000.
_GEMM_COST, _GEMM_HALF_ROWS, _GEMV_COST, _GATHER_COST, _BLAS_CALL_COST = 1.7, 24, 8, 2, 110_000


def _gemm_cost(spec):
    """BLAS's cost, in the vector multiply-adds of :func:`_few_channel_path`:
    its fixed cost, ``Y``'s ``C_in``-deep products at the GEMM's rate for a
    task's rows (the rows its ``Y`` holds), and the gather's pass over ``Y``."""
    lanes = _counts(spec)[0]
    y_row = spec.k_h * spec.k_w * spec.out_c
    rows = max(1, min(spec.batch * spec.in_h * spec.in_w, _split(spec)[3] // (y_row * spec.compute_dtype.itemsize)))
    rate = _GEMV_COST if rows == 1 else _GEMM_COST * (rows + _GEMM_HALF_ROWS) / rows
    y = spec.batch * spec.in_h * spec.in_w * y_row / lanes
    return _BLAS_CALL_COST + y * (spec.in_c * rate + _GATHER_COST)


def _split(spec):
    """(sub-pixel form?, images, band, scratch bytes) of a BLAS task."""
    subpixel = _is_subpixel(spec)
    return (subpixel, *(_subpixel_split if subpixel else _tasks)(spec, spec.compute_dtype.itemsize))


def _gemms_alone(spec):
    """Whether the BLAS path's split gives fewer tasks than the machine has
    cores (a small batch of small images): the tasks then run one after
    another, each GEMM on every thread (OpenBLAS splits its columns), not
    each task's GEMM on one thread with the others idle ([1, 8, 8, 512] ->
    256 channels, k3: 2.14 -> 1.39 ms, 2 cores)."""
    subpixel, images, band, _ = _split(spec)
    rows = _block_rows(spec)[0] if subpixel else spec.out_h
    return -(-spec.batch // images) * -(-rows // band) < _MIN_TASKS


def _block_rows(spec):
    """(rows, columns) of the sub-pixel form's blocks: the output's, divided by the strides."""
    return tuple((out - 1 + pad) // s + 1 - pad // s for out, pad, s in
                 ((spec.out_h, spec.pad_top, spec.stride_h), (spec.out_w, spec.pad_left, spec.stride_w)))


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
    """(images, band_q, bytes of A and C) for :func:`._gemm._subpixel_tasks`: whole
    images per task, or bands of ``band_q`` block rows, keeping ``A`` and
    ``C`` within ``_Y_BYTES`` and giving at least ``_MIN_TASKS`` tasks."""
    blocks_h, blocks_w = _block_rows(spec)
    row = blocks_w * (spec.k_h * spec.k_w // (spec.stride_h * spec.stride_w) * spec.in_c
                      + spec.stride_h * spec.stride_w * spec.out_c) * itemsize
    if blocks_h * row <= _Y_BYTES:
        images = max(1, min(_Y_BYTES // (blocks_h * row), -(-spec.batch // _MIN_TASKS)))
        return images, blocks_h, images * blocks_h * row
    bands = max(2, -(-_MIN_TASKS // spec.batch))
    band_q = max(1, min(_Y_BYTES // row, -(-blocks_h // bands)))
    return 1, band_q, band_q * row


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


def _tile_kernel(spec):
    """The register tile for the layer's dtype and output channels per group
    (:func:`._tile.kernel_for`): ``(tile, ROWS, WIDTH)``, or None."""
    return _tile.kernel_for(spec.compute_dtype, spec.out_c // spec.groups)


def _tiled_fits(spec):
    """Whether the register tile can run the layer: a float dtype, at least
    two tiles of pixels per row phase, task scratch within ``_MAX_TASK_BYTES``."""
    found = _tile_kernel(spec)
    if found is None:
        return False
    rows = found[1]
    return -(-spec.out_w // spec.stride_w) >= 2 * rows and _tiled_geometry(spec, rows)[4] <= _MAX_TASK_BYTES


def _tiled_geometry(spec, rows):
    """(band, pad_left, width, copy, bytes) for :func:`._tiled._tiled_tasks`: the
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


def _use_dot(spec):
    """Cost model, for a layer BLAS's cost model takes (see :func:`_path`): NHWC layers
    with fewer than 16 output channels run the dot kernel, which needs no ``Y`` and no gather (2 cores, ms, dot against
    BLAS: dcgan_rgb 0.40 against 0.53; 1, 4, 8, 12 and 15 channels, 16-256
    input channels: 0.54-0.99x); NCHW ones keep BLAS, whose GEMM reads NCHW
    in place (the dot kernel wants input channels contiguous)."""
    return spec.data_format == "NHWC" and _dot_fits(spec)


def _dot_fits(spec):
    """Whether the dot kernel can run the layer (NHWC arrays): a float dtype,
    fewer than 16 output channels per group (its accumulators, one per
    channel and pixel, stay in registers)."""
    cog = spec.out_c // spec.groups
    return cog < 16 and _tile.dot_kernel(spec.compute_dtype, cog) is not None


# Cost of the direct loops per vector multiply-add, in those of the explicit-vector
# kernels (2 cores, float32, 1-16 channels, kernels 3-5): the loops over pixels pay
# their loop overhead (1 -> 1 and 3 -> 3 channels: about 4x), those over channels far
# more (8 -> 8 channels, kernel 4, stride 2: 7.97 ms, tile 0.87 ms at 1/4 of its lanes).
_DIRECT_PIXELS_COST, _DIRECT_CHANNELS_COST = 4, 32
# The loops over groups (``_direct._direct_groups``) read three vectors from L1 per
# multiply-add (the sum, the input, the filter) and write one back; Zen 4 loads two
# and stores one 32-byte half per cycle, so a 512-bit one takes 3 cycles where the
# tile's, from registers, takes one: 3. Measured once (one thread, float32, depthwise
# 3x3 on [4, 32, 32, 64]: 1.9 ns per vector, the tile 0.3-0.6 ns): 3-6.
_DIRECT_GROUPS_COST = 3


def _few_channel_path(spec):
    """Cost model for layers BLAS's does not take (fewer than 16 input channels,
    groups, ...): the kernel with the fewest vector multiply-adds, counting the
    lanes each fills. Every kernel runs a group as a sub-problem of ``cig``
    input by ``cog`` output channels, so the counts are per group, times
    ``G``. The tile's lanes run over a group's output channels, a block at a
    time (``ceil(cog/block)*block`` lanes per input channel, the rest
    multiplying zeros); the dot kernel's over a group's input channels
    (``ceil(cig/lanes)`` vectors per tap), plus a lane sum per output value;
    the direct loops' over pixels (few channels), channels or, for many
    groups of few channels, groups (:func:`_direct_costs`), at their costs
    above. ``taps`` is the filter taps an output pixel meets on average.
    Depthwise layers (``cig == cog == 1``) fill one lane of each of the
    vector kernels' operations, the direct loops' over groups all: they go
    there (measured, one thread, 8-128 groups: 2-7x faster than the loops
    over pixels, which took them before, and than the dot kernel). Groups of
    8 -> 8 channels run 3-5x faster on the dot kernel than on the loops,
    of 32 -> 32 2.7x on the tile."""
    costs = _few_channel_costs(spec)
    return min(costs, key=costs.get)


def _few_channel_costs(spec):
    """The costs :func:`_few_channel_path` compares, by path."""
    lanes, pixels, taps = _counts(spec)
    cig, cog = spec.in_c // spec.groups, spec.out_c // spec.groups
    costs = {"direct": min(_direct_costs(spec))}
    if _tiled_fits(spec):
        block = _tile_kernel(spec)[2]
        costs["tiled"] = pixels * taps * spec.in_c * -(-cog // block) * block / lanes
    if _dot_fits(spec):
        costs["dot"] = pixels * spec.out_c * (taps * -(-cig // lanes) + 1)
    return costs


def _counts(spec):
    """(lanes of a float vector, 1 for other dtypes; output pixels; the filter
    taps an output pixel meets on average: fewer than one where the kernel is
    smaller than the stride, whose other pixels are only zeroed)."""
    lanes = _tile.lanes(spec.compute_dtype) if spec.compute_dtype.kind == "f" else 1
    taps = spec.k_h * spec.k_w / (spec.stride_h * spec.stride_w)
    return lanes, spec.batch * spec.out_h * spec.out_w, taps


def _direct_costs(spec):
    """(cost of the direct loops over pixels or channels, of those over groups).

    Both do ``cig * cog`` multiply-adds per group, pixel and tap. The loops
    over groups take 8 or more groups of at most 4 -> 4 channels (infinite
    cost otherwise); their lanes run over the groups of a block of
    neighbouring pixels (at least 512 values), so every lane is filled but
    at a row's end: ``G * cog / lanes`` vectors per pixel, tap and input
    channel of a group, at ``_DIRECT_GROUPS_COST``."""
    lanes, pixels, taps = _counts(spec)
    cig, cog = spec.in_c // spec.groups, spec.out_c // spec.groups
    loop_cost = _DIRECT_PIXELS_COST if cog < 8 and cig < 16 else _DIRECT_CHANNELS_COST
    channels = pixels * taps * spec.in_c * cog / lanes * loop_cost
    if spec.groups < 8 or cig > 4 or cog > 4:
        return channels, math.inf
    return channels, pixels * taps * cig * spec.groups * cog / lanes * _DIRECT_GROUPS_COST


def _direct_over_groups(spec):
    """Whether the direct loops run their form over groups (``_direct._form``)."""
    channels, groups = _direct_costs(spec)
    return groups < channels


def _work(spec):
    """About how many multiply-adds the call does: what picks serial or parallel."""
    return math.prod(spec.output_shape) * max(
        1, spec.k_h * spec.k_w * (spec.in_c // spec.groups) // (spec.stride_h * spec.stride_w))


def _rows_per_task(spec):
    """Output rows per task for about 4 tasks per core (balance against start-up)."""
    return max(1, -(-spec.batch * spec.out_h // (4 * _MIN_TASKS)))
