"""``warmup``: compile (or load from Numba's disk cache) the kernels ahead of the first call."""

import time

import numba
import numpy as np

from ._normalize import as_dtype, is_supported, supported_dtypes
from ._registry import get_backend
from .api import conv1d_transpose, conv2d_transpose, conv3d_transpose

# Small calls, (input shape channels-last, filters shape, output_shape,
# strides, padding, filter value, layout), whose sizes select each path of the "cpu"
# backend (backends/cpu/, ``plan``): BLAS for float/complex with C_in >= 16
# and >= 64 input pixels (fewer where its GEMM outweighs its call; else direct
# loops), in the sub-pixel form when the
# kernel is a multiple > 1 of the stride with few edge blocks; but for float
# with C_out >= 16 and 16 or more pixels per row phase the register-tiled
# kernel, unless a filter value is not finite, and for NHWC float with
# C_out < 16 the dot kernel; below BLAS, the cheapest of the direct loops,
# the tile and the dot kernel; serial kernels below ~2**17 multiply-adds,
# parallel above. Each case sits well inside its
# region; every backend runs them all (integers take the direct paths).
_ALIGNED = [[0, 0], [2, 2], [2, 2], [0, 0]]  # kernel 4, stride 2: no edge blocks
_CORES = numba.config.NUMBA_DEFAULT_NUM_THREADS  # BLAS in parallel takes a task per core (else GEMMs alone)
_NAN = float("nan")
_CASES = (
    ((1, 3, 3, 1), (3, 3, 1, 1), [6, 6], 2, "SAME", 0, "NHWC"),  # direct serial, inner loop over pixels
    ((1, 128, 128, 1), (4, 4, 1, 1), [256, 256], 2, "SAME", 0, "NHWC"),  # direct parallel
    ((1, 32, 32, 4), (4, 4, 16, 4), [64, 64], 2, "SAME", 0, "NHWC"),  # tiled parallel, few input channels
    ((1, 4, 16, 16), (2, 2, 16, 16), [4, 16], 1, "SAME", 0, "NHWC"),  # tiled serial (16 pixels per row phase)
    ((1, 8, 32, 64), (3, 3, 256, 64), [16, 64], 2, "SAME", 0, "NHWC"),  # tiled parallel, many output channels
    ((1, 8, 8, 16), (2, 2, 16, 16), [8, 8], 1, "SAME", _NAN, "NHWC"),  # BLAS serial, gather by channels
    ((1, 8, 8, 16), (2, 2, 8, 16), [8, 8], 1, "SAME", 0, "NCHW"),  # BLAS, C_out < 16: gather by pixels
    ((_CORES, 16, 16, 16), (3, 3, 16, 16), [32, 32], 2, "SAME", _NAN, "NHWC"),  # BLAS parallel
    ((1, 8, 8, 16), (2, 2, 1, 16), [8, 8], 1, "SAME", 0, "NHWC"),  # dot serial
    ((1, 32, 32, 16), (3, 3, 8, 16), [64, 64], 2, "SAME", 0, "NHWC"),  # dot parallel
    ((1, 8, 8, 16), (4, 4, 4, 16), [14, 14], 2, _ALIGNED, 0, "NCHW"),  # BLAS sub-pixel serial
    ((_CORES, 16, 16, 16), (4, 4, 4, 16), [30, 30], 2, _ALIGNED, 0, "NCHW"),  # BLAS sub-pixel parallel
    ((1, 3, 3, 2), (3, 3, 2, 2), [6, 6], 2, "SAME", 0, "NCHW"),  # direct, NCHW: the layout copies
    # the direct loops' other inner loops, one build each: over output channels (floats: the tiled
    # kernel's fallback) and over input channels (floats: the dot kernel; complex: direct)
    ((1, 4, 16, 4), (2, 2, 16, 4), [4, 16], 1, "SAME", _NAN, "NHWC"),
    ((1, 3, 3, 16), (3, 3, 2, 16), [6, 6], 2, "SAME", 0, "NHWC"),
    # 1-D and 3-D calls run the kernels above (a unit height; a 2-D call per depth tap): after the cases
    # above they compile nothing (tests/test_warmup.py). These keep them warmed should a rank get its own.
    ((1, 5, 2), (3, 2, 2), [1, 2, 10], 2, "SAME", 0, "NCW"),
    ((1, 2, 3, 3, 2), (3, 3, 3, 2, 2), [1, 2, 4, 6, 6], 2, "SAME", 0, "NCDHW"),
)
_FUNCTIONS = {3: conv1d_transpose, 4: conv2d_transpose, 5: conv3d_transpose}  # by the input's rank
_DEFAULT_DTYPES = ("float32", "float64")


def warmup(dtypes=None, backends=None):
    """Compile ahead of time the kernels that later calls would compile.

    Numba compiles each kernel on its first call for a dtype: for the
    ``"cpu"`` backend, seconds per dtype with an empty cache (11-12 s for
    float32 measured on a 2-core machine), a fraction of a second to load it from
    Numba's on-disk cache in a new process. ``warmup`` pays that cost now,
    e.g. at a server's start-up, by running every code path of the chosen
    backends on small inputs.

    Parameters
    ----------
    dtypes : dtype-like or sequence of dtype-like, optional
        Result dtypes to prepare, default ``("float32", "float64")``. float16
        and bfloat16 compute with the float32 kernels.
    backends : str or sequence of str, optional
        Backend names as for :func:`numba_convt.conv2d_transpose`, default
        ``"auto"``'s host backend (``"cpu"``).

    Returns
    -------
    dict
        Seconds spent, keyed by ``(backend name, dtype name)``.

    Raises
    ------
    ValueError
        For an unknown or unavailable backend (the message lists the
        available ones).
    TypeError
        For a backend that is not a string, or a dtype that is not one or is
        not supported (the message lists the supported ones).

    See Also
    --------
    available_backends : the backend names usable here.

    Notes
    -----
    Warmed kernels serve every rank (1-D, 2-D, 3-D), shape, stride,
    padding, dilation, layout and group count of the warmed dtypes.
    Read-only inputs (Numba types them apart) and mixed input/filters dtypes
    whose promoted dtype was not warmed still compile on first use.

    Examples
    --------
    >>> import numba_convt
    >>> seconds = numba_convt.warmup(dtypes=["float32"])
    >>> sorted(seconds)
    [('cpu', 'float32')]
    """
    names = resolve_backends(backends)
    kinds = resolve_dtypes(_DEFAULT_DTYPES if dtypes is None else dtypes)
    seconds = {}
    for name in names:
        for dtype in kinds:
            start = time.perf_counter()
            for x_shape, f_shape, output_shape, strides, padding, value, layout in _CASES:
                x = np.zeros(x_shape, dtype)
                f = np.full(f_shape, value if dtype.kind not in "biu" else 0).astype(dtype)
                if layout[1] == "C":  # channels first
                    x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
                    padding = padding if isinstance(padding, str) else [padding[0], padding[-1], *padding[1:-1]]
                _FUNCTIONS[x.ndim](x, f, output_shape, strides, padding, layout, backend=name)
            seconds[name, dtype.name] = time.perf_counter() - start
    return seconds


def resolve_backends(backends):
    """Distinct backend names from a name, a list of names, or None ("auto");
    :func:`get_backend` raises for bad ones."""
    if not isinstance(backends, (list, tuple)):
        backends = ["auto" if backends is None else backends]
    return list(dict.fromkeys(get_backend(name).name for name in backends))


def resolve_dtypes(dtypes, what="dtypes"):
    """Distinct supported dtypes from one dtype-like or a list of them;
    TypeError naming ``what`` for anything else."""
    if not isinstance(dtypes, (list, tuple)):
        dtypes = [dtypes]
    result = []
    for value in dtypes:
        try:
            dtype = as_dtype(value).newbyteorder("=")
        except (TypeError, ValueError):
            raise TypeError(f"{what}: {value!r} is not a dtype; accepted: {_accepted()}") from None
        if not is_supported(dtype):
            raise TypeError(f"{what}: {dtype} is not supported; accepted: {_accepted()}")
        result.append(dtype)
    return list(dict.fromkeys(result))


def _accepted():
    return ", ".join(str(d) for d in supported_dtypes())
