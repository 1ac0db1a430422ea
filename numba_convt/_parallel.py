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

Otherwise a driver (:func:`_driver`) hands the shares to Numba's thread
pool, ``kernel(*args, part, parts)`` for each ``part``: 4 per thread, taken
by the threads as they come free (TBB, Numba's default layer here, steals
them; OpenMP and ``workqueue`` split them evenly), so a thread that another
process keeps off its core leaves its shares to the others, and uneven
tasks even out.
Measured (2 cores, 6-8 workloads, medians of 4 alternating processes, 1,
2, 4 or 8 shares per thread): with one core busy, one share per thread
was the slowest on 5 of 6 (fcn_up8 5.6 ms against 4.6 with 4, unet_up2
3.6 against 3.1); quiet, the counts differed by less than the noise
between runs (each best somewhere), but 8 ran 5-12% behind 1 in one run.

Why not ``prange``: Numba puts a parfor's body into four LLVM libraries (the
gufunc, two wrappers, the caller), links each callee into its caller and
optimizes and code-generates it again, so a ``parallel=True`` build costs
3-4x the serial one (measured: the tiled kernel 3.8-4.1 s against 1.4 s),
and even a parfor that only calls a kernel through a pointer costs
~0.5 s. The driver is a serial build that calls the threading layer's
``parallel_for`` itself (the function a parfor's code calls, with the
gufunc convention it expects: :func:`_run_shares`), ~0.08 s to compile.
It receives the kernel as the address of its compiled C wrapper, so the
kernel is not linked into it and its body is compiled once; its code
depends only on the argument types, and it is compiled per signature and
cached on disk like the kernels. The BLAS kernel takes the one of its two
gathers a call needs as a first-class function (:func:`pointer`), so a
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
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, typeof_impl

# The JIT options, in one place. ``fastmath`` is limited to "contract" (fused
# multiply-add) and "reassoc" (lets LLVM vectorize dot products): both change
# rounding only, deterministically (the same machine code runs for any thread
# count), and keep NaN/inf semantics.
FLAGS = dict(cache=True, nogil=True, fastmath={"contract", "reassoc"}, error_model="numpy", boundscheck=False)
SERIAL_WORK = 1 << 17  # operations below which thread start-up costs more than it buys
SHARES_PER_THREAD = 4  # a parallel launch's shares, taken by the threads as they come free

_launch_lock = threading.Lock()
_pool_lost = False  # forked after the OpenMP pool started: serial runs only
_pointers = {}  # (kernel, _key(values)) -> its _Pointer, see pointer()
_drivers = {}  # arity -> its driver, see _driver()
_I64, _BYTES = ir.IntType(64), ir.IntType(8).as_pointer()


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
        self.address = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_cfunc_wrapper_name)

    def __wrapper_address__(self):
        return self.address

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


def _share_types(*args):
    """A kernel's Numba argument types for ``args``: theirs, then ``part, parts``."""
    return (*map(numba.typeof, args), types.int64, types.int64)


@intrinsic
def _run_shares(typingctx, address, args, parts, threads):
    """Call the kernel at ``address`` (a C wrapper from :class:`_Pointer`) as
    ``kernel(*args, part, parts)`` for every ``part < parts``, on ``threads``
    of Numba's pool: the threading layer's ``parallel_for(function, arrays,
    dims, steps, data, ...)`` runs ``function`` on ranges of ``dims[0]``
    items, each called with ``arrays[0]`` advanced by ``steps[0]`` per item
    and the range's length in ``dims[0]``; ``arrays[0]`` is 0 and ``steps[0]``
    1, so it receives its first share as that pointer's value. The symbol
    ``numba_parallel_for`` exists once Numba has started its pool
    (:func:`launch` asks ``numba.get_num_threads()`` first)."""

    def codegen(context, builder, signature, values):
        kernel_type = ir.FunctionType(context.get_value_type(types.none),
                                      [context.get_value_type(t) for t in signature.args[1]] + [_I64, _I64])
        closure = cgutils.alloca_once(builder, ir.LiteralStructType([v.type for v in values[:3]]))
        for i, value in enumerate(values[:3]):
            builder.store(value, cgutils.gep_inbounds(builder, closure, 0, i))
        shares = _shares_function(builder.module, closure.type, kernel_type)
        first, step, count = (cgutils.alloca_once_value(builder, v) for v in (_BYTES(None), _I64(1), values[2]))
        parallel_for = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.VoidType(), [_BYTES] * 5 + [_I64] * 3), "numba_parallel_for")
        builder.call(parallel_for, [builder.bitcast(v, _BYTES) for v in (shares, first, count, step, closure)]
                     + [_I64(0), _I64(1), values[3]])
        return context.get_dummy_value()

    return types.none(address, args, parts, threads), codegen


def _shares_function(module, closure_type, kernel_type):
    """The function ``parallel_for`` calls, in gufunc form ``(arrays, dims,
    steps, data)``: ``data`` points at ``(address, args, parts)``."""
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [_BYTES.as_pointer(), _I64.as_pointer(),
                                                                    _I64.as_pointer(), _BYTES]),
                           module.get_unique_name("numba_convt_shares"))
    function.linkage = "internal"
    builder = ir.IRBuilder(function.append_basic_block())
    arrays, dims, _, data = function.args
    closure = builder.bitcast(data, closure_type)
    address, args, parts = (builder.load(cgutils.gep_inbounds(builder, closure, 0, i)) for i in range(3))
    kernel = builder.inttoptr(address, kernel_type.as_pointer())
    first = builder.ptrtoint(builder.load(arrays), _I64)
    values = [builder.extract_value(args, i) for i in range(len(kernel_type.args) - 2)]
    with cgutils.for_range(builder, builder.load(dims)) as loop:
        builder.call(kernel, values + [builder.add(first, loop.index), parts])
    builder.ret_void()
    return function


def _driver(arity):
    """The driver of kernels of ``arity`` arguments (before ``part, parts``),
    ``_drive<arity>(address, parts, threads, a0, ...)``: runs the kernel at
    ``address`` on ``a0, ...`` in ``parts`` shares on ``threads`` threads.
    Written out per arity: Numba types a ``*args`` tuple in Python on every
    call (+0.13 ms a launch with a ctypes function among the arguments,
    measured). Compiled in this file's name and module, so that Numba caches
    its builds on disk."""
    found = _drivers.get(arity)
    if found is None:
        names = ", ".join(f"a{i}" for i in range(arity))
        source = f"def _drive{arity}(address, parts, threads, {names}):\n    run(address, ({names},), parts, threads)\n"
        namespace = {"run": _run_shares, "__name__": __name__}
        exec(compile(source, __file__, "exec"), namespace)
        found = _drivers.setdefault(arity, numba.njit(**FLAGS)(namespace[f"_drive{arity}"]))
    return found


def launch(kernel, work, *args):
    """Run ``kernel`` (from :func:`build`) on ``args``: whole on this thread
    below ``SERIAL_WORK`` operations, with one Numba thread, or where the
    pool is lost to a fork; else in shares on Numba's pool."""
    threads = 1 if work < SERIAL_WORK or _pool_lost else numba.get_num_threads()  # tested first: ~1 us
    if threads == 1:
        kernel(*args, 0, 1)
        return
    share = pointer(kernel, _share_types, *args)
    # (get_num_threads started the pool above, so the layer is known)
    with _launch_lock if _threading_layer() == "workqueue" else contextlib.nullcontext():
        _driver(len(args))(share.address, threads * SHARES_PER_THREAD, threads, *args)


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
    global _launch_lock, _pool_lost
    _launch_lock = threading.Lock()
    _pool_lost = _pool_lost or _threading_layer() == "omp"


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
