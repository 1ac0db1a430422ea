"""``conv2d_transpose`` on a chunked ``dask.array``: lazy, block by block.

Each output block is the in-memory :func:`numba_convt.conv2d_transpose` of
the input window (with halo) whose pixels land on it, with explicit padding
chosen so that the block equals its slice of the full output. Dask is
imported only when the function is called: ``pip install numba-convt[dask]``.
"""

import math
from dataclasses import dataclass

import numpy as np

from . import api
from ._normalize import legal_output_sizes, normalize
from ._plan import as_array
from ._registry import get_backend

__all__ = ["conv2d_transpose"]


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
    spec = normalize(input, filters, output_shape, strides, padding, data_format, dilations)
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
    h_axis, w_axis, c_axis = (1, 2, 3) if spec.data_format == "NHWC" else (2, 3, 1)
    x = input.rechunk({c_axis: -1})
    rows = _windows(x.chunks[h_axis], spec.out_h, spec.k_h, spec.stride_h, spec.dil_h, spec.pad_top)
    cols = _windows(x.chunks[w_axis], spec.out_w, spec.k_w, spec.stride_w, spec.dil_w, spec.pad_left)
    for axis, windows in ((h_axis, rows), (w_axis, cols)):  # one chunk per output block's window
        x = x[(slice(None),) * axis + (windows.index,)].rechunk({axis: windows.sizes})
    chunks = [x.chunks[0], None, None, None]
    chunks[h_axis], chunks[w_axis], chunks[c_axis] = rows.out_chunks, cols.out_chunks, (spec.out_c,)
    call = dict(strides=[spec.stride_h, spec.stride_w], data_format=spec.data_format,
                dilations=[spec.dil_h, spec.dil_w], backend=backend)
    return x.map_blocks(_block, filters, {h_axis: rows.pads, w_axis: cols.pads}, call,
                        chunks=tuple(chunks), dtype=spec.dtype, meta=np.empty((0,) * 4, spec.dtype))


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
    return api.conv2d_transpose(x, filters, list(block["chunk-shape"]), padding=padding, **call)
