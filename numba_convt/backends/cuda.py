"""Backend ``"cuda"``: a ``@cuda.jit`` gather kernel, one thread per output element.

Every output element is written by exactly one thread that sums its taps in a
fixed order: no atomics, so results are identical run to run. It visits only
the filter taps of its output's phase. The index math is
:mod:`numba_convt._geometry`'s, compiled here as device functions (the CPU
kernels compile the same ``input_coord``). This module is imported only when the backend is first used, so
``import numba_convt`` never imports ``numba.cuda``; it needs the ``cuda``
extra (NVIDIA's ``numba-cuda``) and a GPU, or ``NUMBA_ENABLE_CUDASIM=1``.

One kernel serves 1, 2 and 3 spatial dimensions: every array is viewed as 5-D
(``[N, D, H, W, C]``, filters ``[KD, KH, KW, C_out/G, C_in]``) with unit axes
for the ones a call lacks, without a copy; a unit axis costs one trivial tap.

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
def _unravel(i, d1, d2, d3, d4):
    """Indices ``(i0, i1, i2, i3, i4)`` of flat C-order index ``i`` in ``[*, d1, d2, d3, d4]``."""
    i, i4 = i // d4, i % d4
    i, i3 = i // d3, i % d3
    i, i2 = i // d2, i % d2
    return i // d1, i % d1, i2, i3, i4


@cuda.jit
def _conv_transpose_ndhwc(x, filters, out, stride_d, stride_h, stride_w, dil_d, dil_h, dil_w,
                          pad_front, pad_top, pad_left, groups, step_d, step_h, step_w):
    """Gather-form transposed convolution, one output element per thread (grid-stride).

    Parameters
    ----------
    x : device array, ``[N, D_in, H_in, W_in, C_in]``
    filters : device array, ``[KD, KH, KW, C_out / groups, C_in]``
    out : device array, ``[N, D_out, H_out, W_out, C_out]``, written entirely
        ``out[n, oz, oy, ox, co]`` sums ``x[n, iz, iy, ix, ci] * filters[kz, ky, kx, co % (C_out/G), ci]``
        over ``oz = iz*stride_d + kz*dil_d - pad_front`` (``oy``, ``ox`` likewise)
        and ``ci`` in ``co``'s group, in the dtype of ``out``.
    stride_d, stride_h, stride_w, dil_d, dil_h, dil_w : int
        The spec's strides and dilations (1 on unit axes).
    pad_front, pad_top, pad_left : int
        Planes, rows and columns cropped from the front, top and left of the full output.
    groups : int
        Group count ``G``; ``C_in`` and ``C_out`` are both multiples of it.
    step_d, step_h, step_w : int
        ``stride // gcd(stride, dilation)``: taps of one output phase are this
        far apart (see :func:`numba_convt._geometry.first_tap`).

    See Also
    --------
    numba_convt.backends.cpu._direct._direct : the same sum on the CPU, by output phases.
    """
    _, in_d, in_h, in_w, in_c = x.shape
    k_d, k_h, k_w, group_out, _ = filters.shape
    _, out_d, out_h, out_w, out_c = out.shape
    group_in = in_c // groups
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        n, oz, oy, ox, co = _unravel(i, out_d, out_h, out_w, out_c)
        c0 = (co // group_out) * group_in
        cf = co % group_out
        acc = out.dtype.type(0)
        # Only the taps of this output's phase (no test on the others).
        for kz in range(_first_tap(oz, k_d, pad_front, stride_d, dil_d, step_d), k_d, step_d):
            iz = _input_coord(oz, kz, pad_front, stride_d, dil_d, in_d)
            if iz < 0:
                continue
            for ky in range(_first_tap(oy, k_h, pad_top, stride_h, dil_h, step_h), k_h, step_h):
                iy = _input_coord(oy, ky, pad_top, stride_h, dil_h, in_h)
                if iy < 0:
                    continue
                for kx in range(_first_tap(ox, k_w, pad_left, stride_w, dil_w, step_w), k_w, step_w):
                    ix = _input_coord(ox, kx, pad_left, stride_w, dil_w, in_w)
                    if ix < 0:
                        continue
                    for ci in range(c0, c0 + group_in):
                        acc += x[n, iz, iy, ix, ci] * filters[kz, ky, kx, cf, ci]
        out[n, oz, oy, ox, co] = acc


@cuda.jit
def _copy(src, dst):
    """``dst[...] = src`` for two 5-D arrays of one shape, casting to ``dst.dtype``."""
    _, d1, d2, d3, d4 = dst.shape
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        a, b, c, d, e = _unravel(i, d1, d2, d3, d4)
        dst[a, b, c, d, e] = src[a, b, c, d, e]


@cuda.jit
def _to_channels_last(src, dst):
    """``dst[n, z, y, x, c] = src[n, c, z, y, x]``, casting to ``dst.dtype``."""
    _, d, h, w, c = dst.shape
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        n, z, y, x, k = _unravel(i, d, h, w, c)
        dst[n, z, y, x, k] = src[n, k, z, y, x]


@cuda.jit
def _to_channels_first(src, dst):
    """``dst[n, c, z, y, x] = src[n, z, y, x, c]``, casting to ``dst.dtype``."""
    _, c, d, h, w = dst.shape
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        n, k, z, y, x = _unravel(i, c, d, h, w)
        dst[n, k, z, y, x] = src[n, z, y, x, k]


def _launch(kernel, size, stream, *args):
    """Launch a grid-stride ``kernel`` over ``size`` elements (nothing when 0)."""
    if size:
        blocks = min(-(-size // THREADS_PER_BLOCK), MAX_BLOCKS)
        kernel[blocks, THREADS_PER_BLOCK, stream](*args)


def _conv(spec, x, filters, out, stream):
    """The kernel on 5-D channels-last ``x``, ``filters`` and ``out`` of the compute dtype."""
    steps = (s // math.gcd(s, d) for s, d in
             ((spec.stride_d, spec.dil_d), (spec.stride_h, spec.dil_h), (spec.stride_w, spec.dil_w)))
    _launch(
        _conv_transpose_ndhwc, out.size, stream, x, filters, out, spec.stride_d, spec.stride_h, spec.stride_w,
        spec.dil_d, spec.dil_h, spec.dil_w, spec.pad_front, spec.pad_top, spec.pad_left, spec.groups, *steps,
    )


def _as_5d(array, at):
    """``array`` (host or device, 3 to 5 dims) viewed as 5-D, the missing unit
    axes inserted before axis ``at`` (0 for filters, 1 channels-last, 2
    channels-first): no copy, any strides."""
    missing = 5 - len(array.shape)
    if not missing:
        return array
    shape = (*array.shape[:at], *(1,) * missing, *array.shape[at:])
    try:
        return array.reshape(shape)
    except NotImplementedError:  # numba-cuda reshapes only contiguous arrays; unit axes need no copy
        strides = (*array.strides[:at], *(0,) * missing, *array.strides[at:])
        return type(array)(shape, strides, array.dtype, gpu_data=array.gpu_data)


def is_available():
    """Whether a CUDA GPU (or numba's CUDA simulator) can be used."""
    return cuda.is_available()


def run(spec, x, filters, out, stream=None):
    """Host arrays: copy ``x`` and ``filters`` to the device, compute, copy into ``out``.

    The arguments are :func:`numba_convt.register_backend`'s (channels-last,
    of the call's rank); ``stream`` is a ``numba.cuda`` stream (default: the
    default stream) and is synchronized before returning.
    """
    launch_stream = 0 if stream is None else stream
    d_out = cuda.device_array(out.shape, out.dtype, stream=launch_stream)
    _conv(spec, cuda.to_device(_as_5d(x, 1), stream=launch_stream),
          cuda.to_device(_as_5d(filters, 0), stream=launch_stream), _as_5d(d_out, 1), launch_stream)
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
        As passed to the ``conv*_transpose`` call (``spec.data_format``
        layout, any supported dtype, any strides); converted on the device
        when they are not already channels-last arrays of ``spec.compute_dtype``.
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
    first = spec.channels_first
    at = 2 if first else 1
    x = _to_compute(_as_5d(input, at), spec.compute_dtype, first, stream)
    f = _to_compute(_as_5d(filters, 0), spec.compute_dtype, False, stream)
    result = cuda.device_array(spec.output_shape, spec.dtype, stream=stream) if out is None else out
    result_5d = _as_5d(result, at)
    direct = not first and spec.dtype == spec.compute_dtype
    shape = (spec.batch, spec.out_d, spec.out_h, spec.out_w, spec.out_c)
    buffer = result_5d if direct else cuda.device_array(shape, spec.compute_dtype, stream=stream)
    _conv(spec, x, f, buffer, stream)
    if not direct:
        _launch(_to_channels_first if first else _copy, buffer.size, stream, buffer, result_5d)
    return result


def _to_compute(array, dtype, channels_first, stream):
    """5-D ``array`` as channels-last of ``dtype``: itself when it already is, else a converted copy."""
    if not channels_first and array.dtype == dtype:
        return array
    n, *sizes = array.shape
    shape = (n, *sizes[1:], sizes[0]) if channels_first else (n, *sizes)
    converted = cuda.device_array(shape, dtype, stream=stream)
    _launch(_to_channels_last if channels_first else _copy, converted.size, stream, array, converted)
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
