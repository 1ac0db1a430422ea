"""Make Numba's ``tbb`` threading layer loadable from the ``tbb`` wheel.

Numba's thread pool is one of three layers, tried in the order ``tbb``,
``omp``, ``workqueue`` (``NUMBA_THREADING_LAYER`` and
``NUMBA_THREADING_LAYER_PRIORITY`` change that). On a busy machine the
layer decides the speed of a parallel call: ``omp`` and ``workqueue`` end it
only when each of their threads has done its share, so a thread whose core
another process holds stalls the call for scheduler time slices, while
``tbb``'s calling thread runs the shares of late threads itself (measured
in ``docs/threads.md``). ``tbb`` pools also restart in forked children.

The ``tbb`` wheel, a dependency on Linux x86-64, puts ``libtbb.so.12`` in the
environment's ``lib`` directory, where Numba's ``tbbpool`` extension does not
look. Loading it first, by path, lets that extension link to it. This
changes nothing where the layer was already chosen, where a TBB library is
already found, or where the user's settings pick another layer."""

import ctypes
import os
import site
import sys

_LIBRARY = "libtbb.so.12"


def preload():
    """Load the ``tbb`` wheel's library where Numba's ``tbb`` layer cannot find one itself.

    Returns
    -------
    str or None
        The path loaded, or None (not Linux, a TBB library already found, or no wheel).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import numba.np.ufunc.tbbpool  # noqa: F401  (only loads it: the pool starts on the first parallel call)
    except ImportError:
        for base in (sys.prefix, site.getuserbase()):
            path = os.path.join(base, "lib", _LIBRARY)
            if os.path.exists(path):
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return path
    return None
