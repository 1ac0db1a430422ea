"""Plans: a call validated, and its kernel chosen, once; then run many times.

As with FFTW's and cuDNN's plans, :func:`plan` does the work that depends on
the shapes, dtypes and arguments only: it normalizes them into a
:class:`~numba_convt.Spec`, checks the memory bound, and lets the backend
choose its kernel (a backend's optional ``plan(spec)``). Calling the
:class:`Plan` then checks only that the arrays are the ones it was made for.

``conv2d_transpose`` runs through the same plans and keeps those of its
recent signatures (up to ``_CACHE_SIZE``), keyed on everything that decides
them: the backend, the arrays' shapes, dtypes and contiguity (the memory
bound counts copies), and the other arguments with their exact types (so
``strides=True`` is refused again, never taken for a cached ``strides=1``).
A new signature always gets the full validation.
"""

import functools
import threading
from dataclasses import dataclass

import numpy as np

from ._layout import change_layout
from ._normalize import as_dtype, check_out, check_size, input_rank, int_list, normalize, to_channels_last
from ._registry import get_backend
from ._scratch import scratch

_CACHE_SIZE = 256
_cache = {}
_cache_lock = threading.Lock()  # held to insert only: lookups are single dict reads


@dataclass(frozen=True)
class _Meta:
    """What validation reads of an array, for a plan made from shapes."""

    shape: tuple
    dtype: np.dtype


class _Generic:
    """The chosen kernel of a backend without ``plan(spec)``: its ``run`` and ``takes_nchw``."""

    def __init__(self, backend, spec):
        self.takes_nchw = backend.takes_nchw(spec)
        self.run = functools.partial(backend.run, spec)


def plan(input_shape, filters_shape, output_shape, strides, padding="SAME", data_format=None,
         dilations=None, *, dtype=np.float32, filters_dtype=None, backend="auto"):
    """Validate a transposed-convolution call once, to run it on many arrays.

    The call is 1-D, 2-D or 3-D by the length of ``input_shape`` (3, 4 or
    5), as :func:`numba_convt.conv1d_transpose`,
    :func:`numba_convt.conv2d_transpose` or
    :func:`numba_convt.conv3d_transpose` would make it.

    Parameters
    ----------
    input_shape, filters_shape : sequence of int
        The shapes of ``input`` (in ``data_format`` order) and ``filters``
        (``[*kernel, output_channels, in_channels]``).
    output_shape, strides, padding, data_format, dilations
        As for the function of that rank; ``data_format`` defaults to its
        channels-last one.
    dtype : dtype, default float32
        The dtype of ``input``.
    filters_dtype : dtype, optional
        The dtype of ``filters``; ``dtype`` by default.
    backend : str, default "auto"
        A host backend name, as for :func:`numba_convt.conv2d_transpose`
        (``"auto"``: ``"cpu"``). A ``"cuda"`` plan takes host or device arrays.

    Returns
    -------
    Plan
        Call it as ``p(input, filters, out=None)``, or ``p(input)`` after
        ``p.set_filters(filters)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`numba_convt.conv2d_transpose` would for arrays of these
        shapes and dtypes, and for shapes that are not lists of
        non-negative integers.

    Examples
    --------
    >>> import numpy as np
    >>> import numba_convt
    >>> numba_convt.plan([1, 5, 2], [3, 4, 2], [1, 10, 4], strides=2).output_shape  # 1-D, NWC
    (1, 10, 4)
    >>> p = numba_convt.plan([1, 2, 2, 1], [3, 3, 1, 1], [1, 4, 4, 1], strides=2)
    >>> p.output_shape, p.dtype
    ((1, 4, 4, 1), dtype('float32'))
    >>> x, f = np.ones((1, 2, 2, 1), np.float32), np.ones((3, 3, 1, 1), np.float32)
    >>> p(x, f)[0, :, :, 0]
    array([[1., 1., 2., 1.],
           [1., 1., 2., 1.],
           [2., 2., 4., 2.],
           [1., 1., 2., 1.]], dtype=float32)
    """
    input = _Meta(_shape(input_shape, "input_shape"), _dtype(dtype, "dtype"))
    filters = _Meta(_shape(filters_shape, "filters_shape"),
                    input.dtype if filters_dtype is None else _dtype(filters_dtype, "filters_dtype"))
    args = (output_shape, strides, padding, data_format, dilations, input_rank(input.shape))
    return Plan(get_backend(backend), input, filters, args)


class Plan:
    """A validated transposed-convolution call; made by :func:`numba_convt.plan`.

    Immutable but for :meth:`set_filters`, so one plan may run in several
    threads at once (with filters passed, or set before the threads start).

    Attributes
    ----------
    spec : Spec
        The normalized arguments.
    input_shape, filters_shape, output_shape : tuple of int
        The arrays' shapes (``data_format`` order).
    input_dtype, filters_dtype, dtype : numpy.dtype
        The arrays' dtypes, and the result's.
    backend : str
        The backend that runs it.
    """

    def __init__(self, backend, input, filters, args):
        self.spec = spec = normalize(input, filters, *args)
        check_size(spec, input, filters)
        self._backend = backend
        self.backend = backend.name
        self.input_shape, self.filters_shape = tuple(input.shape), tuple(filters.shape)
        self.input_dtype, self.filters_dtype = _native(input.dtype), _native(filters.dtype)
        self.output_shape, self.dtype = spec.output_shape, spec.dtype
        self._kernel = (backend.plan or functools.partial(_Generic, backend))(spec)
        self._moved = spec.channels_first and not self._kernel.takes_nchw
        self._filters = None

    def __repr__(self):
        return (f"<numba_convt.Plan {self.input_shape} {self.input_dtype} x {self.filters_shape} "
                f"{self.filters_dtype} -> {self.output_shape} {self.dtype} on {self.backend!r}>")

    def set_filters(self, filters):
        """Keep a copy of ``filters``, for calls that pass none.

        Parameters
        ----------
        filters : array_like
            Of the plan's ``filters_shape`` and ``filters_dtype``.

        Returns
        -------
        Plan
            This plan.
        """
        filters = self._checked(as_array(filters, "filters"), "filters", self.filters_shape, self.filters_dtype)
        self._filters = np.array(filters, self.spec.compute_dtype, order="C", copy=True)
        return self

    def __call__(self, input, filters=None, *, out=None, stream=None):
        """Run the plan.

        Parameters
        ----------
        input, filters : array_like or device array
            Of the plan's shapes and dtypes; ``filters`` may be left out after
            :meth:`set_filters`.
        out, stream
            As for :func:`numba_convt.conv2d_transpose`.

        Returns
        -------
        numpy.ndarray or numba device array
            The result, ``out`` when given.
        """
        given = filters is not None
        if not given:
            if self._filters is None:
                raise TypeError("filters is missing: pass filters, or call set_filters(filters) first")
            filters = self._filters  # already checked and converted
        if on_device(input, filters, out):
            return self.run_device(input, filters, out, stream)
        input = self._checked(as_array(input, "input"), "input", self.input_shape, self.input_dtype)
        if given:
            filters = self._checked(as_array(filters, "filters"), "filters", self.filters_shape, self.filters_dtype)
        return self.run_host(input, filters, out, stream)

    def _checked(self, array, what, shape, dtype):
        if array.shape != shape or _native(array.dtype) != dtype:
            raise ValueError(f"{what} has shape {array.shape} and dtype {array.dtype}; this plan takes "
                             f"shape {shape} and dtype {dtype} (make a plan for the new one)")
        return array

    def run_host(self, input, filters, out, stream):
        """NumPy in and out, arrays already checked: the backend fills a buffer
        of the compute dtype, channels-last unless it takes channels-first as it is."""
        spec, moved = self.spec, self._moved
        if stream is not None and self._backend.run_device is None:
            raise ValueError(f"stream= is for the 'cuda' backend; backend {self.backend!r} runs on the host")
        _check_out(out, spec, input, filters)
        if moved:
            x = change_layout(input, True, spec.compute_dtype,
                              scratch("input", to_channels_last(input.shape, spec.data_format), spec.compute_dtype))
        else:
            x = np.ascontiguousarray(input, spec.compute_dtype)
        f = np.ascontiguousarray(filters, spec.compute_dtype)
        direct = not moved and spec.compute_dtype == spec.dtype  # the kernel writes the result itself
        if direct:
            buffer = np.empty(spec.output_shape, spec.dtype) if out is None else out
        else:
            buffer = scratch("result", spec.nhwc_output_shape if moved else spec.output_shape, spec.compute_dtype)
        self._kernel.run(x, f, buffer, **({} if stream is None else {"stream": stream}))
        if direct:
            return buffer
        if moved:
            return change_layout(buffer, False, spec.dtype, out)
        if out is None:
            return np.ascontiguousarray(buffer, spec.dtype)
        out[...] = buffer
        return out

    def run_device(self, input, filters, out, stream):
        """Device arrays in and out, on a backend that takes them."""
        chosen = _takes_device(self._backend)
        input, filters = chosen.as_device_array(input), chosen.as_device_array(filters)
        result = chosen.run_device(self.spec, input, filters, None if out is None else chosen.as_device_array(out),
                                   stream)
        return result if out is None else out


def cached_plan(backend, input, filters, args):
    """The plan of a host call: a recent one for the same signature (``args``,
    the rank last, included), else a new one (kept, the oldest going when
    ``_CACHE_SIZE`` are)."""
    try:
        key = (backend.name, input.shape, input.dtype, input.flags.c_contiguous,
               filters.shape, filters.dtype, filters.flags.c_contiguous, *map(_frozen, args))
    except TypeError:  # an argument of a type the key does not take: validate it afresh
        return Plan(backend, input, filters, args)
    found = _cache.get(key)
    if found is not None and found._backend is backend:  # not replaced by register_backend(overwrite=True)
        return found
    made = Plan(backend, input, filters, args)
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            del _cache[next(iter(_cache))]
        _cache[key] = made
    return made


_EXACT = (int, float, str, type(None))


def _frozen(value):
    """A hashable image of an argument that tells apart every value and type
    validation tells apart; TypeError for any other kind of value."""
    kind = type(value)
    if kind in _EXACT:
        return kind, value
    if kind is list or kind is tuple:
        items = tuple(value)
        if set(map(type, items)) == {int}:  # sizes: the common case, kept flat (ints differ from pairs)
            return kind, items
        return kind, tuple(map(_frozen, items))
    if kind is np.ndarray:
        return kind, value.dtype.str, value.shape, value.tobytes()
    raise TypeError(kind)


def _shape(value, what):
    """A shape argument of :func:`plan` as a tuple of non-negative ints."""
    items = tuple(int_list(value, what))
    if any(size < 0 for size in items):
        raise ValueError(f"{what} entries must be non-negative; got {list(items)}")
    return items


def _dtype(value, what):
    try:
        return _native(as_dtype(value))
    except TypeError as error:
        raise TypeError(f"{what} must be a NumPy dtype; got {value!r} ({error})") from None


def _native(dtype):
    return dtype.newbyteorder("=")


def _is_device_array(obj):
    """Whether ``obj`` lives on a GPU: ``__cuda_array_interface__`` or a numba device array."""
    if type(obj) is np.ndarray:  # the common case, without looking for attributes
        return False
    return hasattr(obj, "__cuda_array_interface__") or bool(getattr(obj, "__cuda_ndarray__", False))


def on_device(input, filters, out):
    """True for all-device arguments, False for all-host; TypeError when mixed."""
    if not (_is_device_array(input) or _is_device_array(filters) or _is_device_array(out)):
        return False
    given = {"input": input, "filters": filters, **({} if out is None else {"out": out})}
    device = [what for what, array in given.items() if _is_device_array(array)]
    if device and len(device) < len(given):
        host = [what for what in given if what not in device]
        raise TypeError(
            f"{', '.join(device)} on the GPU but {', '.join(host)} on the host: pass all device "
            f"arrays (numba.cuda.to_device(array)) or all host arrays (device_array.copy_to_host())"
        )
    return bool(device)


def as_array(value, what):
    """``np.asarray(value)``, with NumPy's conversion errors naming the argument."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{what} could not be converted to an array: {error}") from None


def _check_out(out, spec, input, filters):
    """``out`` must be a writeable C-contiguous NumPy array of the exact shape and dtype."""
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray; got {type(out).__name__}")
    overlaps = np.shares_memory(out, input) or np.shares_memory(out, filters)
    check_out(out, spec, out.flags.c_contiguous, out.flags.writeable, overlaps)


def device_call(backend, input, filters, args, out, stream):
    """A call on device arrays: validated afresh each call."""
    input, filters = _takes_device(backend).as_device_array(input), backend.as_device_array(filters)
    return Plan(backend, input, filters, args).run_device(input, filters, out, stream)


def _takes_device(backend):
    """``backend``, if it takes device arrays; else TypeError."""
    if backend.run_device is None:
        raise TypeError(
            f"backend {backend.name!r} takes host (NumPy) arrays, but input is a device array "
            f"(it has __cuda_array_interface__); use backend='cuda' or copy the arrays to the host"
        )
    return backend
