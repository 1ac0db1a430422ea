"""The ``"cpu"`` backend's register-tiled inner kernel, written as LLVM IR.

Numba's loop vectorizer keeps to 256-bit vectors on AVX-512 machines (LLVM
tunes them to prefer 256 bits), half the multiply-add width of their cores.
This one kernel is written with explicit vectors instead, and llvmlite (which
Numba is built on) compiles it for the host CPU; the Numba kernels call it
through a function pointer, as they call BLAS. On this project's AVX-512
machine it runs at the single-precision GEMM ceiling in cache (measured:
165-185 GFLOP/s on one core, for every tile shape tried).

``tile(x, xoff, woff, taps, depth, x_step, w, c, ldc, rows, cols)``, all
pointers to ``dtype`` or int64, sets for ``r < rows``, ``j < cols``::

    c[r*ldc + j] = sum(x[xoff[t] + r*x_step + k] * w[woff[t] + k*WIDTH + j]
                       for t < taps, k < depth)

with one fused multiply-add per term, in that order (``t``, then ``k``):
``ROWS`` output pixels by ``WIDTH`` output channels, accumulated in
registers. It reads ``ROWS`` rows of ``x`` and ``WIDTH`` columns of ``w``
whatever ``rows`` and ``cols`` are; it stores only ``rows`` by ``cols``.
"""

import ctypes
import functools

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np

_VECTORS = 2  # vectors of output channels per tile: 8 x 2 beat 4x4, 6x4, 12x2 and 14x2 (unet, s1_k3, dcgan)
_I32, _I64 = ir.IntType(32), ir.IntType(64)
_SIGNATURE = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 3, *[ctypes.c_int64] * 3, *[ctypes.c_void_p] * 2,
                              *[ctypes.c_int64] * 3)


@functools.cache
def _target():
    """(target machine, vector bytes, ROWS): the host CPU, with LLVM's
    256-bit preference switched off where it has AVX-512 (32 vector
    registers: 8 x 2 accumulators); else 32-byte vectors, 6 x 2."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    features = llvm.get_host_cpu_features().flatten()
    wide = "+avx512f" in features.split(",")
    machine = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=features + (",-prefer-256-bit" if wide else ""), opt=3,
        codemodel="jitdefault")
    return machine, 64 if wide else 32, 8 if wide else 6


def _splat(b, value, vector):
    """``value`` in every lane of a ``vector``-typed value."""
    lanes = vector.count
    one = b.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(_I32, 0))
    return b.shuffle_vector(one, ir.Constant(vector, ir.Undefined), ir.Constant(ir.VectorType(_I32, lanes), [0] * lanes))


def _loop(fn, b, count, carried, body):
    """``for i in range(count)`` around ``body(b, i, values) -> values``, the
    ``carried`` values flowing from one iteration to the next; returns their
    final values, with ``b`` after the loop."""
    start, head, step, done = b.block, fn.append_basic_block(), fn.append_basic_block(), fn.append_basic_block()
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(_I64)
    values = [b.phi(v.type) for v in carried]
    i.add_incoming(ir.Constant(_I64, 0), start)
    for phi, v in zip(values, carried):
        phi.add_incoming(v, start)
    b.cbranch(b.icmp_signed("<", i, count), step, done)
    b.position_at_end(step)
    new = body(b, i, values)
    i.add_incoming(b.add(i, ir.Constant(_I64, 1)), b.block)
    for phi, v in zip(values, new):
        phi.add_incoming(v, b.block)
    b.branch(head)
    b.position_at_end(done)
    return values


def _module(dtype):
    """The kernel's IR for ``dtype`` (float32 or float64)."""
    _, vector_bytes, rows = _target()
    scalar = ir.FloatType() if dtype == np.float32 else ir.DoubleType()
    lanes = vector_bytes // dtype.itemsize
    vector, width = ir.VectorType(scalar, lanes), _VECTORS * lanes
    module = ir.Module()
    pointer = scalar.as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [pointer, _I64.as_pointer(), _I64.as_pointer(),
                                                             _I64, _I64, _I64, pointer, pointer, _I64, _I64, _I64]),
                     name="tile")
    x, xoff, woff, taps, depth, x_step, w, c, ldc, nrows, ncols = fn.args
    suffix = f"v{lanes}f{dtype.itemsize * 8}"
    fma = ir.Function(module, ir.FunctionType(vector, [vector] * 3), name=f"llvm.fma.{suffix}")
    mask_type = ir.VectorType(ir.IntType(1), lanes)
    store = ir.Function(module, ir.FunctionType(ir.VoidType(), [vector, vector.as_pointer(), _I32, mask_type]),
                        name=f"llvm.masked.store.{suffix}.p0{suffix}")  # typed-pointer name: LLVM 14 needs it
    const = functools.partial(ir.Constant, _I64)
    b = ir.IRBuilder(fn.append_basic_block())

    def tap(b, t, acc):
        xt = b.gep(x, [b.load(b.gep(xoff, [t]))])
        wt = b.gep(w, [b.load(b.gep(woff, [t]))])

        def step(b, k, acc):
            wk = b.gep(wt, [b.mul(k, const(width))])
            wv = [b.load(b.bitcast(b.gep(wk, [const(j * lanes)]), vector.as_pointer()), align=dtype.itemsize)
                  for j in range(_VECTORS)]
            new = []
            for r in range(rows):
                xv = _splat(b, b.load(b.gep(xt, [b.add(b.mul(const(r), x_step), k)])), vector)
                new += [b.call(fma, [xv, wv[j], acc[r * _VECTORS + j]]) for j in range(_VECTORS)]
            return new

        return _loop(fn, b, depth, acc, step)

    acc = _loop(fn, b, taps, [ir.Constant(vector, None)] * (rows * _VECTORS), tap)
    lane = ir.Constant(ir.VectorType(_I64, lanes), list(range(lanes)))
    masks = [b.icmp_signed("<", lane, _splat(b, b.sub(ncols, const(j * lanes)), ir.VectorType(_I64, lanes)))
             for j in range(_VECTORS)]
    for r in range(rows):
        if r:  # rows past ``nrows`` are not stored
            keep, after = fn.append_basic_block(), fn.append_basic_block()
            b.cbranch(b.icmp_signed("<", const(r), nrows), keep, after)
            b.position_at_end(keep)
        row = b.gep(c, [b.mul(const(r), ldc)])
        for j in range(_VECTORS):
            target = b.bitcast(b.gep(row, [const(j * lanes)]), vector.as_pointer())
            b.call(store, [acc[r * _VECTORS + j], target, ir.Constant(_I32, dtype.itemsize), masks[j]])
        if r:
            b.branch(after)
            b.position_at_end(after)
    b.ret_void()
    return str(module)


_engines = []  # compiled code lives as long as its engine


@functools.cache
def kernel(dtype):
    """``(tile, ROWS, WIDTH)`` for ``dtype``: the kernel as a ctypes function
    and its tile shape; None for dtypes other than float32 and float64."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        return None
    machine, vector_bytes, rows = _target()
    module = llvm.parse_assembly(_module(dtype))  # no IR passes: the code generator alone is as fast (measured)
    engine = llvm.create_mcjit_compiler(module, machine)
    engine.finalize_object()
    _engines.append(engine)
    return _SIGNATURE(engine.get_function_address("tile")), rows, _VECTORS * vector_bytes // dtype.itemsize
