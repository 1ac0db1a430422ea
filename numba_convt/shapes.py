"""Output shapes for the transposed convolutions, without arrays.

``conv2d_transpose`` (and its 1-D and 3-D siblings) needs an explicit ``output_shape`` because several
output sizes map back to the same input size. These helpers give the one that
Keras, JAX and PyTorch pick, or every size TensorFlow's rule accepts.
They check their arguments with the same rules and messages as
``conv2d_transpose`` itself.
"""

from ._normalize import (
    _AXES, _groups, _integer, _window, check_shapes, default_output_size, inconsistent_size_message,
    from_channels_last, input_rank, int_list, legal_output_sizes, padding_kind, to_channels_last, window_args,
)


def conv2d_transpose_output_shape(input_shape, filters_shape, strides, padding="SAME",
                                  data_format="NHWC", dilations=None, output_padding=None, groups=1):
    """The output shape Keras, JAX and PyTorch give, ready for ``conv2d_transpose``.

    Parameters
    ----------
    input_shape : sequence of int
        The input's shape in ``data_format`` order, e.g. ``x.shape``.
    filters_shape : sequence of int
        ``[KH, KW, C_out / groups, C_in]``, as for ``conv2d_transpose``.
    strides, padding, data_format, dilations
        As for :func:`numba_convt.conv2d_transpose`; pass the same values to it.
    output_padding : int or sequence of int, optional
        Extra rows/columns at the bottom/right: an int or ``[h, w]``. ``None``
        (default) picks the size as Keras's ``Conv2DTranspose`` and
        ``jax.lax.conv_transpose`` do; an int as Keras and PyTorch do with
        their ``output_padding`` (see Notes).
    groups : int, default 1
        The output has ``groups * filters_shape[2]`` channels.

    Returns
    -------
    tuple of int
        4 values in ``data_format`` order, accepted by ``conv2d_transpose`` as
        ``output_shape`` with the same other arguments.

    Raises
    ------
    ValueError, TypeError
        For arguments ``conv2d_transpose`` would refuse, and when the size
        asked for is not one TensorFlow's rule accepts (the message lists
        those that are; see :func:`conv2d_transpose_output_sizes`).

    Notes
    -----
    Per spatial dimension, with ``E = (K - 1) * dilation + 1``::

        padding    output_padding=None             output_padding=p
        SAME       in * stride                     (in - 1) * stride + E - 2 * (E // 2) + p
        VALID      in * stride + max(E - S, 0)     (in - 1) * stride + E + p
        explicit   (in - 1) * stride + E - before - after (+ p)

    The ``p`` column is Keras's ``output_padding`` rule for SAME and VALID,
    and PyTorch's ``conv_transpose2d`` size for explicit ``[pad, pad]``
    pairs. TensorFlow's rule accepts ``0 <= p < stride``, except for SAME
    with an even ``E``: ``1 <= p <= stride`` (Keras's default ``p = 0``
    fails there in TensorFlow too).

    Examples
    --------
    >>> from numba_convt import conv2d_transpose_output_shape
    >>> conv2d_transpose_output_shape((8, 16, 16, 128), (4, 4, 64, 128), strides=2)
    (8, 32, 32, 64)
    >>> conv2d_transpose_output_shape((8, 16, 16, 128), (3, 3, 64, 128), 2, "VALID")
    (8, 33, 33, 64)

    PyTorch's ``conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)``
    on an NCHW ``x`` of shape ``(1, 4, 5, 5)`` and ``w`` of shape
    ``(4, 6, 3, 3)`` (filters ``w.transpose(2, 3, 1, 0)``):

    >>> conv2d_transpose_output_shape((1, 4, 5, 5), (3, 3, 6, 4), 2, [[0, 0], [0, 0], [1, 1], [1, 1]],
    ...                               "NCHW", output_padding=1)
    (1, 6, 10, 10)
    """
    return _output_shape(2, input_shape, filters_shape, strides, padding, data_format, dilations, output_padding,
                         groups)


def conv_transpose_output_shape(input_shape, filters_shape, strides, padding="SAME", data_format=None,
                                dilations=None, output_padding=None, groups=1):
    """:func:`conv2d_transpose_output_shape` for 1, 2 or 3 spatial dimensions.

    The rank is that of ``input_shape`` (3, 4 or 5 values), as for
    :func:`numba_convt.plan`; ``data_format`` defaults to the rank's
    channels-last one (``NWC``, ``NHWC``, ``NDHWC``).

    Parameters
    ----------
    input_shape, filters_shape, strides, padding, data_format, dilations, output_padding, groups
        As for :func:`conv2d_transpose_output_shape`, with one entry per
        spatial axis; ``output_padding`` an int or one value per spatial axis.

    Returns
    -------
    tuple of int
        ``len(input_shape)`` values in ``data_format`` order.

    Examples
    --------
    Keras's ``Conv1DTranspose(8, 3, strides=2)`` and ``Conv3DTranspose(4, 3, strides=2, padding="valid")``:

    >>> from numba_convt import conv_transpose_output_shape
    >>> conv_transpose_output_shape((1, 50, 2), (3, 8, 2), strides=2)
    (1, 100, 8)
    >>> conv_transpose_output_shape((1, 4, 5, 6, 2), (3, 3, 3, 4, 2), 2, "VALID")
    (1, 9, 11, 13, 4)

    PyTorch's ``conv_transpose1d(x, w, stride=2, padding=1, output_padding=1)``, ``x`` NCW:

    >>> conv_transpose_output_shape((1, 4, 5), (3, 6, 4), 2, [[0, 0], [0, 0], [1, 1]], "NCW", output_padding=1)
    (1, 6, 10)
    """
    return _output_shape(_rank(input_shape), input_shape, filters_shape, strides, padding, data_format, dilations,
                         output_padding, groups)


def _output_shape(rank, input_shape, filters_shape, strides, padding, data_format, dilations, output_padding,
                  groups):
    data_format, strides, dilations, pads, input_shape, filters_shape = _arguments(
        rank, input_shape, filters_shape, strides, padding, data_format, dilations)
    batch, *in_sizes, in_c = to_channels_last(input_shape, data_format)
    extra = [None] * rank if output_padding is None else _window(
        output_padding, "output_padding", data_format, minimum=0, outer=0)
    groups = _group_count(groups, in_c, input_shape, filters_shape)
    kind = padding_kind(padding)
    sizes = [
        _size(name, kind, *dim)
        for name, *dim in zip(_AXES[rank], in_sizes, filters_shape[:rank], strides, dilations, pads, extra)
    ]
    return from_channels_last((batch, *sizes, groups * filters_shape[rank]), data_format)


def conv2d_transpose_output_sizes(input_shape, filters_shape, strides, padding="SAME",
                                  data_format="NHWC", dilations=None):
    """Every output height and width ``conv2d_transpose`` accepts for this input.

    These are the sizes whose forward ``conv2d`` (TensorFlow's rule, with its
    truncating division) gives back the input's size. Any of them may be used
    in ``output_shape``; the extra rows/columns over the smallest one are the
    ones PyTorch and Keras add with ``output_padding``.

    Parameters
    ----------
    input_shape, filters_shape, strides, padding, data_format, dilations
        As for :func:`conv2d_transpose_output_shape`.

    Returns
    -------
    tuple of range
        ``(heights, widths)``; a range is empty when no size fits (explicit
        padding larger than the kernel reaches).

    Examples
    --------
    >>> from numba_convt import conv2d_transpose_output_sizes
    >>> conv2d_transpose_output_sizes((8, 16, 16, 128), (3, 3, 64, 128), strides=2)
    (range(31, 33), range(31, 33))
    >>> heights, widths = conv2d_transpose_output_sizes((1, 6, 5, 1), (3, 3, 1, 1), [2, 3], "VALID")
    >>> list(heights), list(widths)
    ([13, 14], [15, 16, 17])
    """
    return _output_sizes(2, input_shape, filters_shape, strides, padding, data_format, dilations)


def conv_transpose_output_sizes(input_shape, filters_shape, strides, padding="SAME", data_format=None,
                                dilations=None):
    """:func:`conv2d_transpose_output_sizes` for 1, 2 or 3 spatial dimensions.

    Parameters
    ----------
    input_shape, filters_shape, strides, padding, data_format, dilations
        As for :func:`conv_transpose_output_shape`.

    Returns
    -------
    tuple of range
        One range per spatial axis, in depth, height, width order.

    Examples
    --------
    >>> from numba_convt import conv_transpose_output_sizes
    >>> conv_transpose_output_sizes((1, 6, 1), (3, 1, 1), 2, "VALID")
    (range(13, 15),)
    """
    return _output_sizes(_rank(input_shape), input_shape, filters_shape, strides, padding, data_format, dilations)


def _output_sizes(rank, input_shape, filters_shape, strides, padding, data_format, dilations):
    data_format, strides, dilations, pads, input_shape, filters_shape = _arguments(
        rank, input_shape, filters_shape, strides, padding, data_format, dilations)
    _, *in_sizes, _ = to_channels_last(input_shape, data_format)
    kind = padding_kind(padding)
    return tuple(
        legal_output_sizes(size, kernel, stride, dilation, kind, *pad)
        for size, kernel, stride, dilation, pad in zip(in_sizes, filters_shape[:rank], strides, dilations, pads)
    )


def _rank(input_shape):
    """The spatial rank of a 3, 4 or 5 value ``input_shape``."""
    return input_rank(int_list(input_shape, "input_shape"))


def _arguments(rank, input_shape, filters_shape, strides, padding, data_format, dilations):
    """The validated arguments, shapes as int tuples."""
    data_format, strides, dilations, pads = window_args(strides, padding, data_format, dilations, rank)
    shapes = []
    for value, what in ((input_shape, "input_shape"), (filters_shape, "filters_shape")):
        shape = tuple(int_list(value, what))
        if shape and min(shape) < 0:
            raise ValueError(f"{what}={shape} entries must be >= 0")
        shapes.append(shape)
    check_shapes(*shapes, data_format, "input_shape", "filters_shape")
    return data_format, strides, dilations, pads, *shapes


def _group_count(groups, in_c, input_shape, filters_shape):
    """``groups`` as an int dividing the input channels, checked as ``conv2d_transpose`` would."""
    groups = _integer(groups, "groups")
    if groups < 1 or in_c % groups:
        raise ValueError(f"groups={groups} must be a positive divisor of the input channels {in_c}")
    group_out_c, filter_in_c = filters_shape[-2:]
    return _groups(groups * group_out_c, group_out_c, in_c, filter_in_c, filters_shape, input_shape)


def _size(name, kind, in_size, kernel, stride, dilation, pads, output_padding):
    """One spatial output size, refused unless TensorFlow's rule accepts it."""
    size = default_output_size(in_size, kernel, stride, dilation, kind, pads, output_padding)
    legal = legal_output_sizes(in_size, kernel, stride, dilation, kind, *pads)
    if size not in legal:
        origin = "" if output_padding is None else f" from output_padding {output_padding}"
        raise ValueError(inconsistent_size_message(
            f"output {name} {size}{origin}", name, kind, in_size, kernel, stride, dilation, pads, legal))
    return size
