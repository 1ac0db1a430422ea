"""Transposed convolutions of a chunked ``dask.array``: lazy, block by block.

Each output block is the in-memory :func:`numba_convt.conv_transpose` of the
input window (with a halo on every spatial axis) whose pixels land on it,
with explicit padding chosen so that the block equals its slice of the full
output. Dask is imported only when a function is called: ``pip install
numba-convt[dask]``.
"""

import math
from dataclasses import dataclass

import numpy as np

from . import api
from ._normalize import legal_output_sizes, normalize
from ._plan import as_array
from ._registry import get_backend

__all__ = ["conv2d_transpose", "conv_transpose"]


def conv2d_transpose(input, filters, output_shape, strides, padding="SAME",
                     data_format="NHWC", dilations=None, name=None, *, backend="auto"):
    """:func:`numba_convt.conv2d_transpose` of a ``dask.array``, as a lazy ``dask.array``.

    Same arguments, rules, errors and values as the in-memory function on
    ``input.compute()``; only ``out`` and ``stream`` are not taken. Arguments
    are validated when this is called; the kernels run on ``compute()``.

    Parameters
    ----------
    input : dask.array.Array or array_like
        4-D, NHWC or NCHW. Any chunking along batch, height and width; the
        channels are rechunked into one chunk. Other arrays are wrapped with
        ``dask.array.asarray`` (one chunk).
    filters : numpy.ndarray or array_like
        ``[KH, KW, C_out, C_in]``, in memory (not a dask array): every task
        gets a copy.
    output_shape, strides, padding, data_format, dilations, name, backend
        As in :func:`numba_convt.conv2d_transpose`.

    Returns
    -------
    dask.array.Array
        Shape ``output_shape`` (4-D), dtype as in
        :func:`numba_convt.conv2d_transpose`. Batch chunks are the input's;
        height and width chunks are the input's times the stride, the last
        one taking the remainder.

    Raises
    ------
    ImportError
        Without dask (``pip install numba-convt[dask]``).
    ValueError, TypeError
        For the arguments the in-memory function refuses, with its messages
        (the whole result may exceed memory: only each block must fit); for
        ``input`` chunks of unknown size; and TypeError for dask ``filters``.

    See Also
    --------
    conv_transpose : the same for 1, 2 or 3 spatial dimensions.

    Notes
    -----
    Along height, output rows ``[o0, o1)`` receive input rows from
    ``(o0 + pad_top - E + 1) // stride`` (``E = (KH - 1) * dilation + 1``,
    rounded down so that the window's first row lands at or before ``o0``)
    to ``(o1 - 1 + pad_top) // stride``; width likewise. Each output element
    is summed over the same taps in the same order as in one in-memory call,
    so the results are identical wherever the backend's order of summation
    does not depend on the array's size (see ``docs/dask.md``).

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import numba_convt
    >>> import numba_convt.dask
    >>> x = np.arange(2 * 5 * 5 * 3, dtype=np.float32).reshape(2, 5, 5, 3)
    >>> f = np.ones((3, 3, 4, 3), np.float32)
    >>> y = numba_convt.dask.conv2d_transpose(da.from_array(x, chunks=(1, 2, 3, 3)), f, [10, 10], 2)
    >>> y.chunks
    ((1, 1), (4, 4, 2), (6, 4), (4,))
    >>> bool((y.compute() == numba_convt.conv2d_transpose(x, f, [10, 10], 2)).all())
    True
    """
    del name  # TF compatibility only
    return _lazy(2, input, filters, (output_shape, strides, padding, data_format, dilations), backend)


def conv_transpose(input, filters, output_shape, strides, padding="SAME", data_format=None,
                   dilations=None, name=None, *, backend="auto"):
    """:func:`numba_convt.conv_transpose` of a ``dask.array``: 1, 2 or 3 spatial dimensions, lazily.

    The rank is ``len(output_shape) - 2``, as in the in-memory function;
    everything else is as in :func:`conv2d_transpose` (this module's), with
    a halo on every spatial axis: depth, height, width.

    Parameters
    ----------
    input : dask.array.Array or array_like
        3-, 4- or 5-D (``NWC``/``NCW``, ``NHWC``/``NCHW``,
        ``NDHWC``/``NCDHW``). Any chunking along batch and the spatial axes;
        the channels are rechunked into one chunk.
    filters : numpy.ndarray or array_like
        ``[*K, C_out, C_in]``, in memory (not a dask array).
    output_shape : sequence of int
        3, 4 or 5 values in ``data_format`` order (for 2-D, also ``[H, W]``
        is taken by :func:`conv2d_transpose`, not here: 2 values have no rank).
    strides, padding, data_format, dilations, name, backend
        As in :func:`numba_convt.conv_transpose` (``data_format=None``: the
        rank's channels-last layout).

    Returns
    -------
    dask.array.Array
        Shape ``output_shape``. Batch chunks are the input's; each spatial
        axis's chunks are the input's times its stride, the last one taking
        the remainder; the channels are one chunk.

    Raises
    ------
    ImportError
        Without dask.
    ValueError, TypeError
        As :func:`numba_convt.conv_transpose` raises, with its messages, and
        as :func:`conv2d_transpose` (this module's) for unknown chunk sizes
        and dask ``filters``.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import numba_convt
    >>> import numba_convt.dask
    >>> x = np.arange(2 * 3 * 4 * 5 * 2, dtype=np.float64).reshape(2, 3, 4, 5, 2)   # NDHWC
    >>> f = np.ones((3, 2, 2, 4, 2))                                               # [KD, KH, KW, C_out, C_in]
    >>> y = numba_convt.dask.conv_transpose(da.from_array(x, chunks=(1, 2, 3, 2, 2)), f, [2, 6, 8, 10, 4], 2)
    >>> y.chunks
    ((1, 1), (4, 2), (6, 2), (4, 4, 2), (4,))
    >>> bool((y.compute() == numba_convt.conv_transpose(x, f, [2, 6, 8, 10, 4], 2)).all())
    True
    """
    del name  # TF compatibility only
    return _lazy(api.rank_of(output_shape), input, filters, (output_shape, strides, padding, data_format, dilations),
                 backend)


def _lazy(rank, input, filters, args, backend):
    """The lazy ``rank``-D result, the arguments validated now as the in-memory call does."""
    da = _import_dask()
    get_backend(backend)  # an unknown backend fails first, as in the in-memory call
    input = input if isinstance(input, da.Array) else da.asarray(as_array(input, "input"))
    if isinstance(filters, da.Array):
        raise TypeError("filters must be an in-memory array, not a dask array; pass filters.compute()")
    filters = as_array(filters, "filters")
    if any(math.isnan(size) for size in input.shape):
        raise ValueError(
            f"input has chunks of unknown size (shape {input.shape}); "
            f"call input.compute_chunk_sizes() first"
        )
    spec = normalize(input, filters, *args, rank)
    if input.size == 0 or math.prod(spec.output_shape) == 0:
        return da.zeros(spec.output_shape, dtype=spec.dtype, chunks=-1)  # nothing lands anywhere
    return _blockwise(input, filters, spec, backend)


def _import_dask():
    try:
        import dask.array
    except ImportError as error:
        raise ImportError(
            "numba_convt.dask needs dask: pip install numba-convt[dask]  (or: pip install 'dask[array]')"
        ) from error
    return dask.array


def _blockwise(input, filters, spec, backend):
    """The lazy result: each block from its window of ``input`` (a validated, non-empty call)."""
    first = 2 if spec.channels_first else 1
    c_axis = 1 if spec.channels_first else spec.rank + 1
    axes = spec.axes
    x = input.rechunk({c_axis: -1})
    windows = {first + i: _windows(x.chunks[first + i], *axis[1:]) for i, axis in enumerate(axes)}
    for axis, window in windows.items():  # one chunk per output block's window
        x = x[(slice(None),) * axis + (window.index,)].rechunk({axis: window.sizes})
    chunks = [x.chunks[0]] + [None] * (spec.rank + 1)
    chunks[c_axis] = (spec.out_c,)
    for axis, window in windows.items():
        chunks[axis] = window.out_chunks
    call = dict(strides=[axis[3] for axis in axes], data_format=spec.data_format,
                dilations=[axis[4] for axis in axes], backend=backend)
    pads = {axis: window.pads for axis, window in windows.items()}
    return x.map_blocks(_block, filters, pads, call, chunks=tuple(chunks), dtype=spec.dtype,
                        meta=np.empty((0,) * (spec.rank + 2), spec.dtype))


@dataclass(frozen=True)
class _Windows:
    """Along one spatial axis: the output chunks, and for each the input rows
    it needs (``sizes`` consecutive runs of ``index``) and the explicit
    ``(before, after)`` padding that makes the in-memory call on them give it."""

    out_chunks: tuple
    index: np.ndarray
    sizes: tuple
    pads: tuple


def _windows(in_chunks, out_size, kernel, stride, dilation, pad_before):
    """Output chunks ``stride`` times the input's (clipped to ``out_size``) and their windows."""
    in_size, span = sum(in_chunks), (kernel - 1) * dilation + 1
    ends = np.cumsum(in_chunks)[:-1] * stride
    bounds = sorted({0, out_size, *(min(int(end), out_size) for end in ends)})
    index, sizes, pads = [], [], []
    for o0, o1 in zip(bounds, bounds[1:]):
        # Floor, not ceiling: the window may start one row early, never late,
        # so its first row lands at or before o0 and the pad before is >= 0.
        i0 = max(0, (o0 + pad_before - span + 1) // stride)
        i1 = min(in_size, (o1 - 1 + pad_before) // stride + 1)
        before = pad_before + o0 - i0 * stride
        # With no pad after, the window gives at most o1 - o0 rows (i1 reaches
        # far enough); pad after only to bring the smallest legal size down to it.
        after = max(0, legal_output_sizes(i1 - i0, kernel, stride, dilation, "EXPLICIT", before).start - (o1 - o0))
        index.append(np.arange(i0, i1))
        sizes.append(i1 - i0)
        pads.append((before, after))
    out_chunks = tuple(o1 - o0 for o0, o1 in zip(bounds, bounds[1:]))
    return _Windows(out_chunks, np.concatenate(index), tuple(sizes), tuple(pads))


def _block(x, filters, pads, call, block_info=None):
    """One output block: the in-memory call on its window, with its explicit padding."""
    block = block_info[None]
    padding = [pads[axis][i] if axis in pads else (0, 0) for axis, i in enumerate(block["chunk-location"])]
    return api.conv_transpose(x, filters, list(block["chunk-shape"]), padding=padding, **call)
