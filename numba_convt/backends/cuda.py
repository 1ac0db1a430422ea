"""Backend ``"cuda"``: a ``@cuda.jit`` gather kernel, one thread per output element.

Every output element is written by exactly one thread that sums its taps in a
fixed order: no atomics, so results are identical run to run. It visits only
the filter taps of its output's phase. The index math is
:mod:`numba_convt._geometry`'s, compiled here as device functions (the CPU
kernels compile the same ``input_coord``). This module is imported only when the backend is first used, so
``import numba_convt`` never imports ``numba.cuda``; it needs the ``cuda``
extra (NVIDIA's ``numba-cuda``) and a GPU, or ``NUMBA_ENABLE_CUDASIM=1``.

Host NumPy arrays go through :func:`run` (copied to the device and back).
Device arrays go through :func:`run_device`, which keeps everything on the
device and returns a numba ``DeviceNDArray`` (``cupy.asarray(result)`` or
``torch.as_tensor(result, device="cuda")`` view it without a copy).
"""

import math

from numba import cuda

from .._geometry import first_tap, input_coord
from .._normalize import _PARTS, check_out

THREADS_PER_BLOCK = 256  # tests patch these two down to exercise the grid-stride loops
MAX_BLOCKS = 65536
UNAVAILABLE_HINT = (
    "it needs an NVIDIA GPU with its driver and NVIDIA's numba-cuda package "
    "(pip install 'numba-convt[cuda]'), or NUMBA_ENABLE_CUDASIM=1 for numba's CUDA simulator"
)
# Every dtype the package supports, but bfloat16 (ml_dtypes has no device type).
_DEVICE_DTYPES = tuple(_PARTS)

_first_tap = cuda.jit(device=True, inline="always")(first_tap)
_input_coord = cuda.jit(device=True, inline="always")(input_coord)


@cuda.jit(device=True, inline="always")
def _unravel(i, d1, d2, d3):
    """Indices ``(i0, i1, i2, i3)`` of flat C-order index ``i`` in ``[*, d1, d2, d3]``."""
    i, i3 = i // d3, i % d3
    i, i2 = i // d2, i % d2
    return i // d1, i % d1, i2, i3


@cuda.jit
def _conv2d_transpose_nhwc(x, filters, out, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, groups,
                           step_h, step_w):
    """Gather-form transposed convolution, one output element per thread (grid-stride).

    Parameters
    ----------
    x : device array, ``[N, H_in, W_in, C_in]``
    filters : device array, ``[KH, KW, C_out / groups, C_in]``
    out : device array, ``[N, H_out, W_out, C_out]``, written entirely
        ``out[n, oy, ox, co]`` sums ``x[n, iy, ix, ci] * filters[ky, kx, co % (C_out/G), ci]``
        over ``oy = iy*stride_h + ky*dil_h - pad_top`` (``ox`` likewise) and ``ci``
        in ``co``'s group, in the dtype of ``out``.
    stride_h, stride_w, dil_h, dil_w : int
        The spec's strides and dilations.
    pad_top, pad_left : int
        Rows and columns cropped from the top and left of the full output.
    groups : int
        Group count ``G``; ``C_in`` and ``C_out`` are both multiples of it.
    step_h, step_w : int
        ``stride // gcd(stride, dilation)``: taps of one output phase are this
        far apart (see :func:`numba_convt._geometry.first_tap`).

    See Also
    --------
    numba_convt.backends.cpu._direct._direct : the same sum on the CPU, by output phases.
    """
    _, in_h, in_w, in_c = x.shape
    k_h, k_w, group_out, _ = filters.shape
    _, out_h, out_w, out_c = out.shape
    group_in = in_c // groups
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, oy, ox, co = _unravel(i, out_h, out_w, out_c)
        c0 = (co // group_out) * group_in
        cf = co % group_out
        acc = out.dtype.type(0)
        # Only the taps of this output's phase (no test on the others).
        for ky in range(_first_tap(oy, k_h, pad_top, stride_h, dil_h, step_h), k_h, step_h):
            iy = _input_coord(oy, ky, pad_top, stride_h, dil_h, in_h)
            if iy < 0:
                continue
            for kx in range(_first_tap(ox, k_w, pad_left, stride_w, dil_w, step_w), k_w, step_w):
                ix = _input_coord(ox, kx, pad_left, stride_w, dil_w, in_w)
                if ix < 0:
                    continue
                for ci in range(c0, c0 + group_in):
                    acc += x[n, iy, ix, ci] * filters[ky, kx, cf, ci]
        out[n, oy, ox, co] = acc


@cuda.jit
def _copy(src, dst):
    """``dst[...] = src`` for two 4-D arrays of one shape, casting to ``dst.dtype``."""
    _, d1, d2, d3 = dst.shape
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        a, b, c, d = _unravel(i, d1, d2, d3)
        dst[a, b, c, d] = src[a, b, c, d]


@cuda.jit
def _nchw_to_nhwc(src, dst):
    """``dst[n, y, x, c] = src[n, c, y, x]``, casting to ``dst.dtype``."""
    _, h, w, c = dst.shape
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        n, y, x, k = _unravel(i, h, w, c)
        dst[n, y, x, k] = src[n, k, y, x]


@cuda.jit
def _nhwc_to_nchw(src, dst):
    """``dst[n, c, y, x] = src[n, y, x, c]``, casting to ``dst.dtype``."""
    _, c, h, w = dst.shape
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        n, k, y, x = _unravel(i, c, h, w)
        dst[n, k, y, x] = src[n, y, x, k]


def _launch(kernel, size, stream, *args):
    """Launch a grid-stride ``kernel`` over ``size`` elements (nothing when 0)."""
    if size:
        blocks = min(-(-size // THREADS_PER_BLOCK), MAX_BLOCKS)
        kernel[blocks, THREADS_PER_BLOCK, stream](*args)


def _conv(spec, x, filters, out, stream):
    _launch(
        _conv2d_transpose_nhwc, out.size, stream, x, filters, out, spec.stride_h, spec.stride_w,
        spec.dil_h, spec.dil_w, spec.pad_top, spec.pad_left, spec.groups,
        spec.stride_h // math.gcd(spec.stride_h, spec.dil_h), spec.stride_w // math.gcd(spec.stride_w, spec.dil_w),
    )


def is_available():
    """Whether a CUDA GPU (or numba's CUDA simulator) can be used."""
    return cuda.is_available()


def run(spec, x, filters, out, stream=None):
    """Host arrays: copy ``x`` and ``filters`` to the device, compute, copy into ``out``.

    The arguments are :func:`numba_convt.register_backend`'s; ``stream`` is a
    ``numba.cuda`` stream (default: the default stream) and is synchronized
    before returning.
    """
    launch_stream = 0 if stream is None else stream
    d_out = cuda.device_array(out.shape, out.dtype, stream=launch_stream)
    _conv(spec, cuda.to_device(x, stream=launch_stream), cuda.to_device(filters, stream=launch_stream),
          d_out, launch_stream)
    d_out.copy_to_host(out, stream=launch_stream)
    if stream is not None:
        stream.synchronize()


def as_device_array(obj):
    """``obj`` as a numba device array, without a copy.

    numba device arrays are returned as they are; other objects with
    ``__cuda_array_interface__`` (CuPy, PyTorch, ...) are viewed through
    ``numba.cuda.as_cuda_array``.
    """
    if getattr(obj, "__cuda_ndarray__", False):
        return obj
    if not hasattr(cuda, "as_cuda_array"):  # numba's CUDA simulator has no foreign memory
        raise TypeError(f"this numba.cuda cannot use {type(obj).__name__} arrays; pass numba.cuda device arrays")
    return cuda.as_cuda_array(obj)


def run_device(spec, input, filters, out=None, stream=None):
    """Device arrays in and out: nothing is copied to or from the host.

    Parameters
    ----------
    spec : numba_convt.Spec
        The normalized arguments.
    input, filters : numba device array
        As passed to ``conv2d_transpose`` (``data_format`` layout, any
        supported dtype, any strides); converted on the device when they are
        not already NHWC arrays of ``spec.compute_dtype``.
    out : numba device array, optional
        C-contiguous, of ``spec.output_shape`` and ``spec.dtype``.
    stream : numba.cuda stream, optional
        Every conversion and kernel is queued on it (default: the default
        stream); nothing is synchronized. Another library's stream can be
        wrapped with ``numba.cuda.external_stream(pointer)``.

    Returns
    -------
    numba device array
        ``out`` when given, else a new one.
    """
    for array, what in ((input, "input"), (filters, "filters")):
        if array.dtype not in _DEVICE_DTYPES:
            raise TypeError(f"the cuda backend cannot read {what} of dtype {array.dtype} on the device; "
                            f"device arrays must be one of {', '.join(map(str, _DEVICE_DTYPES))}")
    _check_out(out, spec, input, filters)
    stream = 0 if stream is None else stream
    nchw = spec.data_format == "NCHW"
    x = _to_compute(input, spec.compute_dtype, _nchw_to_nhwc if nchw else None, stream)
    f = _to_compute(filters, spec.compute_dtype, None, stream)
    result = cuda.device_array(spec.output_shape, spec.dtype, stream=stream) if out is None else out
    direct = not nchw and spec.dtype == spec.compute_dtype
    buffer = result if direct else cuda.device_array(spec.nhwc_output_shape, spec.compute_dtype, stream=stream)
    _conv(spec, x, f, buffer, stream)
    if not direct:
        _launch(_nhwc_to_nchw if nchw else _copy, buffer.size, stream, buffer, result)
    return result


def _to_compute(array, dtype, permute, stream):
    """``array`` as NHWC of ``dtype``: itself when it already is, else a converted copy."""
    if permute is None and array.dtype == dtype:
        return array
    shape = tuple(array.shape)
    if permute is not None:
        shape = (shape[0], shape[2], shape[3], shape[1])
    converted = cuda.device_array(shape, dtype, stream=stream)
    _launch(permute or _copy, converted.size, stream, array, converted)
    return converted


def _check_out(out, spec, input, filters):
    """A device ``out`` must be C-contiguous, of the exact shape and dtype, not aliasing."""
    if out is not None:
        check_out(out, spec, out.is_c_contiguous(), True, _overlap(out, input) or _overlap(out, filters))


def _overlap(a, b):
    """Whether the byte ranges that device arrays ``a`` and ``b`` span intersect."""
    spans = []
    for array in (a, b):
        if array.size == 0:
            return False
        iface = getattr(array, "__cuda_array_interface__", None) or array.__array_interface__
        low = high = iface["data"][0]
        for size, stride in zip(array.shape, array.strides):
            low, high = low + min(0, (size - 1) * stride), high + max(0, (size - 1) * stride)
        spans.append((low, high + array.dtype.itemsize))
    (a_low, a_high), (b_low, b_high) = spans
    return a_low < b_high and b_low < a_high
