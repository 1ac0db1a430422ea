"""NumPy's own OpenBLAS, for the ``"cpu"`` backend's Numba kernels.

Numba's ``np.dot`` needs SciPy, and a GEMM called from Python (NumPy's
``matmul``) cannot run inside a ``prange``. NumPy's PyPI wheels ship OpenBLAS
with CBLAS entry points, so the kernels take its ``gemm`` as a ctypes function
and call it from every Numba thread, on that thread's own band of rows, while
:class:`threads` keeps OpenBLAS from adding threads of its own
(oversubscribed, they cost 10-50x on 2 cores: measured); a layer of fewer
tasks than cores instead runs them one after another, each GEMM on every
thread. Without such a
library (NumPy from conda, or built against MKL), :func:`gemm` returns None
and the backend uses its direct kernels.
"""

import ctypes
import functools
import glob
import os
import threading

import numpy as np

# (library file patterns relative to the numpy package, symbol prefix, suffix):
# NumPy >= 2 wheels ship scipy-openblas64, NumPy 1.2x wheels openblas64_.
_LIBRARIES = (
    (("../numpy.libs/libscipy_openblas64_*", ".dylibs/libscipy_openblas64_*"), "scipy_", "64_"),
    (("../numpy.libs/libopenblas64_*", ".dylibs/libopenblas64_*"), "", "64_"),
)
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS enums
_LETTERS = {"float32": "s", "float64": "d", "complex64": "c", "complex128": "z"}


@functools.cache
def _library():
    """(CDLL, prefix, suffix) of NumPy's OpenBLAS, or None."""
    here = os.path.dirname(np.__file__)
    for patterns, prefix, suffix in _LIBRARIES:
        for path in (p for pattern in patterns for p in sorted(glob.glob(os.path.join(here, pattern)))):
            try:
                library = ctypes.CDLL(path)
                getattr(library, f"{prefix}openblas_set_num_threads{suffix}")
                return library, prefix, suffix
            except (OSError, AttributeError):
                continue
    return None


@functools.cache
def gemm(dtype):
    """``cblas_?gemm`` for ``dtype`` (ILP64), or None: ``(layout, trans_a,
    trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)`` with pointers as
    integers; ``alpha`` and ``beta`` by value, or by address for complex."""
    found, letter = _library(), _LETTERS.get(np.dtype(dtype).name)
    if found is None or letter is None:
        return None
    library, prefix, suffix = found
    function = getattr(library, f"{prefix}cblas_{letter}gemm{suffix}", None)
    if function is None:
        return None
    i, p = ctypes.c_int, ctypes.c_int64
    scalar = {"s": ctypes.c_float, "d": ctypes.c_double}.get(letter, ctypes.c_void_p)
    pointer = ctypes.c_void_p
    # A ctypes function of a class of its own: Numba's dispatcher caches the type
    # of a ctypes function by its Python class, which a CDLL's functions share
    # (and ctypes's prototypes of one signature: complex64 and complex128), so a
    # kernel called with a second dtype's gemm took Numba's slow dispatch path on
    # every call (~0.25 ms, measured).
    prototype = ctypes.CFUNCTYPE(None, i, i, i, p, p, p, scalar, pointer, p, pointer, p, scalar, pointer, p)
    own = type(f"{letter}gemm", (prototype,), {name: getattr(prototype, name)
                                                for name in ("_flags_", "_argtypes_", "_restype_")})
    return own(ctypes.cast(function, ctypes.c_void_p).value)


_lock = threading.Lock()
_users = 0
_saved = None


def _set_threads(count):
    library, prefix, suffix = _library()
    getattr(library, f"{prefix}openblas_set_num_threads{suffix}")(count)


def _after_fork_in_child():
    """A parent thread inside a call at the fork never leaves it here: restore
    its saved count and free the lock, which a forked child would wait on forever."""
    global _lock, _users
    if _users:
        _set_threads(_saved)
    _lock, _users = threading.Lock(), 0


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


class threads:
    """Context: OpenBLAS runs each call on ``count`` threads (1: its caller's
    only; more: a GEMM that runs alone, see ``_gemm._run_blas``).

    OpenBLAS's thread count is process-wide, so concurrent users share one
    count: the first sets its own and the last restores what it found (a
    concurrent user wanting another count gets the first's: the same results,
    at another speed).
    """

    def __init__(self, count):
        self.count = count

    def __enter__(self):
        global _users, _saved
        library, prefix, suffix = _library()
        with _lock:
            if _users == 0:
                _saved = getattr(library, f"{prefix}openblas_get_num_threads{suffix}")()
                _set_threads(self.count)
            _users += 1
        return self

    def __exit__(self, *exc):
        global _users
        with _lock:
            _users -= 1
            if _users == 0:
                _set_threads(_saved)
