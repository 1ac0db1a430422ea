"""Turn the raw ``conv2d_transpose`` arguments into one frozen :class:`Spec`.

All argument validation of the package lives here, so every backend sees the
same rules: TensorFlow 2.21's (``../shared/spec/tf_semantics.md``), raised as
``ValueError``/``TypeError`` before anything is allocated.
"""

import collections.abc
import functools
import math
import numbers
import os
from dataclasses import dataclass

import numpy as np

# kind and bits of one real part of each supported dtype, for result_dtype;
# bfloat16 (ml_dtypes, optional) is ("f", 16) too: see _parts
_PARTS = {np.dtype(dtype): parts for dtype, parts in [
    ("float16", ("f", 16)), ("float32", ("f", 32)), ("float64", ("f", 64)),
    ("int32", ("i", 32)), ("int64", ("i", 64)), ("complex64", ("c", 32)), ("complex128", ("c", 64)),
]}
DATA_FORMATS = ("NHWC", "NCHW")
_INT32_MAX = 2**31 - 1  # TF's output_shape is an int32 tensor


@dataclass(frozen=True)
class Spec:
    """Everything a kernel needs, as plain integers and dtypes.

    Sizes follow TensorFlow's names from the caller's side: ``in_*`` is the
    ``input`` of ``conv2d_transpose``, ``out_*`` its result. ``pad_*`` are the
    forward convolution's paddings, i.e. how many rows/columns are cropped from
    the full transposed output. ``groups`` input-channel groups map onto
    ``out_c // groups`` output channels each.

    Attributes
    ----------
    data_format : {"NHWC", "NCHW"}
        The caller's layout; backends always receive NHWC arrays.
    batch, in_h, in_w, in_c, out_h, out_w, out_c : int
        Input and result sizes.
    k_h, k_w, stride_h, stride_w, dil_h, dil_w : int
        Filter size, strides and dilations.
    pad_top, pad_bottom, pad_left, pad_right : int
        The forward convolution's padding (SAME and VALID resolved).
    groups : int
        Number of channel groups.
    dtype, compute_dtype : numpy.dtype
        The result's dtype, and the one kernels compute in (float32 for the
        half types).

    Examples
    --------
    A backend receives one (see :func:`numba_convt.register_backend`):

    >>> import numpy as np
    >>> from numba_convt._normalize import normalize
    >>> x, f = np.ones((2, 8, 8, 16), np.float32), np.ones((4, 4, 3, 16), np.float32)
    >>> spec = normalize(x, f, [16, 16], 2, "SAME", "NHWC", None)
    >>> spec.out_h, spec.out_c, spec.pad_top, spec.pad_bottom, spec.groups
    (16, 3, 1, 1, 1)
    >>> spec.output_shape
    (2, 16, 16, 3)
    """

    data_format: str
    batch: int
    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    groups: int
    dtype: np.dtype
    compute_dtype: np.dtype

    @property
    def output_shape(self):
        """The result's shape, in ``data_format`` order."""
        if self.data_format == "NCHW":
            return (self.batch, self.out_c, self.out_h, self.out_w)
        return (self.batch, self.out_h, self.out_w, self.out_c)

    @property
    def nhwc_output_shape(self):
        """The shape of the NHWC buffer the kernels write."""
        return (self.batch, self.out_h, self.out_w, self.out_c)


def normalize(input, filters, output_shape, strides, padding, data_format, dilations):
    """Validate the arguments of ``conv2d_transpose`` and build its :class:`Spec`.

    ``input`` and ``filters`` must already be NumPy arrays; nothing is allocated.

    Raises
    ------
    TypeError
        For arguments of the wrong type (non-integer sizes, unsupported dtypes).
    ValueError
        For everything else TensorFlow refuses, with the argument, the value
        and what is accepted.
    """
    data_format, (stride_h, stride_w), (dil_h, dil_w), pads = window_args(strides, padding, data_format, dilations)
    dtype, compute_dtype = _dtypes(input, filters)
    (batch, in_h, in_w, in_c), (k_h, k_w, group_out_c, filter_in_c) = check_shapes(
        input.shape, filters.shape, data_format, "input", "filters")
    out = _output_shape(output_shape, data_format, batch, group_out_c)
    _, out_h, out_w, out_c = out
    groups = _groups(out_c, group_out_c, in_c, filter_in_c, filters.shape, input.shape)
    if out[0] != batch:
        raise ValueError(
            f"output_shape batch {out[0]} must equal the input batch {batch} "
            f"(input.shape={input.shape})"
        )
    kind = padding_kind(padding)
    h_axis, w_axis = (1, 2) if data_format == "NHWC" else (2, 3)
    pad_top, pad_bottom = _spatial_pads("height", h_axis, kind, in_h, out_h, k_h, stride_h, dil_h, pads[0])
    pad_left, pad_right = _spatial_pads("width", w_axis, kind, in_w, out_w, k_w, stride_w, dil_w, pads[1])
    return Spec(
        data_format, batch, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w,
        stride_h, stride_w, dil_h, dil_w, pad_top, pad_bottom, pad_left, pad_right,
        groups, dtype, compute_dtype,
    )


def window_args(strides, padding, data_format, dilations):
    """Validated ``data_format``, ``(stride_h, stride_w)``, ``(dil_h, dil_w)`` and
    spatial ``[(before, after), (before, after)]`` pads."""
    data_format = _data_format(data_format)
    strides = _window(strides, "strides", data_format, minimum=1)
    dilations = _window(1 if dilations is None else dilations, "dilations", data_format, minimum=1)
    return data_format, strides, dilations, _padding(padding, data_format)


def check_shapes(input_shape, filters_shape, data_format, input_name, filters_name):
    """The NHWC input shape and the filters shape as int tuples, checked for rank
    and a non-empty kernel; the names are the caller's argument names."""
    _check_rank(input_shape, input_name)
    _check_rank(filters_shape, filters_name)
    k_h, k_w, group_out_c, _ = filters_shape
    if k_h < 1 or k_w < 1 or group_out_c < 1:
        raise ValueError(
            f"{filters_name} must have non-zero height, width and output channels "
            f"(shape [KH, KW, C_out, C_in]); got shape {filters_shape}"
        )
    return _to_nhwc(input_shape, data_format), tuple(filters_shape)


def _outer_axes(data_format):
    """Positions of batch and channels in a ``data_format`` shape."""
    return (0, 3) if data_format == "NHWC" else (0, 1)


def padding_kind(padding):
    """``"SAME"``, ``"VALID"`` or ``"EXPLICIT"`` for an already-validated padding."""
    return padding.upper() if isinstance(padding, str) else "EXPLICIT"


def check_out(out, spec, c_contiguous, writeable, overlaps_inputs):
    """Refuse an ``out`` that is not a C-contiguous, writeable array of the
    result's exact shape and dtype, or that shares memory with the inputs
    (host and device arrays answer the last three differently)."""
    problems = [
        (tuple(out.shape) != spec.output_shape, f"have shape {spec.output_shape}; got shape {tuple(out.shape)}"),
        (out.dtype != spec.dtype, f"have dtype {spec.dtype}; got dtype {out.dtype}"),
        (not c_contiguous, f"be C-contiguous; got an array with strides {tuple(out.strides)}"),
        (not writeable, "be writeable; got a read-only array"),
        (overlaps_inputs, "use memory not shared with input or filters; got an array overlapping them"),
    ]
    for failed, expected in problems:
        if failed:
            raise ValueError(f"out must {expected}")


def legal_output_sizes(in_size, kernel, stride, dilation, padding, pad_before=0, pad_after=0):
    """The range of output sizes whose forward size is ``in_size`` (possibly empty).

    Examples
    --------
    >>> legal_output_sizes(6, 3, 2, 1, "SAME")
    range(11, 13)
    """
    if padding == "SAME":
        return range(0, 1) if in_size == 0 else range((in_size - 1) * stride + 1, in_size * stride + 1)
    base = (kernel - 1) * dilation + 1 - pad_before - pad_after
    if in_size == 0:  # truncation toward zero: -stride < numerator < stride
        low, high = base - 2 * stride + 1, base - 1
    else:
        low = (in_size - 1) * stride + base
        high = low + stride - 1
    return range(max(low, 0), max(high + 1, 0))


def default_output_size(in_size, kernel, stride, dilation, padding, pads=(0, 0), output_padding=None):
    """The output size Keras's ``Conv2DTranspose`` picks (not checked against TF's rule).

    Without ``output_padding``: ``in * stride`` for SAME, ``in * stride +
    max(E - stride, 0)`` for VALID (also ``jax.lax.conv_transpose``'s sizes).
    With it, or for explicit ``pads``: ``(in - 1) * stride + E - crop +
    output_padding``, the crop being ``pads`` (PyTorch) or ``2 * (E // 2)``
    for SAME (Keras). ``E = (kernel - 1) * dilation + 1``.

    Examples
    --------
    >>> default_output_size(6, 3, 2, 1, "VALID"), default_output_size(6, 3, 2, 1, "SAME", output_padding=1)
    (13, 12)
    """
    effective = (kernel - 1) * dilation + 1
    if output_padding is None and padding == "SAME":
        return in_size * stride
    if output_padding is None and padding == "VALID":
        return in_size * stride + max(effective - stride, 0)
    crop = 2 * (effective // 2) if padding == "SAME" else sum(pads)
    return (in_size - 1) * stride + effective - crop + (output_padding or 0)


def inconsistent_size_message(what, name, padding, in_size, kernel, stride, dilation, pads, legal):
    """Why an output size is refused, listing the ``legal`` sizes."""
    accepted = f"{legal.start}..{legal.stop - 1}" if legal else "none"
    explicit = f" {list(pads)}" if padding == "EXPLICIT" else ""
    return (
        f"{what} is inconsistent with the input {name} {in_size} for padding {padding}{explicit}, "
        f"kernel {kernel}, stride {stride}, dilation {dilation}: consistent output {name}s are {accepted}"
    )


def _data_format(data_format):
    if data_format is None:
        return "NHWC"
    if not isinstance(data_format, str):
        raise TypeError(f"data_format must be a string, 'NHWC' or 'NCHW'; got {data_format!r}")
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be 'NHWC' or 'NCHW'; got {data_format!r}")
    return data_format


def _integer(value, what, integral_floats=False):
    """``value`` as a Python int, or TypeError naming ``what``; never a boolean.

    ``integral_floats`` accepts ``2.0`` (TF does for ``strides``/``dilations``).
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be an integer, not a boolean; got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if integral_floats and isinstance(value, numbers.Real):
        try:
            if int(value) == value:
                return int(value)
        except (OverflowError, ValueError):  # inf, nan
            pass
    raise TypeError(f"{what} must be an integer; got {value!r} of type {type(value).__name__}")


def _sequence(value, what):
    """A list from a sequence or 1-D array (TF's ``list(v)``), or None for anything else."""
    if isinstance(value, np.ndarray):
        if value.ndim > 1:
            raise ValueError(f"{what} must be 1-D; got an array of shape {value.shape}")
        return value.tolist() if value.ndim == 1 else None
    if isinstance(value, collections.abc.Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    return None


def _window(value, what, data_format, minimum, outer=1):
    """``strides``/``dilations`` as ``(h, w)``: int, or length 1, 2 or 4 (with
    ``outer`` in the batch and channel entries)."""
    items = _sequence(value, what)
    if items is None:
        items = [value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value]
    items = [_integer(v, f"{what} entries", integral_floats=True) for v in items]
    if len(items) == 4:
        if [items[i] for i in _outer_axes(data_format)] != [outer, outer]:
            raise ValueError(
                f"{what}={items} must be {outer} in the batch and channel dimensions "
                f"({data_format} order)"
            )
        items = items[1:3] if data_format == "NHWC" else items[2:4]
    elif len(items) == 1:
        items = items * 2
    elif len(items) != 2:
        raise ValueError(f"{what} should be of length 1, 2 or 4. Received: {what}={items} of length {len(items)}")
    if min(items) < minimum or max(items) > _INT32_MAX:
        raise ValueError(f"{what}={items} must all be in [{minimum}, 2**31 - 1]")
    return items


def _padding(padding, data_format):
    """Spatial ``[(before, after), (before, after)]`` pads; zeros for SAME/VALID."""
    if isinstance(padding, str):
        if padding.upper() == "EXPLICIT":
            raise ValueError(
                f"{padding!r} is not a valid value for `padding`. "
                "To use explicit padding, `padding` must be a list."
            )
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(
                f"padding must be 'SAME', 'VALID' (any letter case) or a list of four "
                f"[before, after] pairs; got {padding!r}"
            )
        return [(0, 0), (0, 0)]
    pairs = padding.tolist() if isinstance(padding, np.ndarray) and padding.ndim else _sequence(padding, "padding")
    if pairs is None:
        raise TypeError(f"padding must be a string or a list of four [before, after] pairs; got {padding!r}")
    for i, pair in enumerate(pairs):
        if _sequence(pair, "padding") is None or len(pair) != 2:
            raise ValueError(
                f"When `padding` is a list, each element of `padding` must be a list/tuple "
                f"of size 2. Received: padding={padding!r} with element at index {i}: {pair!r}"
            )
    if len(pairs) != 4:
        raise ValueError(f"When padding is a list, it must be of size 4. Received: padding={padding!r} of size {len(pairs)}")
    pairs = [[_integer(v, "padding entries") for v in pair] for pair in pairs]
    if min(min(pair) for pair in pairs) < 0 or max(max(pair) for pair in pairs) > _INT32_MAX:
        raise ValueError(f"padding={pairs} entries must be in [0, 2**31 - 1]")
    if any(pairs[i] != [0, 0] for i in _outer_axes(data_format)):
        raise ValueError(f"padding={pairs} must be [0, 0] in the batch and channel dimensions ({data_format} order)")
    spatial = pairs[1:3] if data_format == "NHWC" else pairs[2:4]
    return [tuple(pair) for pair in spatial]


def _dtypes(input, filters):
    """The result dtype and the dtype the kernels compute in."""
    dtypes = [array.dtype.newbyteorder("=") for array in (input, filters)]
    for dtype, what in zip(dtypes, ("input", "filters")):
        if not is_supported(dtype):
            raise TypeError(
                f"{what} has unsupported dtype {dtype}; accepted: "
                + ", ".join(str(d) for d in supported_dtypes())
            )
    dtype = result_dtype(*dtypes)
    return dtype, np.dtype(np.float32) if _parts(dtype)[1] == 16 else dtype


@functools.cache
def bfloat16():
    """ml_dtypes's bfloat16, or None where ml_dtypes is not installed. Imported
    when first needed, not with the package: importing ml_dtypes takes ~0.8 s."""
    try:
        from ml_dtypes import bfloat16 as dtype
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return np.dtype(dtype)


def supported_dtypes():
    """Every dtype the package takes: bfloat16 too where ml_dtypes is installed."""
    return (*_PARTS, *([bfloat16()] if bfloat16() is not None else []))


def is_supported(dtype):
    """Whether the package takes arrays of ``dtype`` (native byte order)."""
    return dtype in _PARTS or dtype == bfloat16()


def as_dtype(value):
    """``np.dtype(value)``, also for ``"bfloat16"`` before anything imported ml_dtypes."""
    if isinstance(value, str) and value == "bfloat16" and bfloat16() is not None:
        return bfloat16()
    return np.dtype(value)


def _parts(dtype):
    """Kind and bits of one real part of a supported dtype."""
    return _PARTS.get(dtype, ("f", 16))  # the one supported dtype not in the table: bfloat16


def result_dtype(a, b):
    """The result dtype of ``input`` dtype ``a`` with ``filters`` dtype ``b``
    (both supported): the README's table, the same for every NumPy and
    ml_dtypes version (they have disagreed, e.g. on bfloat16 with int32).

    The wider kind wins (integer < float < complex); an integer with a float
    or complex gives 64-bit parts (no integer fits a narrower float); float16
    with bfloat16 gives float32 (neither holds the other); else the wider part.

    Examples
    --------
    >>> import numpy as np
    >>> str(result_dtype(np.dtype("int32"), np.dtype("float32")))
    'float64'
    >>> str(result_dtype(np.dtype("float16"), np.dtype("complex64")))
    'complex64'
    """
    if a == b:
        return a
    (kind_a, bits_a), (kind_b, bits_b) = _parts(a), _parts(b)
    kind = max(kind_a, kind_b, key="ifc".index)
    if kind != "i" and "i" in (kind_a, kind_b):
        bits = 64
    else:
        bits = max(bits_a, bits_b, 32 if bits_a == bits_b == 16 else 0)
    return np.dtype({"i": "int", "f": "float", "c": "complex"}[kind] + str(bits * (2 if kind == "c" else 1)))


def _check_rank(shape, what):
    if len(shape) != 4:
        raise ValueError(f"{what} must be 4-D; got {len(shape)}-D with shape {shape}")


def _to_nhwc(shape, data_format):
    return tuple(shape) if data_format == "NHWC" else (shape[0], shape[2], shape[3], shape[1])


def _output_shape(output_shape, data_format, batch, group_out_c):
    """``output_shape`` as NHWC ints; length 2 takes batch and channels from the arrays."""
    items = int_list(output_shape, "output_shape")
    if len(items) == 2:
        items = [batch, items[0], items[1], group_out_c] if data_format == "NHWC" else [batch, group_out_c, *items]
    elif len(items) != 4:
        raise ValueError(
            f"output_shape must have 4 values ({data_format}) or 2 values ([H, W]); "
            f"got {len(items)}: {output_shape!r}"
        )
    if min(items) < 0 or max(items) > _INT32_MAX:
        raise ValueError(f"output_shape={items} entries must be in [0, 2**31 - 1]")
    return _to_nhwc(items, data_format)


def int_list(value, what):
    """A list of ints from a sequence or 1-D integer array, or TypeError naming ``what``."""
    if isinstance(value, np.ndarray) and value.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integers; got an array of dtype {value.dtype}")
    items = _sequence(value, what)
    if items is None:
        raise TypeError(f"{what} must be a list, tuple or 1-D integer array; got {value!r}")
    return [_integer(v, f"{what} entries") for v in items]


def _groups(out_c, group_out_c, in_c, filter_in_c, filters_shape, input_shape):
    """Number of groups ``G``: output channels ``G * filters.shape[2]``, ``C_in % G == 0``."""
    if filter_in_c != in_c:
        raise ValueError(
            f"filters.shape[3] (input channels) = {filter_in_c} must equal the input's "
            f"channels {in_c} (filters.shape={filters_shape}, input.shape={input_shape})"
        )
    if out_c == 0 or out_c % group_out_c:
        raise ValueError(
            f"output_shape channels {out_c} must be a positive multiple of "
            f"filters.shape[2] = {group_out_c} (the multiple is the group count)"
        )
    groups = out_c // group_out_c
    if in_c % groups:
        raise ValueError(
            f"input channels {in_c} must be divisible by the group count {groups} "
            f"(= output_shape channels {out_c} / filters.shape[2] {group_out_c}; "
            f"is output_shape in data_format order?)"
        )
    return groups


def _spatial_pads(name, axis, kind, in_size, out_size, kernel, stride, dilation, pads):
    """Check ``out_size`` against ``in_size`` and return the ``(before, after)`` pads."""
    legal = legal_output_sizes(in_size, kernel, stride, dilation, kind, *pads)
    if out_size not in legal:
        what = f"output_shape {name} (dimension {axis}) = {out_size}"
        raise ValueError(inconsistent_size_message(what, name, kind, in_size, kernel, stride, dilation, pads, legal))
    if kind != "SAME":
        return pads
    need = max(0, (in_size - 1) * stride + (kernel - 1) * dilation + 1 - out_size)
    return need // 2, need - need // 2


def check_size(spec, input, filters):
    """Refuse calls whose buffers cannot fit in memory before anything allocates them
    (a separate step: a lazy ``numba_convt.dask`` result may exceed memory).

    Counted: the result; the NHWC compute buffer when the result is NCHW or of
    a half dtype; copies of ``input``/``filters`` when they are not already
    C-contiguous NHWC arrays of the compute dtype (e.g. broadcast views).
    """
    out, dtype, compute_dtype, data_format = spec.output_shape, spec.dtype, spec.compute_dtype, spec.data_format
    elements = math.prod(out)
    nbytes = elements * dtype.itemsize
    if data_format == "NCHW" or compute_dtype != dtype:
        nbytes += elements * compute_dtype.itemsize
    for array, transposed in ((input, data_format == "NCHW"), (filters, False)):
        copied = transposed or array.dtype != compute_dtype or not _is_c_contiguous(array)
        nbytes += math.prod(array.shape) * compute_dtype.itemsize if copied else 0
    if not hasattr(os, "sysconf"):  # Windows: NumPy's own MemoryError still applies
        return
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if nbytes > memory:
        raise ValueError(
            f"output_shape {list(out)} of {dtype} needs {nbytes / 2**30:.3g} GiB with the "
            f"buffers and copies of this call, more than this machine's "
            f"{memory / 2**30:.3g} GiB of memory"
        )


def _is_c_contiguous(array):
    """For NumPy arrays; device arrays are never copied to host memory."""
    return not isinstance(array, np.ndarray) or array.flags.c_contiguous
