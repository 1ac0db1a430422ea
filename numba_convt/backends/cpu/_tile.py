"""The ``"cpu"`` backend's register-tiled inner kernels, written as LLVM IR.

Numba's loop vectorizer keeps to 256-bit vectors on AVX-512 machines (LLVM
tunes them to prefer 256 bits), half the multiply-add width of their cores.
These two kernels are written with explicit vectors instead, and llvmlite
(which Numba is built on) compiles them for the host CPU; the Numba kernels
call them through function pointers, as they call BLAS. On this project's
AVX-512 machine ``tile`` runs at the single-precision GEMM ceiling in cache
(measured: 165-185 GFLOP/s on one core, for every tile shape tried).

``tile(x, xoff, woff, taps, depth, x_step, w, c, ldc, rows, cols)``, all
pointers to ``dtype`` or int64, sets for ``r < rows``, ``j < cols``::

    c[r*ldc + j] = sum(x[xoff[t] + r*x_step + k] * w[woff[t] + k*WIDTH + j]
                       for t < taps, k < depth)

with one fused multiply-add per term, in that order (``t``, then ``k``):
``ROWS`` output pixels by ``WIDTH`` output channels, accumulated in
registers; ``WIDTH`` is one vector for layers of that many output
channels per group or fewer, else two (:func:`kernel_for`: two would
multiply zeros in half their lanes; one vector measured 1.5-2.4x faster on
16-channel layers, 1.1-1.7x on 8-channel ones). It reads ``ROWS`` rows of
``x`` and ``WIDTH`` columns of ``w`` whatever ``rows`` and ``cols`` are; it
stores only ``rows`` by ``cols``.

``dot(a, a_off, b_off, taps, depth, a_step, b, b_step, c, ldc)`` is its
transpose, for few output channels: for ``r < ROWS``, ``q < CHANNELS``::

    c[r*ldc + q] = sum(a[a_off[t] + r*a_step + k] * b[b_off[t] + q*b_step + k]
                       for t < taps, k < depth)

each a vector of partial sums over ``k`` (fused multiply-adds, ``t`` then
``k`` in order), whose lanes are added in a fixed tree at the end. It reads
``depth`` values of each row, no more.
"""

import ctypes
import functools

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np
from numba.core.compiler_lock import global_compiler_lock

_VECTORS = 2  # vectors of output channels per tile: 8 x 2 beat 4x4, 6x4, 12x2 and 14x2 (unet, s1_k3, dcgan)
_I32, _I64 = ir.IntType(32), ir.IntType(64)
# The kernels' arguments, as in the module docstring: "p" a pointer to the
# dtype, "o" a pointer to int64 offsets, "i" an int64.
_TILE_ARGUMENTS = "pooiiippiii"
_DOT_ARGUMENTS = "pooiiipipi"


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
    zeros = ir.Constant(ir.VectorType(_I32, lanes), [0] * lanes)
    return b.shuffle_vector(one, ir.Constant(vector, ir.Undefined), zeros)


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


def _function(dtype, name, arguments):
    """A new module's function ``name`` taking ``arguments`` (see
    ``_TILE_ARGUMENTS``), with ``dtype``'s vector type, intrinsic name suffix
    and fused multiply-add: ``(fn, vector, suffix, fma)``."""
    scalar = ir.FloatType() if dtype == np.float32 else ir.DoubleType()
    vector = ir.VectorType(scalar, _target()[1] // dtype.itemsize)
    kinds = {"p": scalar.as_pointer(), "o": _I64.as_pointer(), "i": _I64}
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [kinds[k] for k in arguments]), name=name)
    suffix = f"v{vector.count}f{dtype.itemsize * 8}"
    fma = ir.Function(module, ir.FunctionType(vector, [vector] * 3), name=f"llvm.fma.{suffix}")
    return fn, vector, suffix, fma


def _module(dtype, vectors):
    """The kernel's IR for ``dtype`` (float32 or float64), ``vectors`` wide."""
    rows = _target()[2]
    fn, vector, suffix, fma = _function(dtype, "tile", _TILE_ARGUMENTS)
    lanes = vector.count
    width = vectors * lanes
    x, xoff, woff, taps, depth, x_step, w, c, ldc, nrows, ncols = fn.args
    mask_type = ir.VectorType(ir.IntType(1), lanes)
    store = ir.Function(fn.module, ir.FunctionType(ir.VoidType(), [vector, vector.as_pointer(), _I32, mask_type]),
                        name=f"llvm.masked.store.{suffix}.p0{suffix}")  # typed-pointer name: LLVM 14 needs it
    const = functools.partial(ir.Constant, _I64)
    b = ir.IRBuilder(fn.append_basic_block())

    def tap(b, t, acc):
        xt = b.gep(x, [b.load(b.gep(xoff, [t]))])
        wt = b.gep(w, [b.load(b.gep(woff, [t]))])

        def step(b, k, acc):
            wk = b.gep(wt, [b.mul(k, const(width))])
            wv = [b.load(b.bitcast(b.gep(wk, [const(j * lanes)]), vector.as_pointer()), align=dtype.itemsize)
                  for j in range(vectors)]
            new = []
            for r in range(rows):
                xv = _splat(b, b.load(b.gep(xt, [b.add(b.mul(const(r), x_step), k)])), vector)
                new += [b.call(fma, [xv, wv[j], acc[r * vectors + j]]) for j in range(vectors)]
            return new

        return _loop(fn, b, depth, acc, step)

    acc = _loop(fn, b, taps, [ir.Constant(vector, None)] * (rows * vectors), tap)
    lane = ir.Constant(ir.VectorType(_I64, lanes), list(range(lanes)))
    masks = [b.icmp_signed("<", lane, _splat(b, b.sub(ncols, const(j * lanes)), ir.VectorType(_I64, lanes)))
             for j in range(vectors)]
    for r in range(rows):
        if r:  # rows past ``nrows`` are not stored
            keep, after = fn.append_basic_block(), fn.append_basic_block()
            b.cbranch(b.icmp_signed("<", const(r), nrows), keep, after)
            b.position_at_end(keep)
        row = b.gep(c, [b.mul(const(r), ldc)])
        for j in range(vectors):
            target = b.bitcast(b.gep(row, [const(j * lanes)]), vector.as_pointer())
            b.call(store, [acc[r * vectors + j], target, ir.Constant(_I32, dtype.itemsize), masks[j]])
        if r:
            b.branch(after)
            b.position_at_end(after)
    b.ret_void()
    return str(fn.module)


_engines = []  # compiled code lives as long as its engine


def _compile(text, name, arguments):
    """Function ``name`` of IR ``text``, compiled for the host, as a ctypes
    function taking ``arguments``. No IR passes: the code generator alone is
    as fast (measured). Under Numba's compiler lock: LLVM's global context is
    not thread-safe, and Numba's own compiler uses it too."""
    with global_compiler_lock:
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(text), _target()[0])
        engine.finalize_object()
        _engines.append(engine)
        address = engine.get_function_address(name)
    signature = ctypes.CFUNCTYPE(None, *[ctypes.c_int64 if k == "i" else ctypes.c_void_p for k in arguments])
    return signature(address)


@functools.cache
def kernel(dtype, vectors=_VECTORS):
    """``(tile, ROWS, WIDTH)`` for ``dtype``: the kernel ``vectors`` vectors
    wide as a ctypes function and its tile shape; None for dtypes other than
    float32 and float64."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        return None
    _, vector_bytes, rows = _target()
    return _compile(_module(dtype, vectors), "tile", _TILE_ARGUMENTS), rows, vectors * vector_bytes // dtype.itemsize


def kernel_for(dtype, channels):
    """:func:`kernel` for ``channels`` output channels (of a group): one
    vector wide where they fit in one (two would multiply zeros in half
    their lanes), else two."""
    return kernel(dtype, 1 if channels <= lanes(dtype) else _VECTORS)


def _dot_module(dtype, rows, channels):
    """IR of the dot kernel for ``dtype``: ``rows`` pixels by ``channels``
    output channels, each a vector of partial sums over input channels."""
    fn, vector, suffix, fma = _function(dtype, "dot", _DOT_ARGUMENTS)
    lanes = vector.count
    a, a_off, b_off, taps, depth, a_step, b_, b_step, c, ldc = fn.args
    mask_type = ir.VectorType(ir.IntType(1), lanes)
    load = ir.Function(fn.module, ir.FunctionType(vector, [vector.as_pointer(), _I32, mask_type, vector]),
                       name=f"llvm.masked.load.{suffix}.p0{suffix}")
    const = functools.partial(ir.Constant, _I64)
    zero = ir.Constant(vector, None)
    lane = ir.Constant(ir.VectorType(_I64, lanes), list(range(lanes)))
    builder = ir.IRBuilder(fn.append_basic_block())
    full = builder.sdiv(depth, const(lanes))  # whole chunks of input channels, then a masked one if any are left
    left = builder.srem(depth, const(lanes))
    tail = builder.zext(builder.icmp_signed("!=", left, const(0)), _I64)
    mask = builder.icmp_signed("<", lane, _splat(builder, left, ir.VectorType(_I64, lanes)))

    def tap(ib, t, acc):
        at = ib.gep(a, [ib.load(ib.gep(a_off, [t]))])
        bt = ib.gep(b_, [ib.load(ib.gep(b_off, [t]))])

        def chunk(k, masked):
            def step(ib, i, acc):
                def vec(base, offset):  # the chunk's lanes (zero past ``depth`` in the masked chunk)
                    target = ib.bitcast(ib.gep(base, [ib.add(offset, k(ib, i))]), vector.as_pointer())
                    if masked:
                        return ib.call(load, [target, ir.Constant(_I32, dtype.itemsize), mask, zero])
                    return ib.load(target, align=dtype.itemsize)

                xs = [vec(at, ib.mul(const(r), a_step)) for r in range(rows)]
                new = list(acc)
                for q in range(channels):
                    wv = vec(bt, ib.mul(const(q), b_step))
                    for r in range(rows):
                        new[r * channels + q] = ib.call(fma, [xs[r], wv, acc[r * channels + q]])
                return new
            return step

        acc = _loop(fn, ib, full, acc, chunk(lambda ib, i: ib.mul(i, const(lanes)), False))
        return _loop(fn, ib, tail, acc, chunk(lambda ib, i: ib.mul(full, const(lanes)), True))

    acc = _loop(fn, builder, taps, [zero] * (rows * channels), tap)
    sums = _sum_lanes(builder, acc)
    for r in range(rows):
        row = builder.gep(c, [builder.mul(const(r), ldc)])
        for q in range(channels):
            builder.store(sums[r * channels + q], builder.gep(row, [const(q)]))
    builder.ret_void()
    return str(fn.module)


def _sum_lanes(b, vectors):
    """The lane sums of ``vectors``, as scalars, in a transposing tree: each
    level adds the halves of two vectors' blocks of lanes into one vector,
    so ``n`` vectors of ``L`` lanes take about ``n`` adds, not ``n log L``."""
    lanes = vectors[0].type.count
    sums = []
    for start in range(0, len(vectors), lanes):
        group = vectors[start:start + lanes]
        count = 1 << (len(group) - 1).bit_length()  # a power of two, padded with zeros
        group += [ir.Constant(group[0].type, None)] * (count - len(group))
        width = lanes
        while len(group) > 1:  # blocks of ``width`` lanes hold one vector's partial sums each
            half = width // 2
            low = [i + j for i in range(0, 2 * lanes, width) for j in range(half)]
            pick = [ir.Constant(ir.VectorType(_I32, lanes), [i + offset for i in low]) for offset in (0, half)]
            group = [b.fadd(b.shuffle_vector(u, v, pick[0]), b.shuffle_vector(u, v, pick[1]))
                     for u, v in zip(group[::2], group[1::2])]
            width = half
        v = group[0]
        while width > 1:  # one vector left: halve each block in place
            half = width // 2
            low = [i + j for i in range(0, lanes, width) for j in range(half)]
            low += low
            v = b.fadd(b.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, lanes), low[:lanes])),
                       b.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, lanes),
                                                          [i + half for i in low[:lanes]])))
            width = half
        sums += [b.extract_element(v, ir.Constant(_I32, i)) for i in range(len(vectors[start:start + lanes]))]
    return sums


def lanes(dtype):
    """How many values of ``dtype`` one of the kernels' vectors holds."""
    return _target()[1] // np.dtype(dtype).itemsize


@functools.cache
def dot_kernel(dtype, channels, rows=None):
    """``(dot, ROWS)``: the dot kernel for ``channels`` output channels as a
    ctypes function, and its pixel count (``rows``, default as many as the
    registers hold); None for dtypes other than float32 and float64."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        return None
    vector_bytes = _target()[1]
    registers = 29 if vector_bytes == 64 else 13  # of 32 or 16, less the filter vector and a spare
    rows = rows or max(1, min(8, registers // (channels + 1)))  # accumulators and the pixels' vectors
    return _compile(_dot_module(dtype, rows, channels), "dot", _DOT_ARGUMENTS), rows
