"""Scalar index math shared by the compiled backends, written once and undecorated.

Each backend compiles these for its own target (``numba.njit(inline="always")``
in ``backends/cpu/``, ``cuda.jit(device=True, inline="always")`` in
``backends/cuda.py``), so the CPU and CUDA kernels cannot drift apart, and the
functions stay testable as plain Python. The NumPy reference backend must not
use them: it is the independent oracle.
"""


def input_coord(o, k, pad, stride, dil, in_size):
    """The input index that tap ``k`` brings to output index ``o``, or -1.

    Parameters
    ----------
    o : int
        Output row (or column) in the cropped output.
    k : int
        Filter tap row (or column).
    pad : int
        Forward padding before that axis (``pad_top`` or ``pad_left``).
    stride, dil : int
        Stride and dilation along that axis.
    in_size : int
        Input height (or width).

    Returns
    -------
    int
        ``i`` with ``o == i*stride + k*dil - pad`` and ``0 <= i < in_size``, or
        -1 when that tap contributes nothing to ``o``.

    Examples
    --------
    >>> input_coord(3, 1, 0, 2, 1, 4), input_coord(2, 1, 0, 2, 1, 4)
    (1, -1)
    """
    t = o + pad - k * dil
    i = t // stride
    if t < 0 or i * stride != t or i >= in_size:
        return -1
    return i


def first_tap(o, k_size, pad, stride, dil, step):
    """The first filter tap that reaches output index ``o``, or ``k_size`` if none.

    Tap ``k`` reaches ``o`` when ``o + pad - k*dil`` is a multiple of
    ``stride``. Those taps are ``k0, k0 + step, k0 + 2*step, ...`` with
    ``step = stride // gcd(stride, dil)``, so only ``k < step`` need a test:
    a kernel then visits just the taps of ``o``'s phase.

    Examples
    --------
    >>> first_tap(3, 4, 0, 2, 1, 2), first_tap(2, 4, 0, 2, 1, 2), first_tap(1, 4, 0, 2, 2, 1)
    (1, 0, 4)
    """
    for k in range(min(step, k_size)):
        if (o + pad - k * dil) % stride == 0:
            return k
    return k_size
