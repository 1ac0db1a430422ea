"""Backend ``"cpu"``: phase-decomposed Numba kernels, plus a BLAS path.

Output row ``(n, oy)`` only meets filter rows ``ky`` with
``(oy + pad_top - ky*dil_h) % stride_h == 0`` and, within the row, output
columns of one phase ``ox = ox0 + stride_w*b`` only meet the filter columns
``kx`` of that phase, at input column ``b + c(kx)``. So every kernel loops
over (row, column phase, valid taps) with no modulo test and no product with
an inserted zero, accumulates a row in a small buffer, and writes each output
element from one thread in a fixed order of summation: results are bitwise
identical for any thread count.

Float and complex layers with at least 16 input channels multiply bands of
input rows by all taps at once with NumPy's BLAS, ``Y = x @ W`` (``W`` is
``[C_in, KH*KW*C_out]``), and gather ``Y`` into the output with the same phase
loops. NumPy's ``matmul`` is called from Python, outside any ``prange``:
``np.dot`` inside Numba would need SciPy. BLAS threads split rows and
columns of ``Y``, never its sums, so they are deterministic too. The gathers
run serially: a Numba thread pool alternating with BLAS's still-spinning one
on 2 cores cost 10-50x (measured). Everything else runs direct loops.
"""

import types

import numba
import numpy as np

from .._geometry import input_coord

# The JIT options, in one place. ``fastmath`` is limited to "contract" (fused
# multiply-add) and "reassoc" (lets LLVM vectorize the dot product of _F_CI):
# both change rounding only, deterministically (the same machine code runs
# for any thread count), and keep NaN/inf semantics.
_FLAGS = dict(cache=True, nogil=True, fastmath={"contract", "reassoc"}, error_model="numpy", boundscheck=False)
_F_CO, _F_CI, _F_PIX = 0, 1, 2  # inner loop over output channels, input channels, pixels
_SERIAL_WORK = 1 << 17  # multiply-adds below which thread start-up costs more than it buys
# Bound on Y, ~L2. Over 10% of some outputs, on purpose: dcgan_rgb took 0.47 ms
# with Y for all 8 images (1.5 MB) against 0.58 ms one image (196 kB) at a time.
_Y_BYTES = 1 << 21
_input_coord = numba.njit(inline="always", **_FLAGS)(input_coord)


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
        xrow = np.empty(in_w, x.dtype)
        for g in range(groups):
            c0 = g * cig
            for ox0 in range(min(sw, out_w)):
                nb = (out_w - ox0 + sw - 1) // sw
                acc[:] = 0
                for ky in range(k_h):
                    iy = _input_coord(oy, ky, pt, sh, dh, in_h)
                    if iy < 0:
                        continue
                    for ci in range(cig if form == _F_PIX else 1):
                        if form == _F_PIX:  # one contiguous input row per channel
                            for j in range(in_w):
                                xrow[j] = x[n, iy, j, c0 + ci]
                        for kx in range(k_w):
                            tx = ox0 + pl - kx * dw
                            c = tx // sw  # floor division: may be negative
                            if c * sw != tx:
                                continue
                            b0, b1 = max(0, -c), min(nb, in_w - c)
                            w = wp[g, ky, kx]
                            if form == _F_PIX:
                                xs = xrow[b0 + c:b1 + c]
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
def _row_span(oy, k_h, pt, sh, dh, in_h, r0, r1):
    """Whether ``Y`` rows ``r0:r1`` touch output row ``oy``, and whether they
    are its first contributions (else the gather adds to what is there).
    Rows nothing touches are zeroed with the first band."""
    lo, hi = in_h, -1
    for ky in range(k_h):
        iy = _input_coord(oy, ky, pt, sh, dh, in_h)
        if iy >= 0:
            lo, hi = min(lo, iy), max(hi, iy)
    if hi < 0:
        return r0 == 0, True
    return lo < r1 and hi >= r0, lo >= r0


def _gather_co(y, out, n, r0, in_h, sh, sw, dh, dw, pt, pl):
    """Add ``y[iy - r0, ix, ky, kx, co] = x[n, iy, ix] @ filters[ky, kx].T`` into ``out[n]``."""
    rows, in_w, k_h, k_w, cout = y.shape
    _, out_h, out_w, _ = out.shape
    acc = np.empty(((out_w + sw - 1) // sw, cout), out.dtype)
    for oy in range(out_h):
        touched, fresh = _row_span(oy, k_h, pt, sh, dh, in_h, r0, r0 + rows)
        if not touched:
            continue
        orow = out[n, oy]
        for ox0 in range(min(sw, out_w)):
            nb = (out_w - ox0 + sw - 1) // sw
            for b in range(nb):
                ab, ov = acc[b], orow[ox0 + sw * b]
                for co in range(cout):
                    ab[co] = 0 if fresh else ov[co]
            for ky in range(k_h):
                iy = _input_coord(oy, ky, pt, sh, dh, in_h) - r0
                if iy < 0 or iy >= rows:
                    continue
                for kx in range(k_w):
                    tx = ox0 + pl - kx * dw
                    c = tx // sw
                    if c * sw != tx:
                        continue
                    for b in range(max(0, -c), min(nb, in_w - c)):
                        yv, ab = y[iy, b + c, ky, kx], acc[b]
                        for co in range(cout):
                            ab[co] += yv[co]
            for b in range(nb):
                ov, ab = orow[ox0 + sw * b], acc[b]
                for co in range(cout):
                    ov[co] = ab[co]


def _gather_pix(yt, i, out, n, r0, in_h, sh, sw, dh, dw, pt, pl):
    """As :func:`_gather_co` from ``yt[ky, kx, co, i, iy - r0, ix]``: pixels
    contiguous, so the adds vectorize over pixels when ``C_out`` is small."""
    k_h, k_w, cout, _, rows, in_w = yt.shape
    _, out_h, out_w, _ = out.shape
    nbmax = (out_w + sw - 1) // sw
    acc = np.empty((sw, cout, nbmax), out.dtype)
    for oy in range(out_h):
        touched, fresh = _row_span(oy, k_h, pt, sh, dh, in_h, r0, r0 + rows)
        if not touched:
            continue
        orow = out[n, oy]
        for ox0 in range(min(sw, out_w)):
            for co in range(cout):
                a_ = acc[ox0, co]
                for b in range((out_w - ox0 + sw - 1) // sw):
                    a_[b] = 0 if fresh else orow[ox0 + sw * b, co]
        for ky in range(k_h):
            iy = _input_coord(oy, ky, pt, sh, dh, in_h) - r0
            if iy < 0 or iy >= rows:
                continue
            for kx in range(k_w):
                ox0 = (kx * dw - pl) % sw
                c = (ox0 + pl - kx * dw) // sw
                b0, b1 = max(0, -c), min((out_w - ox0 + sw - 1) // sw, in_w - c)
                for co in range(cout):
                    ys, ac = yt[ky, kx, co, i, iy, b0 + c:b1 + c], acc[ox0, co, b0:b1]
                    for j in range(b1 - b0):
                        ac[j] += ys[j]
        for ox0 in range(min(sw, out_w)):
            for co in range(cout):
                a_ = acc[ox0, co]
                for b in range((out_w - ox0 + sw - 1) // sw):
                    orow[ox0 + sw * b, co] = a_[b]


def _compiled(function, name, **options):
    """``function`` compiled under its own ``name``. Numba's on-disk cache is
    keyed by qualified name and ignores ``parallel``, so a serial and a
    parallel build of one function would load each other's machine code."""
    clone = types.FunctionType(function.__code__, function.__globals__, name)
    clone.__qualname__ = name
    return numba.njit(**_FLAGS, **options)(clone)


_direct_parallel = _compiled(_direct, "_direct_parallel", parallel=True)
_direct_serial = _compiled(_direct, "_direct_serial")
_gather_co_kernel = numba.njit(**_FLAGS)(_gather_co)
_gather_pix_kernel = numba.njit(**_FLAGS)(_gather_pix)


def _use_blas(spec):
    """Cost model: BLAS pays when a ``C_in``-deep product per value of ``Y``
    beats the extra pass over ``Y`` (``KH*KW*C_out`` values per input pixel)."""
    blas = spec.compute_dtype.kind in "fc"
    return blas and spec.groups == 1 and spec.in_c >= 16 and spec.batch * spec.in_h * spec.in_w >= 64


def _is_pixel_shuffle(spec):
    """Kernel == stride, no padding, no overlap: each output pixel is exactly one tap."""
    return (
        (spec.k_h, spec.k_w, spec.dil_h, spec.dil_w, spec.pad_top, spec.pad_left)
        == (spec.stride_h, spec.stride_w, 1, 1, 0, 0)
        and (spec.out_h, spec.out_w) == (spec.in_h * spec.stride_h, spec.in_w * spec.stride_w)
    )


def _run_blas(spec, x, filters, out, args):
    """``Y`` for bands of input rows (several whole images when they fit in
    ``_Y_BYTES``), each gathered into ``out`` before the next is computed."""
    batch, in_h, in_w, in_c = x.shape
    cols = spec.k_h * spec.k_w * spec.out_c
    w = filters.reshape(cols, in_c)  # [KH*KW*C_out, C_in]
    rows = max(1, min(in_h, _Y_BYTES // (in_w * cols * out.itemsize)))
    images = max(1, min(batch, _Y_BYTES // (in_h * in_w * cols * out.itemsize)))
    buffer = np.empty(images * rows * in_w * cols, out.dtype)
    pixels_last = spec.out_c < 16  # few channels: vectorize the gather over pixels
    shuffle = not pixels_last and _is_pixel_shuffle(spec)
    if shuffle:  # out as [N, H_in, stride_h, W_in, stride_w * C_out] tiles
        tiles = out.reshape(batch, in_h, spec.stride_h, in_w, spec.stride_w * spec.out_c)
    for n0 in range(0, batch, images):
        m = min(images, batch - n0)
        for r0 in range(0, in_h, rows):
            xs = x[n0:n0 + m, r0:r0 + rows]
            shape = xs.shape[:3]
            xs = xs.reshape(-1, in_c)  # a view: whole images, or rows of one image
            y = buffer[:xs.shape[0] * cols]
            if pixels_last:
                y = np.matmul(w, xs.T, out=y.reshape(cols, -1)).reshape(spec.k_h, spec.k_w, spec.out_c, *shape)
                for i in range(m):
                    _gather_pix_kernel(y, i, out, n0 + i, r0, in_h, *args)
            else:
                y = np.matmul(xs, w.T, out=y.reshape(-1, cols)).reshape(*shape, spec.k_h, spec.k_w, spec.out_c)
                if shuffle:  # Y is the output, reordered: 1.26 ms instead of 1.64 on unet_up2
                    tiles[n0:n0 + m, r0:r0 + rows] = y.reshape(*shape, *tiles.shape[2::2]).swapaxes(2, 3)
                    continue
                for i in range(m):
                    _gather_co_kernel(y[i], out, n0 + i, r0, in_h, *args)


def run(spec, x, filters, out):
    """Compute the transposed convolution of ``x`` into ``out`` (all NHWC).

    Parameters
    ----------
    spec : numba_convt.Spec
        The normalized call.
    x, filters : numpy.ndarray
        C-contiguous NHWC input and ``[KH, KW, C_out / G, C_in]`` filters.
    out : numpy.ndarray
        C-contiguous NHWC result, every element of which is written.
    """
    if out.size == 0:
        return
    if x.size == 0:
        out[...] = 0
        return
    args = (spec.stride_h, spec.stride_w, spec.dil_h, spec.dil_w, spec.pad_top, spec.pad_left)
    if _use_blas(spec):
        _run_blas(spec, x, filters, out, args)
        return
    g, k_h, k_w = spec.groups, spec.k_h, spec.k_w
    cig, cog = spec.in_c // g, spec.out_c // g
    f = filters.reshape(k_h, k_w, cog, g, cig).transpose(3, 0, 1, 4, 2)  # [G, KH, KW, Cig, Cog]
    form = _F_CO if cog >= 8 else (_F_CI if cig >= 16 else _F_PIX)
    wp = np.ascontiguousarray(f.transpose(0, 1, 2, 4, 3) if form == _F_CI else f)
    work = out.size * max(1, k_h * k_w * cig // (spec.stride_h * spec.stride_w))
    kernel = _direct_serial if work < _SERIAL_WORK else _direct_parallel
    kernel(x, wp, out, form, *args, g)
