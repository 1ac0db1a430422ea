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
# per spatial rank: the (channels-last, channels-first) data formats, the axes' names
_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
_AXES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_KERNEL = {1: "K", 2: "KH, KW", 3: "KD, KH, KW"}
_INT32_MAX = 2**31 - 1  # TF's output_shape is an int32 tensor


@dataclass(frozen=True)
class Spec:
    """Everything a kernel needs, as plain integers and dtypes.

    Sizes follow TensorFlow's names from the caller's side: ``in_*`` is the
    ``input`` of ``conv2d_transpose``, ``out_*`` its result. ``pad_*`` are the
    forward convolution's paddings, i.e. how many rows/columns are cropped from
    the full transposed output. ``groups`` input-channel groups map onto
    ``out_c // groups`` output channels each.

    One spec describes 1, 2 and 3 spatial dimensions (``rank``) as depth,
    height and width: the axes a call does not have are unit axes (size 1,
    kernel 1, stride 1, no padding), so 1-D is 2-D with a unit height, as in
    TensorFlow, and 2-D is 3-D with a unit depth.

    Attributes
    ----------
    data_format : str
        The caller's layout: ``"NWC"``/``"NCW"``, ``"NHWC"``/``"NCHW"`` or
        ``"NDHWC"``/``"NCDHW"``; backends receive channels-last arrays.
    rank : {1, 2, 3}
        The number of spatial dimensions.
    batch, in_d, in_h, in_w, in_c, out_d, out_h, out_w, out_c : int
        Input and result sizes.
    k_d, k_h, k_w, stride_d, stride_h, stride_w, dil_d, dil_h, dil_w : int
        Filter size, strides and dilations.
    pad_front, pad_back, pad_top, pad_bottom, pad_left, pad_right : int
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
    rank: int = 2
    in_d: int = 1
    out_d: int = 1
    k_d: int = 1
    stride_d: int = 1
    dil_d: int = 1
    pad_front: int = 0
    pad_back: int = 0

    @property
    def channels_first(self):
        """Whether ``data_format`` puts channels before the spatial axes."""
        return self.data_format[1] == "C"

    @property
    def output_shape(self):
        """The result's shape, in ``data_format`` order."""
        return from_channels_last(self.nhwc_output_shape, self.data_format)

    @property
    def axes(self):
        """Per spatial axis of the call, in depth, height, width order:
        ``(in, out, kernel, stride, dilation, pad_before)``."""
        axes = [
            (self.in_d, self.out_d, self.k_d, self.stride_d, self.dil_d, self.pad_front),
            (self.in_h, self.out_h, self.k_h, self.stride_h, self.dil_h, self.pad_top),
            (self.in_w, self.out_w, self.k_w, self.stride_w, self.dil_w, self.pad_left),
        ]
        return axes[3 - self.rank:]

    @property
    def nhwc_output_shape(self):
        """The shape of the channels-last buffer the kernels write (``NWC``, ``NHWC`` or ``NDHWC``)."""
        return (self.batch, *(self.out_d, self.out_h, self.out_w)[3 - self.rank:], self.out_c)


def normalize(input, filters, output_shape, strides, padding, data_format, dilations, rank=2):
    """Validate the arguments of a ``rank``-D transposed convolution and build its :class:`Spec`.

    ``input`` and ``filters`` must already be arrays (anything with ``shape``
    and ``dtype``); nothing is allocated.

    Raises
    ------
    TypeError
        For arguments of the wrong type (non-integer sizes, unsupported dtypes).
    ValueError
        For everything else TensorFlow refuses, with the argument, the value
        and what is accepted.
    """
    data_format, strides, dilations, pads = window_args(strides, padding, data_format, dilations, rank)
    dtype, compute_dtype = _dtypes(input, filters)
    (batch, *in_sizes, in_c), filters_shape = check_shapes(input.shape, filters.shape, data_format, "input", "filters")
    *kernel, group_out_c, filter_in_c = filters_shape
    batch_out, *out_sizes, out_c = _output_shape(output_shape, data_format, batch, group_out_c)
    groups = _groups(out_c, group_out_c, in_c, filter_in_c, filters.shape, input.shape)
    if batch_out != batch:
        raise ValueError(
            f"output_shape batch {batch_out} must equal the input batch {batch} "
            f"(input.shape={input.shape})"
        )
    kind = padding_kind(padding)
    first = 2 if data_format[1] == "C" else 1
    pads = [
        _spatial_pads(name, first + axis, kind, *sizes)
        for axis, (name, *sizes) in enumerate(zip(_AXES[rank], in_sizes, out_sizes, kernel, strides, dilations, pads))
    ]
    (in_d, in_h, in_w), (out_d, out_h, out_w), (k_d, k_h, k_w), (stride_d, stride_h, stride_w), \
        (dil_d, dil_h, dil_w) = (_as_3d(values, 1) for values in (in_sizes, out_sizes, kernel, strides, dilations))
    (pad_front, pad_back), (pad_top, pad_bottom), (pad_left, pad_right) = _as_3d(pads, (0, 0))
    return Spec(
        data_format, batch, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w,
        stride_h, stride_w, dil_h, dil_w, pad_top, pad_bottom, pad_left, pad_right,
        groups, dtype, compute_dtype, rank, in_d, out_d, k_d, stride_d, dil_d, pad_front, pad_back,
    )


def _as_3d(values, unit):
    """Per-axis ``values`` of 1 to 3 spatial axes as (depth, height, width), ``unit`` for the missing ones."""
    return [unit] * (3 - len(values)) + list(values)


def window_args(strides, padding, data_format, dilations, rank=2):
    """Validated ``data_format`` and per spatial axis: strides, dilations and
    ``(before, after)`` pads."""
    data_format = _data_format(data_format, rank)
    strides = _window(1 if strides is None else strides, "strides", data_format, minimum=1)
    dilations = _window(1 if dilations is None else dilations, "dilations", data_format, minimum=1)
    return data_format, strides, dilations, _padding(padding, data_format)


def check_shapes(input_shape, filters_shape, data_format, input_name, filters_name):
    """The channels-last input shape and the filters shape as int tuples, checked
    for rank and a non-empty kernel; the names are the caller's argument names."""
    rank = len(data_format) - 2
    _check_rank(input_shape, input_name, rank)
    _check_rank(filters_shape, filters_name, rank)
    if min(filters_shape[:-1]) < 1:
        names = ", ".join(_AXES[rank])
        raise ValueError(
            f"{filters_name} must have non-zero {names} and output channels "
            f"(shape [{_KERNEL[rank]}, C_out, C_in]); got shape {tuple(filters_shape)}"
        )
    return to_channels_last(input_shape, data_format), tuple(filters_shape)


def _outer_axes(data_format):
    """Positions of batch and channels in a ``data_format`` shape."""
    return (0, 1) if data_format[1] == "C" else (0, len(data_format) - 1)


def _spatial(items, data_format):
    """The spatial entries of ``items`` given in ``data_format`` order."""
    return items[2:] if data_format[1] == "C" else items[1:-1]


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


def _data_format(data_format, rank):
    """``data_format``, ``None`` meaning the rank's channels-last one."""
    formats = _FORMATS[rank]
    if data_format is None:
        return formats[0]
    accepted = " or ".join(map(repr, formats))
    if not isinstance(data_format, str):
        raise TypeError(f"data_format must be a string, {accepted}; got {data_format!r}")
    if data_format not in formats:
        raise ValueError(f"data_format must be {accepted} for {rank}-D; got {data_format!r}")
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
    """``strides``/``dilations`` per spatial axis: an int, or length 1, the
    rank, or the rank + 2 (with ``outer`` in the batch and channel entries)."""
    rank = len(data_format) - 2
    items = _sequence(value, what)
    if items is None:
        items = [value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value]
    items = [_integer(v, f"{what} entries", integral_floats=True) for v in items]
    if len(items) == rank + 2:
        if [items[i] for i in _outer_axes(data_format)] != [outer, outer]:
            raise ValueError(
                f"{what}={items} must be {outer} in the batch and channel dimensions "
                f"({data_format} order)"
            )
        items = _spatial(items, data_format)
    elif len(items) == 1:
        items = items * rank
    elif len(items) != rank:
        lengths = ", ".join(map(str, sorted({1, rank})))
        raise ValueError(
            f"{what} should be of length {lengths} or {rank + 2}. Received: {what}={items} of length {len(items)}"
        )
    if min(items) < minimum or max(items) > _INT32_MAX:
        raise ValueError(f"{what}={items} must all be in [{minimum}, 2**31 - 1]")
    return items


def _padding(padding, data_format):
    """Spatial ``(before, after)`` pads; zeros for SAME/VALID."""
    size = len(data_format)
    if isinstance(padding, str):
        if padding.upper() == "EXPLICIT":
            raise ValueError(
                f"{padding!r} is not a valid value for `padding`. "
                "To use explicit padding, `padding` must be a list."
            )
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(
                f"padding must be 'SAME', 'VALID' (any letter case) or a list of {size} "
                f"[before, after] pairs; got {padding!r}"
            )
        return [(0, 0)] * (size - 2)
    pairs = padding.tolist() if isinstance(padding, np.ndarray) and padding.ndim else _sequence(padding, "padding")
    if pairs is None:
        raise TypeError(f"padding must be a string or a list of {size} [before, after] pairs; got {padding!r}")
    for i, pair in enumerate(pairs):
        if _sequence(pair, "padding") is None or len(pair) != 2:
            raise ValueError(
                f"When `padding` is a list, each element of `padding` must be a list/tuple "
                f"of size 2. Received: padding={padding!r} with element at index {i}: {pair!r}"
            )
    if len(pairs) != size:
        raise ValueError(
            f"When padding is a list, it must be of size {size} ({data_format}). "
            f"Received: padding={padding!r} of size {len(pairs)}"
        )
    pairs = [[_integer(v, "padding entries") for v in pair] for pair in pairs]
    if min(min(pair) for pair in pairs) < 0 or max(max(pair) for pair in pairs) > _INT32_MAX:
        raise ValueError(f"padding={pairs} entries must be in [0, 2**31 - 1]")
    if any(pairs[i] != [0, 0] for i in _outer_axes(data_format)):
        raise ValueError(f"padding={pairs} must be [0, 0] in the batch and channel dimensions ({data_format} order)")
    return [tuple(pair) for pair in _spatial(pairs, data_format)]


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


def _check_rank(shape, what, rank):
    if len(shape) != rank + 2:
        raise ValueError(f"{what} must be {rank + 2}-D; got {len(shape)}-D with shape {tuple(shape)}")


def to_channels_last(shape, data_format):
    """``shape`` (in ``data_format`` order) with the channels last, as a tuple."""
    return (shape[0], *shape[2:], shape[1]) if data_format[1] == "C" else tuple(shape)


def from_channels_last(shape, data_format):
    """A channels-last ``shape`` in ``data_format`` order, as a tuple."""
    return (shape[0], shape[-1], *shape[1:-1]) if data_format[1] == "C" else tuple(shape)


def input_rank(input_shape):
    """The spatial rank (1, 2 or 3) of an ``input_shape`` of 3, 4 or 5 ints."""
    if len(input_shape) not in (3, 4, 5):
        raise ValueError(f"input_shape must have 3, 4 or 5 values (1-D, 2-D or 3-D); got {list(input_shape)}")
    return len(input_shape) - 2


def _output_shape(output_shape, data_format, batch, group_out_c):
    """``output_shape`` as channels-last ints; for 2-D, length 2 takes batch and
    channels from the arrays (TF's 1-D and 3-D ops have no such form)."""
    rank = len(data_format) - 2
    items = int_list(output_shape, "output_shape")
    if len(items) == 2 and rank == 2:
        items = [batch, items[0], items[1], group_out_c] if data_format == "NHWC" else [batch, group_out_c, *items]
    elif len(items) != rank + 2:
        spatial = " or 2 values ([H, W])" if rank == 2 else ""
        raise ValueError(
            f"output_shape must have {rank + 2} values ({data_format}){spatial}; "
            f"got {len(items)}: {output_shape!r}"
        )
    if min(items) < 0 or max(items) > _INT32_MAX:
        raise ValueError(f"output_shape={items} entries must be in [0, 2**31 - 1]")
    return to_channels_last(items, data_format)


def int_list(value, what):
    """A list of ints from a sequence or 1-D integer array, or TypeError naming ``what``."""
    if isinstance(value, np.ndarray) and value.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integers; got an array of dtype {value.dtype}")
    items = _sequence(value, what)
    if items is None:
        raise TypeError(f"{what} must be a list, tuple or 1-D integer array; got {value!r}")
    return [_integer(v, f"{what} entries") for v in items]


def _groups(out_c, group_out_c, in_c, filter_in_c, filters_shape, input_shape):
    """Number of groups ``G``: output channels ``G * filters.shape[-2]``, ``C_in % G == 0``.

    Messages index ``filters.shape`` as the caller's rank does (2-D: ``[2]``, ``[3]``)."""
    c_out_axis, c_in_axis = len(filters_shape) - 2, len(filters_shape) - 1
    if filter_in_c != in_c:
        raise ValueError(
            f"filters.shape[{c_in_axis}] (input channels) = {filter_in_c} must equal the input's "
            f"channels {in_c} (filters.shape={filters_shape}, input.shape={input_shape})"
        )
    if out_c == 0 or out_c % group_out_c:
        raise ValueError(
            f"output_shape channels {out_c} must be a positive multiple of "
            f"filters.shape[{c_out_axis}] = {group_out_c} (the multiple is the group count)"
        )
    groups = out_c // group_out_c
    if in_c % groups:
        raise ValueError(
            f"input channels {in_c} must be divisible by the group count {groups} "
            f"(= output_shape channels {out_c} / filters.shape[{c_out_axis}] {group_out_c}; "
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

    Counted: the result; the channels-last compute buffer when the result is channels-first or of
    a half dtype; copies of ``input``/``filters`` when they are not already
    C-contiguous channels-last arrays of the compute dtype (e.g. broadcast views).
    """
    out, dtype, compute_dtype, channels_first = spec.output_shape, spec.dtype, spec.compute_dtype, spec.channels_first
    elements = math.prod(out)
    nbytes = elements * dtype.itemsize
    if channels_first or compute_dtype != dtype:
        nbytes += elements * compute_dtype.itemsize
    for array, transposed in ((input, channels_first), (filters, False)):
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
