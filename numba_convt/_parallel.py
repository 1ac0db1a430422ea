"""Serial and parallel builds of the Numba CPU kernels, and the one place that
picks between them for a call.

Every kernel is compiled twice from one Python function, and :func:`launch`
runs its serial build when:

- the call does little work (starting the thread pool would cost more), or
- the process was forked after Numba's OpenMP pool had started: GNU OpenMP
  cannot serve a forked child, and Numba terminates such a child on its
  first parallel launch ("fork() called from a process already using GNU
  OpenMP"), which leaves a ``multiprocessing.Pool`` waiting forever. The
  ``tbb`` and ``workqueue`` pools start afresh in a child, so there children
  keep their threads.

The two builds run the same loop body on each row, so their results are
bitwise identical (``tests/test_fork.py``). Numba's ``workqueue`` pool aborts
the process when two threads launch parallel kernels at once, so there
launches take turns.
"""

import contextlib
import os
import threading
import types

import numba

# The JIT options, in one place. ``fastmath`` is limited to "contract" (fused
# multiply-add) and "reassoc" (lets LLVM vectorize dot products): both change
# rounding only, deterministically (the same machine code runs for any thread
# count), and keep NaN/inf semantics.
FLAGS = dict(cache=True, nogil=True, fastmath={"contract", "reassoc"}, error_model="numpy", boundscheck=False)
SERIAL_WORK = 1 << 17  # operations below which thread start-up costs more than it buys

_launch_lock = threading.Lock()
_pool_lost = False  # forked after the OpenMP pool started: serial builds only


def builds(function):
    """``(serial, parallel)`` builds of ``function``, each compiled under its
    own name: Numba's on-disk cache is keyed by qualified name and ignores
    ``parallel``, so the two would otherwise load each other's machine code."""
    return tuple(_compiled(function, f"{function.__name__}_{kind}", parallel=kind == "parallel")
                 for kind in ("serial", "parallel"))


def _compiled(function, name, parallel):
    clone = types.FunctionType(function.__code__, function.__globals__, name)
    clone.__qualname__ = name
    return numba.njit(**FLAGS, parallel=parallel)(clone)


def launch(kernel, work, *args):
    """Run ``kernel`` (a pair from :func:`builds`) on ``args``: its serial build
    below ``SERIAL_WORK`` operations or where the pool is lost to a fork,
    else its parallel build."""
    serial, parallel = kernel
    if work < SERIAL_WORK or _pool_lost:
        return serial(*args)
    with _launch_lock if _threading_layer() in (None, "workqueue") else contextlib.nullcontext():
        return parallel(*args)


def _threading_layer():
    """The layer Numba's pool runs on, or None before its first parallel launch
    (then it may pick ``workqueue``)."""
    try:
        return numba.threading_layer()
    except ValueError:
        return None


def _after_fork_in_child():
    """A parent thread may have held the lock at the fork; its pool is
    unusable here if it was OpenMP (Numba's pools start on first use)."""
    global _launch_lock, _pool_lost
    _launch_lock = threading.Lock()
    _pool_lost = _pool_lost or _threading_layer() == "omp"


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
