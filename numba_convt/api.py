"""The public functions: pick a backend, then run the call's plan (``_plan``).

``conv2d_transpose`` documents the arguments; ``conv1d_transpose``,
``conv3d_transpose`` and ``conv_transpose`` take the same ones for 1 and 3
spatial dimensions, through the same normalization, plans and backends.
"""

import collections.abc

import numpy as np

from ._plan import as_array, on_device, cached_plan, device_call
from ._registry import get_backend


def conv2d_transpose(input, filters, output_shape, strides, padding="SAME",
                     data_format="NHWC", dilations=None, name=None, *,
                     backend="auto", out=None, stream=None):
    """The transpose of ``conv2d``: TensorFlow's ``tf.nn.conv2d_transpose`` on NumPy arrays.

    This operation is sometimes called "deconvolution" after Deconvolutional
    Networks, but is actually the transpose (gradient) of ``conv2d`` rather
    than an actual deconvolution.

    The arguments, their rules and the results are TensorFlow 2.21's (float32
    within 2e-5 of the largest output, float64 within 1e-12, integers exact);
    what this function accepts beyond TensorFlow is marked *Beyond TF*.

    Parameters
    ----------
    input : array_like or device array
        A 4-D array of shape ``[batch, height, width, in_channels]`` for
        ``NHWC`` data format or ``[batch, in_channels, height, width]`` for
        ``NCHW`` data format. Anything ``numpy.asarray`` takes (views,
        Fortran order, read-only, non-native byte order). A device array (any
        object with ``__cuda_array_interface__``: CuPy, PyTorch, numba) is
        used in place by the ``"cuda"`` backend; ``filters`` and ``out`` must
        then be device arrays too.
    filters : array_like or device array
        A 4-D array of shape ``[height, width, output_channels, in_channels]``.
        ``filters``'s ``in_channels`` dimension must match that of ``input``.
        (*Beyond TF*: ``output_shape``'s channels may be a multiple of
        ``output_channels``, for groups; see Notes.)
    output_shape : sequence of int or 1-D integer array
        The output shape of the deconvolution op: 4 values in ``data_format``
        order, or 2 values ``[height, width]`` (batch from ``input``,
        channels ``filters.shape[2]``). It must be a shape that ``conv2d``
        with the same arguments maps back to the input's size; the error
        lists the sizes that are.
    strides : int or sequence of int
        Length 1, 2 or 4. The stride of the sliding window for each dimension
        of ``input``. If a single value is given it is replicated in the
        ``H`` and ``W`` dimension. With 4 values, in ``data_format`` order,
        the ``N`` and ``C`` entries must be 1. ``None`` means 1.
    padding : str or sequence, default "SAME"
        Either ``"VALID"`` or ``"SAME"`` (*Beyond TF*: in any letter case):
        the padding algorithm, as for ``conv2d``. Or explicit padding: four
        ``[before, after]`` pairs in ``data_format`` order, ``[0, 0]`` for
        ``N`` and ``C``.
    data_format : {"NHWC", "NCHW"}, default "NHWC"
        The layout of ``input``, ``output_shape`` and the result.
        (*Beyond TF*: TF's CPU kernel refuses ``NCHW``; here every backend
        takes it.)
    dilations : int or sequence of int, optional
        Length 1, 2 or 4, defaults to 1. The dilation factor for each
        dimension of ``input``. If a single value is given it is replicated
        in the ``H`` and ``W`` dimension. If set to ``k > 1``, there will be
        ``k - 1`` skipped cells between each filter element on that
        dimension. With 4 values, in ``data_format`` order, the ``N`` and
        ``C`` entries must be 1.
    name : str, optional
        Ignored; accepted for drop-in compatibility with TensorFlow.
    backend : str, default "auto"
        *Beyond TF*. One of :func:`numba_convt.available_backends`
        (``"cpu"``, ``"numpy"``, ``"cuda"`` where it can run, or one
        registered with :func:`numba_convt.register_backend`), or
        ``"auto"``: ``"cuda"`` for device arrays, else ``"cpu"``.
    out : numpy.ndarray or device array, optional
        *Beyond TF*. A C-contiguous array of the result's exact shape and
        dtype, not overlapping the inputs, to write the result into.
    stream : numba.cuda stream, optional
        *Beyond TF*. ``"cuda"`` backend only: the stream every copy and
        kernel is queued on. Host results are synchronized before returning;
        device results are not.

    Returns
    -------
    numpy.ndarray or numba device array
        Shape ``output_shape`` (4-D), dtype ``input``'s when ``filters``
        has it too, as in TF, else by the mixed-dtype table (Notes). ``out``
        when given. Device inputs give a numba device array.

    Raises
    ------
    ValueError
        If input/output depth does not match ``filters``'s shape, if padding
        is other than ``"VALID"``, ``"SAME"`` or valid explicit padding, and
        for every other argument TensorFlow refuses (an inconsistent
        ``output_shape``: the message lists the consistent sizes), a result
        larger than the machine's memory, an unknown backend, a wrong
        ``out``, or ``stream`` with a host backend. Raised before anything is
        allocated.
    TypeError
        For arguments of the wrong type or an unsupported dtype, host and
        device arrays mixed, or device arrays with a host backend.

    See Also
    --------
    plan : validate a call once, to run it on many arrays.
    warmup : compile the kernels before the first call.
    available_backends, register_backend : the backends.

    Notes
    -----
    With ``pad_top`` the forward convolution's padding (SAME: half of the
    total, the odd pixel going to the bottom; VALID: 0; explicit: given)::

        out[n, oy, ox, co] = sum x[n, iy, ix, ci] * filters[ky, kx, co, ci]
            over oy = iy*stride_h + ky*dilation_h - pad_top (ox likewise)

    *Beyond TF*, every backend computes what TF's GPU and oneDNN kernels
    define where TF's CPU kernel refuses: ``NCHW``, dilations with any
    stride, dtype and padding, and grouped convolution: ``G = out_channels /
    filters.shape[2]`` groups, group ``g`` mapping input channels
    ``[g*C_in/G, (g+1)*C_in/G)`` to output channels ``[g*filters.shape[2],
    (g+1)*filters.shape[2])``. Dtypes: float16, float32, float64, int32
    (TF's), and int64, complex64, complex128, and bfloat16 when
    ``ml_dtypes`` is installed. float16 and bfloat16 accumulate in float32,
    integers wrap like NumPy. Inputs are never modified.

    *Beyond TF*, ``input`` and ``filters`` may differ in dtype; the result's
    dtype (rows: ``input``, columns: ``filters``) is the same with every
    NumPy and ml_dtypes version (NumPy 2's promotion with ml_dtypes 0.7)::

                   float16    bfloat16   float32    float64    int32      int64      complex64  complex128
        float16    float16    float32    float32    float64    float64    float64    complex64  complex128
        bfloat16   float32    bfloat16   float32    float64    float64    float64    complex64  complex128
        float32    float32    float32    float32    float64    float64    float64    complex64  complex128
        float64    float64    float64    float64    float64    float64    float64    complex128 complex128
        int32      float64    float64    float64    float64    int32      int64      complex128 complex128
        int64      float64    float64    float64    float64    int64      int64      complex128 complex128
        complex64  complex64  complex64  complex64  complex128 complex128 complex128 complex64  complex128
        complex128 complex128 complex128 complex128 complex128 complex128 complex128 complex128 complex128

    The wider kind wins (integer < float < complex); an integer with a float
    or complex gives 64-bit parts; float16 with bfloat16 gives float32.

    The ``"cpu"`` backend runs on Numba's threads (``numba.set_num_threads``,
    ``NUMBA_NUM_THREADS``), its BLAS calls for float layers with many
    channels included, and gives bitwise identical results for any thread
    count (``docs/threads.md``). Its kernels compile on first use per dtype
    (cached on disk); :func:`numba_convt.warmup` does that ahead of time.

    Examples
    --------
    >>> import numpy as np
    >>> from numba_convt import conv2d_transpose
    >>> x = np.ones((1, 2, 2, 1), np.float32)          # NHWC
    >>> f = np.ones((3, 3, 1, 1), np.float32)          # [KH, KW, C_out, C_in]
    >>> conv2d_transpose(x, f, [1, 4, 4, 1], strides=2)[0, :, :, 0]
    array([[1., 1., 2., 1.],
           [1., 1., 2., 1.],
           [2., 2., 4., 2.],
           [1., 1., 2., 1.]], dtype=float32)

    ``output_shape`` as ``[height, width]``, NCHW, and the result written
    into ``out``:

    >>> x = np.arange(8.0).reshape(1, 2, 2, 2)         # NCHW: 2 channels
    >>> f = np.ones((2, 2, 3, 2))
    >>> out = np.empty((1, 3, 4, 4))
    >>> y = conv2d_transpose(x, f, [4, 4], 2, "VALID", data_format="NCHW", out=out)
    >>> y is out, y[0, 0]
    (True, array([[ 4.,  4.,  6.,  6.],
           [ 4.,  4.,  6.,  6.],
           [ 8.,  8., 10., 10.],
           [ 8.,  8., 10., 10.]]))

    Two groups: 4 input channels, 2 per group, to 2 x 1 output channels:

    >>> x = np.ones((1, 1, 1, 4), np.int32)
    >>> f = np.array([1, 10, 100, 1000], np.int32).reshape(1, 1, 1, 4)
    >>> conv2d_transpose(x, f, [1, 1, 1, 2], 1)
    array([[[[  11, 1100]]]], dtype=int32)
    """
    del name  # TF compatibility only
    return _call(2, input, filters, (output_shape, strides, padding, data_format, dilations), backend, out, stream)


def conv1d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NWC",
                     dilations=None, name=None, *, backend="auto", out=None, stream=None):
    """The transpose of ``conv1d``: TensorFlow's ``tf.nn.conv1d_transpose`` on NumPy arrays.

    :func:`conv2d_transpose` with one spatial dimension (TensorFlow runs it
    as 2-D with a unit height): the same rules, dtypes, groups, backends,
    ``out`` and ``stream``.

    Parameters
    ----------
    input : array_like or device array
        ``[batch, width, in_channels]`` (``NWC``) or ``[batch, in_channels,
        width]`` (``NCW``).
    filters : array_like or device array
        ``[width, output_channels, in_channels]``.
    output_shape : sequence of int or 1-D integer array
        3 values in ``data_format`` order (no spatial-only form).
    strides, dilations : int or sequence of int
        Length 1 or 3 (3 in ``data_format`` order, the ``N`` and ``C``
        entries 1: TensorFlow reads them differently, and ignores some; here
        they must be 1). ``None`` means 1.
    padding : str or sequence, default "SAME"
        ``"SAME"`` or ``"VALID"`` (any letter case). *Beyond TF*: three
        ``[before, after]`` pairs in ``data_format`` order.
    data_format : {"NWC", "NCW"}, default "NWC"
        *Beyond TF*: TF's CPU kernel refuses ``NCW`` for most dtypes; every backend takes it.
    name : str, optional
        Ignored.
    backend, out, stream
        As for :func:`conv2d_transpose`.

    Returns
    -------
    numpy.ndarray or numba device array
        Shape ``output_shape``; dtypes as for :func:`conv2d_transpose`.

    Raises
    ------
    ValueError, TypeError
        As for :func:`conv2d_transpose`.

    Examples
    --------
    >>> import numpy as np
    >>> from numba_convt import conv1d_transpose
    >>> x = np.array([[[1.0], [2.0], [3.0]]])               # NWC: 3 samples, 1 channel
    >>> f = np.ones((3, 1, 1))                               # [K, C_out, C_in]
    >>> conv1d_transpose(x, f, [1, 6, 1], strides=2)[0, :, 0]
    array([1., 1., 3., 2., 5., 3.])
    """
    del name  # TF compatibility only
    return _call(1, input, filters, (output_shape, strides, padding, data_format, dilations), backend, out, stream)


def conv3d_transpose(input, filters, output_shape, strides, padding="SAME", data_format="NDHWC",
                     dilations=None, name=None, *, backend="auto", out=None, stream=None):
    """The transpose of ``conv3d``: TensorFlow's ``tf.nn.conv3d_transpose`` on NumPy arrays.

    :func:`conv2d_transpose` with a depth axis: the same rules, dtypes,
    groups, backends, ``out`` and ``stream``.

    Parameters
    ----------
    input : array_like or device array
        ``[batch, depth, height, width, in_channels]`` (``NDHWC``) or
        ``[batch, in_channels, depth, height, width]`` (``NCDHW``).
    filters : array_like or device array
        ``[depth, height, width, output_channels, in_channels]``.
    output_shape : sequence of int or 1-D integer array
        5 values in ``data_format`` order (no spatial-only form).
    strides, dilations : int or sequence of int
        Length 1, 3 (depth, height, width) or 5 (``data_format`` order, the
        ``N`` and ``C`` entries 1). ``None`` means 1.
    padding : str or sequence, default "SAME"
        ``"SAME"`` or ``"VALID"`` (any letter case). *Beyond TF*: five
        ``[before, after]`` pairs in ``data_format`` order.
    data_format : {"NDHWC", "NCDHW"}, default "NDHWC"
        *Beyond TF*: TF's CPU kernel refuses ``NCDHW``; every backend takes it.
    name : str, optional
        Ignored.
    backend, out, stream
        As for :func:`conv2d_transpose`.

    Returns
    -------
    numpy.ndarray or numba device array
        Shape ``output_shape``; dtypes as for :func:`conv2d_transpose`.

    Raises
    ------
    ValueError, TypeError
        As for :func:`conv2d_transpose`.

    Notes
    -----
    *Beyond TF* (TF's CPU kernel refuses them): dilations, groups
    (``output_shape``'s channels a multiple of ``filters.shape[3]``), and
    the integer and complex dtypes.

    Examples
    --------
    >>> import numpy as np
    >>> from numba_convt import conv3d_transpose
    >>> x = np.ones((1, 2, 2, 2, 1), np.float32)           # NDHWC
    >>> f = np.ones((2, 2, 2, 1, 1), np.float32)           # [KD, KH, KW, C_out, C_in]
    >>> y = conv3d_transpose(x, f, [1, 4, 4, 4, 1], strides=2)
    >>> y.shape, float(y.sum())
    ((1, 4, 4, 4, 1), 64.0)
    """
    del name  # TF compatibility only
    return _call(3, input, filters, (output_shape, strides, padding, data_format, dilations), backend, out, stream)


def conv_transpose(input, filters, output_shape, strides, padding="SAME", data_format=None,
                   dilations=None, name=None, *, backend="auto", out=None, stream=None):
    """TensorFlow's ``tf.nn.conv_transpose``: the 1-D, 2-D or 3-D op by ``len(output_shape)``.

    ``output_shape`` of 3, 4 or 5 values calls :func:`conv1d_transpose`,
    :func:`conv2d_transpose` or :func:`conv3d_transpose` with every other
    argument unchanged (``data_format=None``: that function's default).
    The input's rank is not consulted: a mismatch is that function's error.

    Parameters
    ----------
    input, filters, output_shape, strides, padding, data_format, dilations, name, backend, out, stream
        As for the function of that rank.

    Returns
    -------
    numpy.ndarray or numba device array
        As for the function of that rank.

    Raises
    ------
    ValueError
        If ``output_shape`` is not a sized collection of 3, 4 or 5 values,
        and as for the function of that rank.

    Examples
    --------
    >>> import numpy as np
    >>> from numba_convt import conv_transpose
    >>> x, f = np.ones((2, 4, 3)), np.ones((2, 5, 3))       # 1-D: NWC input, [K, C_out, C_in]
    >>> conv_transpose(x, f, [2, 8, 5], strides=2).shape
    (2, 8, 5)
    """
    del name  # TF compatibility only
    args = (output_shape, strides, padding, data_format, dilations)
    return _call(rank_of(output_shape), input, filters, args, backend, out, stream)


def rank_of(output_shape):
    """The spatial rank ``conv_transpose`` picks: ``len(output_shape) - 2``, or
    ValueError (TF's messages) unless it is 1, 2 or 3."""
    sized = isinstance(output_shape, collections.abc.Sized) and not isinstance(output_shape, (str, bytes))
    if not sized or (isinstance(output_shape, np.ndarray) and output_shape.ndim != 1):
        raise ValueError(
            f"`output_shape` must be a tensor or sized collection. Received: output_shape={output_shape!r}")
    if len(output_shape) not in (3, 4, 5):
        raise ValueError(f"`output_shape` must be of length 3, 4 or 5. Received: output_shape={output_shape!r} "
                         f"of length {len(output_shape)}.")
    return len(output_shape) - 2


def _call(rank, input, filters, args, backend, out, stream):
    """Run a ``rank``-D call: on the device for device arrays, else through a cached plan."""
    device = on_device(input, filters, out)
    auto = isinstance(backend, str) and backend.lower() == "auto"
    chosen = get_backend("cuda" if device and auto else backend)
    args = (*args, rank)
    if device:
        return device_call(chosen, input, filters, args, out, stream)
    input, filters = as_array(input, "input"), as_array(filters, "filters")
    return cached_plan(chosen, input, filters, args).run_host(input, filters, out, stream)
