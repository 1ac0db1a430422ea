"""Scratch arrays that each thread keeps between calls.

A new array of a few MiB pays its page faults on every call: the allocator
hands large blocks back to the system when they are freed (two fresh 4 MiB
arrays filled: 1.8-3.7 ms on the development machine, more than many
layers' kernels). Scratch that never leaves a call (channels-last copies
of a channels-first call, a 3-D call's depth-tap shares) is therefore kept
per thread and per use, up to ``KEPT_BYTES`` each, and reused when the next
call needs no more; larger scratch is allocated afresh.
"""

import math
import threading

import numpy as np

KEPT_BYTES = 16 << 20  # per thread and use: at most this much is kept between calls
_kept = threading.local()


def scratch(use, shape, dtype):
    """An uninitialised C-contiguous array of ``shape`` and ``dtype`` for ``use``
    (a name: two uses in one call never share memory), valid until this thread's
    next call for the same use.
    """
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes == 0 or nbytes > KEPT_BYTES:  # (an empty view would get zero strides, which some consumers refuse)
        return np.empty(shape, dtype)
    buffers = _kept.__dict__
    kept = buffers.get(use)
    if kept is None or kept.nbytes < nbytes:
        kept = buffers[use] = np.empty(nbytes, np.uint8)
    return kept[:nbytes].view(dtype).reshape(shape)
