"""One serial build of each Numba CPU kernel, a parallel driver to run it on
Numba's thread pool, and the one place that picks between them for a call.

Every kernel takes its share ``part`` of ``parts`` of its tasks as its last
two arguments (tasks ``part*n//parts`` to ``(part + 1)*n//parts``), and is
compiled once, serially. :func:`launch` runs it whole (``part=0,
parts=1``) on the caller's thread when:

- the call does little work (starting the thread pool would cost more),
- Numba is set to one thread (``numba.set_num_threads``), or
- the process was forked after Numba's OpenMP pool had started: GNU OpenMP
  cannot serve a forked child, and Numba terminates such a child on its
  first parallel launch ("fork() called from a process already using GNU
  OpenMP"), which leaves a ``multiprocessing.Pool`` waiting forever. The
  ``tbb`` and ``workqueue`` pools start afresh in a child, so there children
  keep their threads.

Otherwise a small ``parallel=True`` driver, ``for part in prange(parts):
kernel(*args, part, parts)``, runs the shares on Numba's pool: 8 per
thread, handed out one at a time (chunk size 1), so a thread that another
process keeps off its core leaves its shares to the others, and uneven
tasks even out (2 cores, 8 workloads, medians of 3 alternating processes:
quiet equal or 2-17% faster than one share per thread, with one core busy
6 of 8 faster by 5-18%, dcgan_g2 5% slower).

Why not ``prange`` in the kernel itself: Numba puts a parfor's body into
four LLVM libraries (the gufunc, two wrappers, the caller), links each
callee into its caller and optimizes and code-generates it again, so a
``parallel=True`` build costs 3-4x the serial one (measured: the tiled
kernel 3.8-4.1 s against 1.4 s; ``warmup()`` 31 -> 13 s without them).
The driver receives the kernel as a first-class function (:class:`_Pointer`,
the address of the kernel's compiled C wrapper), so the kernel is not linked
into it and its body is compiled once. The driver's code does not depend on
the kernel, only on the argument types: one driver per arity, compiled per
signature and cached on disk like the kernels. The BLAS kernel takes the
one of its two gathers a call needs the same way (:func:`pointer`), so a
call compiles only that one. (Numba's unboxing of such an argument costs
~5-10 us a call, which is why small helpers are called directly.)

Each task runs the same machine code on the same data whichever share runs
it, so results are bitwise identical for any thread count
(``tests/test_fork.py``). Numba's ``workqueue`` pool aborts the process when
two threads launch parallel kernels at once, so there launches take turns.
"""

import contextlib
import os
import threading
import types as pytypes

import numba
import numpy as np
from numba.core import types
from numba.extending import typeof_impl

# The JIT options, in one place. ``fastmath`` is limited to "contract" (fused
# multiply-add) and "reassoc" (lets LLVM vectorize dot products): both change
# rounding only, deterministically (the same machine code runs for any thread
# count), and keep NaN/inf semantics.
FLAGS = dict(cache=True, nogil=True, fastmath={"contract", "reassoc"}, error_model="numpy", boundscheck=False)
SERIAL_WORK = 1 << 17  # operations below which thread start-up costs more than it buys
SHARES_PER_THREAD = 8  # a parallel launch's shares, taken by the threads one at a time

_launch_lock = threading.Lock()
_pool_lost = False  # forked after the OpenMP pool started: serial runs only
_drivers = {}  # (kernel, _key(args)) -> (_Pointer, driver) for a launch
_pointers = {}  # (kernel, _key(values)) -> its _Pointer, see pointer()
_sources = {}  # arity -> the driver's dispatcher, one overload per signature
_drivers_lock = threading.Lock()


def build(function, name=None, **constants):
    """The one (serial) build of ``function``, whose last two arguments
    ``part, parts`` select its share of the tasks; named ``name`` (Numba's
    disk cache tells builds apart by name), with ``constants`` replacing
    module globals of those names (compile-time constants in this build)."""
    name = name or function.__name__
    namespace = {**function.__globals__, **constants} if constants else function.__globals__
    clone = pytypes.FunctionType(function.__code__, namespace, name)
    clone.__qualname__ = name
    return numba.njit(**FLAGS)(clone)


class _Pointer(types.WrapperAddressProtocol):
    """A compiled kernel as a first-class function: the address of its C
    wrapper and its signature. (The dispatcher itself would do, but Numba
    unboxes a dispatcher argument by looking its compile result up in
    Python on every call, ~0.1 ms measured.) The address stays valid while
    the kernel's dispatcher lives: kernels are module globals."""

    def __init__(self, kernel, signature):
        self._signature, self.numba_type = signature, types.FunctionType(signature)
        compiled = kernel.overloads[signature.args]
        self._address = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_cfunc_wrapper_name)

    def __wrapper_address__(self):
        return self._address

    def signature(self):
        return self._signature


@typeof_impl.register(_Pointer)
def _typeof_pointer(value, context):
    """Its type, made once: Numba's own typing of a function-pointer object
    makes a new ``FunctionType`` on every call (~10 us)."""
    return value.numba_type


def _key(args):
    """What decides the Numba types of ``args``, cheaply (``numba.typeof``
    costs ~5 us an argument). ctypes functions are typed by their class
    (``_blas.gemm`` gives each dtype its own)."""
    return tuple((a.dtype, a.ndim, a.flags.c_contiguous, a.flags.f_contiguous, a.flags.writeable, a.flags.aligned)
                 if isinstance(a, np.ndarray) else a.numba_type if isinstance(a, _Pointer) else type(a) for a in args)


def _driver(kernel, args):
    """``(share, driver)`` for ``kernel`` on ``args``: the kernel as a
    function pointer, and the driver compiled for its signature (or loaded
    from Numba's disk cache) on first use."""
    key = (kernel, _key(args))
    found = _drivers.get(key)
    if found is None:
        with _drivers_lock:
            found = _drivers.get(key) or _compile_driver(kernel, key, args)
    return found


def _compile_driver(kernel, key, args):
    """:func:`_driver` on a miss, under ``_drivers_lock``."""
    share = pointer(kernel, lambda *values: (*map(numba.typeof, values), types.int64, types.int64), *args)
    driver = _sources.get(len(args)) or _source(len(args))
    driver.compile((share.numba_type, *share.signature().args[:-1]))
    found = _drivers[key] = (share, driver)
    return found


def pointer(kernel, argtypes, *values):
    """``kernel`` compiled for the Numba types ``argtypes(*values)`` (or
    loaded from the disk cache), as a first-class function another kernel
    can take as an argument: so of the functions a kernel may call, a call
    compiles the one it needs. ``argtypes`` runs once per kind of
    ``values`` (making Numba types costs ~10 us each)."""
    key = (kernel, _key(values))
    found = _pointers.get(key)
    if found is None:
        signature = argtypes(*values)
        kernel.compile(signature)
        found = _pointers[key] = _Pointer(kernel, kernel.overloads[signature].signature)
    return found


def _source(arity):
    """The driver of kernels with ``arity`` arguments (before ``part,
    parts``). Written in this file's name and module, so that Numba caches
    its builds on disk."""
    names = ", ".join(f"a{i}" for i in range(arity))
    body = f"    for part in numba.prange(parts):\n        kernel({names}, np.int64(part), parts)\n"
    namespace = {"numba": numba, "np": np, "__name__": __name__}
    exec(compile(f"def _drive{arity}(kernel, {names}, parts):\n{body}", __file__, "exec"), namespace)
    driver = _sources[arity] = numba.njit(parallel=True, **FLAGS)(namespace[f"_drive{arity}"])
    return driver


def launch(kernel, work, *args):
    """Run ``kernel`` (from :func:`build`) on ``args``: whole on this thread
    below ``SERIAL_WORK`` operations, with one Numba thread, or where the
    pool is lost to a fork; else in shares on Numba's pool."""
    threads = 1 if work < SERIAL_WORK or _pool_lost else numba.get_num_threads()  # tested first: ~1 us
    if threads == 1:
        kernel(*args, 0, 1)
        return
    share, driver = _driver(kernel, args)
    with _launch_lock if _threading_layer() in (None, "workqueue") else contextlib.nullcontext():
        chunk = numba.set_parallel_chunksize(1)  # this thread's setting (in the driver, Numba would not cache it)
        try:
            driver(share, *args, threads * SHARES_PER_THREAD)
        finally:
            numba.set_parallel_chunksize(chunk)


def _threading_layer():
    """The layer Numba's pool runs on, or None before its first parallel launch
    (then it may pick ``workqueue``)."""
    try:
        return numba.threading_layer()
    except ValueError:
        return None


def _after_fork_in_child():
    """A parent thread may have held a lock at the fork; its pool is
    unusable here if it was OpenMP (Numba's pools start on first use)."""
    global _launch_lock, _drivers_lock, _pool_lost
    _launch_lock, _drivers_lock = threading.Lock(), threading.Lock()
    _pool_lost = _pool_lost or _threading_layer() == "omp"


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
