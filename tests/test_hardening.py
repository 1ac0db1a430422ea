"""Hardening (issue 6): huge outputs, index width, NaN/Inf, wrap-around, inputs
never written, threads and the GIL, memory growth and peak memory.

Everything goes through the public API, on every backend in
``numba_convt.available_backends()``, so it holds for any correct kernel.
Each guarantee also has a *sensitivity* test (``test_sensitivity_*``) that
plants the failure the check guards against (a backend registered for the
purpose, a patched allocator) and shows that the check catches it.

Figures (peak memory table, soak results) are printed; run with ``-s`` to see them.
"""

import gc
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

import numba
import numpy as np
import pytest
from common import ieee_classes

import numba_convt
from numba_convt import conv2d_transpose

BACKENDS = numba_convt.available_backends()
REPO = Path(__file__).resolve().parents[1]
MIB, KIB = 2**20, 2**10


def _simulated(backend):
    """Whether ``backend`` runs its kernels in numba's CUDA simulator (Python speed)."""
    return backend == "cuda" and bool(numba.config.ENABLE_CUDASIM)


def heavy(backends):
    """``backends`` as parameters, skipping the simulated ones for calls that are not tiny."""
    reason = "numba's CUDA simulator runs kernels at Python speed; run with NUMBA_ENABLE_CUDASIM=0 on a GPU"
    return [pytest.param(b, marks=pytest.mark.skip(reason=reason)) if _simulated(b) else b for b in backends]


@pytest.fixture(autouse=True)
def small_simulated_grid(monkeypatch):
    """Under the CUDA simulator, launch 8-thread blocks, at most 4 (as tests/test_cuda.py does): 5x faster."""
    module = sys.modules.get("numba_convt.backends.cuda")
    if module is not None and numba.config.ENABLE_CUDASIM:
        monkeypatch.setattr(module, "THREADS_PER_BLOCK", 8)
        monkeypatch.setattr(module, "MAX_BLOCKS", 4)


@pytest.fixture
def plant():
    """Register throw-away backends for a sensitivity test; removed afterwards."""
    names = []

    def _plant(name, run):
        numba_convt.register_backend(name, run, overwrite=True)
        names.append(name)
        return name

    yield _plant
    for name in names:
        numba_convt._registry._registry.pop(name, None)  # no public unregister


def _numpy_run(spec, x, filters, out):
    numba_convt.get_backend("numpy").run(spec, x, filters, out)


def direct_transpose(x, f, out_hw, out_c, strides, dilations, pads_before, acc):
    """Independent oracle from the definition, accumulating in ``acc`` (float64, complex128,
    or object for exact Python integers); products summed with NumPy's own loops, not BLAS."""
    n, in_h, in_w, in_c = x.shape
    k_h, k_w, group_out, _ = f.shape
    groups = out_c // group_out
    group_in = in_c // groups
    y = np.zeros((n, out_hw[0], out_hw[1], out_c), acc)
    x, f = x.astype(acc), f.astype(acc)
    for iy, ky, ix, kx in np.ndindex(in_h, k_h, in_w, k_w):
        oy = iy * strides[0] + ky * dilations[0] - pads_before[0]
        ox = ix * strides[1] + kx * dilations[1] - pads_before[1]
        if not (0 <= oy < out_hw[0] and 0 <= ox < out_hw[1]):
            continue
        for g in range(groups):
            cin, cout = slice(g * group_in, (g + 1) * group_in), slice(g * group_out, (g + 1) * group_out)
            y[:, oy, ox, cout] += (x[:, iy, ix, None, cin] * f[ky, kx, None, :, cin]).sum(axis=-1)
    return y


# Layers the value tests run on. "small" is grouped, strided and dilated; "wide" and
# "wide16" have the channel counts for which the cpu backend multiplies with BLAS (then
# gathers with few / many output channels); "big" is large enough for its parallel kernel.
# pads_before: the forward SAME padding, need // 2 with need = (H-1)*S + (K-1)*D + 1 - H_out.
LAYERS = {
    "small": dict(x_shape=(2, 5, 4, 4), f_shape=(3, 2, 3, 4), out_hw=(9, 7), out_c=6, strides=(2, 2),
                  dilations=(1, 2), pads_before=(1, 1)),
    "wide": dict(x_shape=(2, 6, 6, 16), f_shape=(3, 3, 5, 16), out_hw=(12, 12), out_c=5, strides=(2, 2),
                 dilations=(1, 1), pads_before=(0, 0)),
    "wide16": dict(x_shape=(2, 6, 6, 16), f_shape=(3, 3, 16, 16), out_hw=(12, 12), out_c=16, strides=(2, 2),
                   dilations=(1, 1), pads_before=(0, 0)),
    "big": dict(x_shape=(2, 16, 16, 8), f_shape=(3, 3, 8, 8), out_hw=(31, 31), out_c=8, strides=(2, 2),
                dilations=(1, 1), pads_before=(1, 1)),
}
CASE = LAYERS["small"]


def _oracle(x, f, layer, acc):
    spec = LAYERS[layer]
    return direct_transpose(x, f, spec["out_hw"], spec["out_c"], spec["strides"], spec["dilations"],
                            spec["pads_before"], acc)


def _layer_args(layer, data_format="NHWC"):
    """Keyword arguments (output_shape, strides, padding, dilations, data_format) for ``layer``."""
    spec = LAYERS[layer]
    n = spec["x_shape"][0]
    h, w = spec["out_hw"]
    shape = [n, h, w, spec["out_c"]] if data_format == "NHWC" else [n, spec["out_c"], h, w]
    return dict(output_shape=shape, strides=list(spec["strides"]), padding="SAME",
                dilations=list(spec["dilations"]), data_format=data_format)


def layers(backends, names=tuple(LAYERS)):
    """(layer, backend) parameters; under the CUDA simulator only the small layer runs."""
    return [pytest.param(name, backend, id=f"{name}-{backend}",
                         marks=heavy([backend])[0].marks if name != "small" and _simulated(backend) else ())
            for name in names for backend in backends]


def _call(x, f, backend, data_format="NHWC", out=None, layer="small"):
    """``conv2d_transpose`` of NHWC ``x`` for ``layer`` in ``data_format``; the result comes back NHWC."""
    if data_format == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = conv2d_transpose(x, f, **_layer_args(layer, data_format), backend=backend, out=out)
    return y.transpose(0, 2, 3, 1) if data_format == "NCHW" else y


# ==========================================================================
# 1. Huge outputs: refused with ValueError before anything is allocated
# ==========================================================================

_BIG_REQUEST = 64 * MIB


class _BigAllocation(Exception):
    """Raised by the patched allocators instead of allocating a big array."""


class _Watch:
    """What the patched allocators were asked for, and the traced peak since the start."""

    def __init__(self):
        self.requests = []  # sizes of 1 MiB or more asked of np.empty/zeros/ones
        self.start = tracemalloc.get_traced_memory()[0]

    @property
    def peak(self):
        return tracemalloc.get_traced_memory()[1] - self.start


@pytest.fixture
def no_big_allocations(monkeypatch):
    """Patch NumPy's allocating constructors to refuse requests over 64 MiB, and trace everything."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    watch = _Watch()

    def guard(real):
        def patched(shape, dtype=float, *args, **kwargs):
            try:
                nbytes = math.prod(shape if isinstance(shape, (tuple, list)) else (shape,)) * np.dtype(dtype).itemsize
            except TypeError:
                nbytes = 0
            if nbytes >= MIB:
                watch.requests.append(nbytes)
            if nbytes > _BIG_REQUEST:
                raise _BigAllocation(f"asked for {nbytes} bytes")
            return real(shape, dtype, *args, **kwargs)
        return patched

    for name in ("empty", "zeros", "ones"):
        monkeypatch.setattr(np, name, guard(getattr(np, name)))
    try:
        yield watch
    finally:
        tracemalloc.stop()


def _ones_view(shape, dtype=np.float32):
    """A read-only all-ones array of any shape that occupies one element (zero strides)."""
    return np.broadcast_to(np.array(1, dtype), shape)


def _huge_call(n, h, w, c, dtype=np.float32, data_format="NHWC"):
    """Arguments of a valid call with output NHWC ``(n, h, w, c)`` from 1x1 inputs (SAME, stride = size)."""
    x = _ones_view((n, 1, 1, 1), dtype)
    f = _ones_view((1, 1, c, 1), dtype)
    shape = [n, h, w, c] if data_format == "NHWC" else [n, c, h, w]  # x has one channel: either layout
    return dict(input=x, filters=f, output_shape=shape, strides=[h, w], padding="SAME", data_format=data_format)


def _machine_bytes():
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


HUGE = {
    # element count 2**64: int64 arithmetic (np.prod) wraps it to 0, an "empty" output
    "2**64-elements-wraps-to-0": (2**16, 2**16, 2**16, 2**16, np.float32),
    # 2**61 float64 elements: the element count fits int64, the byte count 2**64 wraps to 0
    "2**64-bytes-wraps-to-0": (2**15, 2**15, 2**15, 2**16, np.float64),
    "2**124-elements": (2**31 - 1, 2**31 - 1, 2**31 - 1, 2**31 - 1, np.float32),
    "4-TiB": (1, 2**20, 2**20, 1, np.float32),
    "2**97-bytes-complex128": (1, 2**31 - 1, 2**31 - 1, 2**31 - 1, np.complex128),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", list(HUGE), ids=list(HUGE))
def test_huge_outputs_are_refused_before_allocation(case, data_format, backend, no_big_allocations):
    n, h, w, c, dtype = HUGE[case]
    kwargs = _huge_call(n, h, w, c, dtype, data_format)
    with pytest.raises(ValueError, match=r"output_shape.*GiB") as info:
        conv2d_transpose(**kwargs, backend=backend)
    assert "memory" in str(info.value)
    assert no_big_allocations.requests == [], "an array was requested before the refusal"
    assert no_big_allocations.peak < MIB, f"{no_big_allocations.peak} bytes allocated before the refusal"


@pytest.mark.parametrize("backend", BACKENDS)
def test_output_just_over_the_machines_memory_is_refused(backend, no_big_allocations):
    memory = _machine_bytes()
    h = 2**16
    w = memory // (4 * h) + 1  # float32: one column more than fits
    assert 4 * h * w > memory and w <= 2**31 - 1
    with pytest.raises(ValueError, match=r"output_shape.*GiB.*memory"):
        conv2d_transpose(**_huge_call(1, h, w, 1), backend=backend)
    assert no_big_allocations.requests == [] and no_big_allocations.peak < MIB


FAKE_MEMORY = 64 * MIB


@pytest.fixture
def small_machine(monkeypatch):
    """Pretend the machine has 64 MiB of memory (the size check reads ``os.sysconf``)."""
    real = os.sysconf

    def sysconf(name):
        if name == "SC_PHYS_PAGES":
            return FAKE_MEMORY // real("SC_PAGE_SIZE")
        return real(name)

    monkeypatch.setattr(os, "sysconf", sysconf)
    # The fake must be what the library reads: a 4x-too-big output is refused on the fake machine.
    with pytest.raises(ValueError, match="memory"):
        conv2d_transpose(**_huge_call(1, 2**12, 2**14, 1), backend="numpy")  # 256 MiB
    return FAKE_MEMORY


@pytest.mark.parametrize("backend", heavy(BACKENDS))
def test_refusal_threshold_is_the_machines_memory(backend, small_machine):
    """On a (pretend) 64 MiB machine a 48 MiB output is computed and an 80 MiB one refused."""
    fits = _huge_call(1, 2**12, 3 * 2**10, 1)  # 48 MiB of float32
    y = conv2d_transpose(**fits, backend=backend)
    assert y.shape == (1, 2**12, 3 * 2**10, 1) and y[0, 0, 0, 0] == 1 and y.sum() == 1
    del y
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"output_shape.*memory"):
            conv2d_transpose(**_huge_call(1, 2**12, 5 * 2**10, 1), backend=backend)  # 80 MiB
        assert tracemalloc.get_traced_memory()[1] < MIB
    finally:
        tracemalloc.stop()


# The size check counts every buffer the call allocates, not only the result: the NHWC
# compute buffer (float16/bfloat16 compute in float32, NCHW goes through an NHWC buffer)
# and contiguous copies of the inputs; else MemoryError (or, with overcommit, the OOM
# killer while the kernel writes) instead of a ValueError up front.
@pytest.mark.parametrize("what", ["float16-result-float32-buffer", "nchw-result-nhwc-buffer", "broadcast-input-copy"])
def test_check_counts_every_buffer_the_call_allocates(what, small_machine):
    if what == "float16-result-float32-buffer":  # 40 MiB result + 80 MiB float32 buffer
        kwargs = _huge_call(1, 2**12, 5 * 2**10, 1, np.float16)
    elif what == "nchw-result-nhwc-buffer":  # 40 MiB result + 40 MiB NHWC buffer
        kwargs = _huge_call(1, 2**12, 5 * 2**9, 1, np.float32, "NCHW")
    else:  # tiny output, but the 128 MiB broadcast input is made contiguous
        kwargs = dict(input=_ones_view((1, 1, 1, 2**25)), filters=_ones_view((1, 1, 1, 2**25)),
                      output_shape=[1, 1, 1, 1], strides=1, padding="SAME")
    with pytest.raises(ValueError, match="memory"):
        conv2d_transpose(**kwargs, backend="numpy")


def test_sensitivity_huge_output_guard(monkeypatch, no_big_allocations):
    """Without the size check, the huge call reaches the (patched) allocator: the guard would see it."""
    monkeypatch.setattr(numba_convt._plan, "check_size", lambda *args: None)
    with pytest.raises(_BigAllocation):
        conv2d_transpose(**_huge_call(1, 2**20, 2**20, 1), backend="numpy")
    assert no_big_allocations.requests == [4 * 2**40]


# ==========================================================================
# 2. Index arithmetic: 64-bit in every compiled kernel; extreme parameters
# ==========================================================================

# Run in a fresh interpreter with an empty NUMBA_CACHE_DIR, so every kernel really
# compiles (and compiled type information is available):
#   (a) 8 threads make the process's very first calls together (compilation races):
#       threads 0-2 small float64 calls (one kernel, raced), 3 the same read-only (another
#       specialization), 4 and 5 float64 layers wide enough for the cpu backend's BLAS path
#       (NCHW with 16 output channels, NHWC with 8: both gather kernels), 6 an int64 layer
#       big enough for the parallel kernel, 7 a small int32 one; each repeats its call 3 times;
#   (b) the results are compared with serial calls made afterwards, and with the reference;
#   (c) a big int32 call after the small int32 one (another kernel, same argument types)
#       shows whether kernels share cache entries;
#   (d) every Numba CPU dispatcher in the modules of every backend is inspected: all integer
#       arguments and all integer variables of the 64-bit-data specializations must be
#       64-bit, and the int64-data specializations may hold no float (index math in
#       float loses exactness beyond 2**53). A deliberately narrow kernel is planted
#       as backend "narrow" to show the inspection catches int32 index arithmetic.
FRESH_SCRIPT = textwrap.dedent(r"""
    import gc, json, sys, threading
    import numpy as np
    import numba
    from numba.core import types
    from numba.core.registry import CPUDispatcher
    import numba_convt

    backend = sys.argv[1]
    SIZES = {"small": ((2, 5, 4, 4), (3, 2, 3, 4), [2, 9, 7, 6]),
             "wide": ((2, 8, 8, 32), (3, 2, 8, 32), [2, 15, 15, 8]),
             "wide16": ((2, 8, 8, 32), (3, 2, 16, 32), [2, 15, 15, 16]),
             "big": ((2, 16, 16, 8), (3, 3, 8, 8), [2, 31, 31, 8]),
             "tiled": ((2, 8, 16, 32), (3, 3, 16, 32), [2, 16, 32, 16])}

    def job(dtype, data_format="NHWC", readonly=False, seed=0, size="small"):
        r = np.random.default_rng(seed)
        x_shape, f_shape, shape = SIZES[size]
        x = (r.standard_normal(x_shape) * 8).astype(dtype)
        f = (r.standard_normal(f_shape) * 8).astype(dtype)
        if data_format == "NCHW":
            x, shape = np.ascontiguousarray(x.transpose(0, 3, 1, 2)), [shape[0], shape[3], *shape[1:3]]
        if readonly:
            x.flags.writeable = f.flags.writeable = False
        return dict(input=x, filters=f, output_shape=shape, strides=[2, 2], padding="SAME",
                    dilations=[1, 2] if size == "small" else 1, data_format=data_format)

    def modules():  # each backend's modules (a package and those in it), and the shared geometry
        found = {}
        for name in numba_convt.available_backends():
            top = numba_convt.get_backend(name).run.__module__
            found[name] = [module for key, module in sorted(sys.modules.items()) if f"{key}.".startswith(f"{top}.")]
        found["geometry"] = [sys.modules["numba_convt._geometry"]]
        return found

    def cache_hits():
        return {f"{module.__name__}.{attr}": sum(obj.stats.cache_hits.values())
                for found in modules().values() for module in found for attr, obj in vars(module).items()
                if isinstance(obj, CPUDispatcher)}

    # (a), (b)
    jobs = [job(np.float64, seed=s) for s in range(2)] + [job(np.float64, size="tiled"),
        job(np.float64, readonly=True), job(np.float64, "NCHW", size="wide16"), job(np.float64, size="wide"),
        job(np.int64, size="big"), job(np.int32)]
    barrier = threading.Barrier(len(jobs))
    results, errors = [[] for _ in jobs], []

    def work(i):
        barrier.wait()
        try:
            for _ in range(3):
                results[i].append(numba_convt.conv2d_transpose(**jobs[i], backend=backend).tobytes())
        except BaseException as error:  # report, never hang
            errors.append(f"thread {i}: {error!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    serial = [numba_convt.conv2d_transpose(**j, backend=backend) for j in jobs]
    reference = [numba_convt.conv2d_transpose(**j, backend="numpy") for j in jobs]
    mismatches = [i for i, s in enumerate(serial) for got in results[i] if got != s.tobytes()]
    far = [i for i, (s, r) in enumerate(zip(serial, reference))
           if not np.allclose(s, r, rtol=1e-5, atol=1e-3 * max(1.0, float(np.abs(r).max())))]
    hits_after_race = cache_hits()

    # (c) the cache directory started empty: any hit is one kernel loading another's code
    numba_convt.conv2d_transpose(**job(np.int32, size="big"), backend=backend)
    hits_at_end = cache_hits()

    # (d) a deliberately narrow kernel, to show the inspection catches it
    @numba.njit
    def narrow_kernel(out, n):
        flat = out.reshape(-1)
        for i in range(np.int32(n)):
            j = np.int32(i) * np.int32(1)
            flat[j] = flat[j] * 1.0

    def narrow_run(spec, x, filters, out):
        numba_convt.get_backend("numpy").run(spec, x, filters, out)
        narrow_kernel(out, out.size)

    numba_convt.register_backend("narrow", narrow_run)
    numba_convt.conv2d_transpose(**job(np.float64), backend="narrow")

    def inspect(backend_modules):
        found = {}
        names = {module.__name__ for module in backend_modules}
        dispatchers = {obj.py_func.__qualname__: obj for obj in gc.get_objects()  # kernels kept in tuples too
                       if issubclass(type(obj), CPUDispatcher) and obj.py_func.__module__ in names}
        for attr, obj in sorted(dispatchers.items()):
            for sig, cres in obj.overloads.items():
                data = sorted({str(a.dtype) for a in sig if isinstance(a, types.Array)})
                entry = found[f"{attr}{tuple(str(a) for a in sig)}"] = {
                    "data": data, "wide": bool(data) and all(np.dtype(d).itemsize >= 8 for d in data),
                    "narrow": [f"argument {i}: {a}" for i, a in enumerate(sig)
                               if isinstance(a, types.Integer) and a.bitwidth < 64],
                    "float": [], "inspected": False}
                typemap = getattr(cres.type_annotation, "typemap", None)
                if typemap is None:  # loaded from a cache: no type information
                    continue
                entry["inspected"] = True
                if entry["wide"]:
                    entry["narrow"] += [f"{name}: {t}" for name, t in typemap.items()
                                        if isinstance(t, types.Integer) and t.bitwidth < 64]
                if data == ["int64"]:
                    entry["float"] += [f"{name}: {t}" for name, t in typemap.items()
                                       if isinstance(t, (types.Float, types.Complex))]
        return found

    kernels = {name: inspect(found) for name, found in modules().items()}
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran
        layer = None
    print(json.dumps(dict(errors=errors, calls=sum(map(len, results)), mismatches=mismatches, far=far,
                          hits_after_race=hits_after_race, hits_at_end=hits_at_end,
                          kernels=kernels, threads=len(jobs), layer=layer)))
""")


@pytest.fixture(scope="module", params=heavy(BACKENDS))
def fresh_process(request, tmp_path_factory):
    """Run FRESH_SCRIPT for one backend in a new interpreter with an empty Numba cache."""
    tmp = tmp_path_factory.mktemp("fresh")
    script = tmp / "fresh.py"
    script.write_text(FRESH_SCRIPT)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp / "numba-cache"))
    done = subprocess.run([sys.executable, str(script), request.param], capture_output=True, text=True,
                          env=env, timeout=300, cwd=tmp)
    assert done.returncode == 0, f"fresh process died (rc {done.returncode}):\n{done.stderr[-4000:]}"
    return request.param, json.loads(done.stdout.strip().splitlines()[-1])


def test_first_calls_from_8_threads_in_a_fresh_process(fresh_process):
    backend, report = fresh_process
    assert report["errors"] == []
    assert report["calls"] == 3 * report["threads"] == 24
    assert report["mismatches"] == [], "a concurrent call differs from the serial one"
    assert report["far"] == [], "serial results differ from the reference"
    hits = {k: v for k, v in report["hits_after_race"].items() if v}
    assert hits == {}, f"kernels loaded from a cache, so no compilation race was tested: {hits}"


# The cpu backend compiles one Python function serial and parallel; Numba's cache key has no
# "parallel" flag, so under one name whichever is compiled first would be loaded by the
# other from the on-disk cache (a small first call would leave the parallel kernel
# single-threaded in every later process). In a fresh cache directory no kernel may hit it.
def test_kernels_do_not_share_cache_entries(fresh_process):
    backend, report = fresh_process
    if not report["kernels"][backend]:
        pytest.skip(f"backend {backend!r} compiled no Numba CPU kernels here")
    hits = {k: v for k, v in report["hits_at_end"].items() if v}
    assert hits == {}, f"loaded another kernel's code from the cache: {hits}"


def test_compiled_kernels_use_64_bit_index_arithmetic(fresh_process):
    backend, report = fresh_process
    overloads = report["kernels"][backend]
    if not overloads:
        pytest.skip(f"backend {backend!r} has no Numba CPU kernels to inspect")
    wide = {k: v for k, v in overloads.items() if v["wide"]}
    assert any(v["data"] == ["int64"] for v in wide.values()) and any(v["data"] == ["float64"] for v in wide.values())
    for key, entry in wide.items():
        assert entry["inspected"], f"{key}: no type information (loaded from a cache?)"
    for key, entry in overloads.items():
        assert entry["narrow"] == [], f"{key}: integers narrower than 64 bits: {entry['narrow']}"
        assert entry["float"] == [], f"{key}: floats in an integer kernel (index math in float?): {entry['float']}"
    print(f"\ninspected {len(wide)} 64-bit specializations of {backend}: {sorted(wide)}")


def test_sensitivity_index_width_inspection(fresh_process):
    """The planted kernel with int32 indices (backend "narrow") is flagged by the same inspection."""
    backend, report = fresh_process
    narrow = [v for k, v in report["kernels"]["narrow"].items() if k.startswith("narrow_kernel(")]
    assert narrow and all(v["inspected"] for v in narrow)
    assert any("int32" in item for v in narrow for item in v["narrow"]), narrow


# Parameters near 2**31 make the kernels' intermediate index values (ky * dilation,
# oy + pad, iy * stride) exceed 2**31 and 2**32 while the arrays stay tiny. The
# "stride-2**30" case is one a gather kernel with int32 index math gets wrong
# (oy + pad_top = 2**31 wraps negative and the tap is dropped; found by a brute-force
# search, see test_sensitivity_extreme_parameters); the others are merely extreme.
I32 = 2**31 - 1
EXTREME = {
    "stride-and-pad-2**31-1": dict(x=(1, 2, 2, 2), f=(2, 2, 2, 2), output_shape=[1, 3, 3, 2], strides=I32,
                                   padding=[[0, 0], [I32, 0], [I32, 1], [0, 0]], dilations=1, pads=(I32, I32)),
    "dilation-2**31-1-same": dict(x=(1, 2, 2, 1), f=(3, 3, 2, 1), output_shape=[1, 4, 3, 2], strides=2,
                                  padding="SAME", dilations=I32, pads=None),
    "stride-2**30-pad-2**31-1": dict(x=(1, 3, 3, 2), f=(1, 1, 2, 2), output_shape=[1, 3, 3, 2], strides=2**30,
                                     padding=[[0, 0], [I32, 0], [I32, 0], [0, 0]], dilations=1, pads=(I32, I32)),
    "explicit-pad-2**31-1": dict(x=(1, 3, 3, 2), f=(3, 3, 1, 2), output_shape=[1, 3, 3, 1], strides=1,
                                 padding=[[0, 0], [I32, I32], [I32, I32], [0, 0]], dilations=I32, pads=(I32, I32)),
}


def _same_pad(in_size, out_size, k, s, d):
    return max(0, (in_size - 1) * s + (k - 1) * d + 1 - out_size) // 2


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(EXTREME), ids=list(EXTREME))
def test_extreme_window_parameters_match_the_definition(name, backend):
    case = EXTREME[name]
    rng = np.random.default_rng(7)
    x = rng.integers(-9, 10, case["x"]).astype(np.float64)
    f = rng.integers(-9, 10, case["f"]).astype(np.float64)
    out_shape = case["output_shape"]
    s = (case["strides"],) * 2 if np.ndim(case["strides"]) == 0 else tuple(case["strides"])
    d = (case["dilations"],) * 2 if np.ndim(case["dilations"]) == 0 else tuple(case["dilations"])
    if case["pads"] is None:
        pads = tuple(_same_pad(x.shape[1 + i], out_shape[1 + i], f.shape[i], s[i], d[i]) for i in range(2))
    else:
        pads = case["pads"]
    expected = direct_transpose(x, f, out_shape[1:3], out_shape[3], s, d, pads, object).astype(np.float64)
    got = conv2d_transpose(x, f, out_shape, case["strides"], case["padding"], dilations=case["dilations"],
                           backend=backend)
    np.testing.assert_array_equal(got, expected)
    assert np.any(expected), "degenerate case: no tap lands"


def _int32_gather(spec, x, filters, out):
    """A gather-form backend whose index arithmetic wraps like C int32 (the bug the extremes catch)."""
    def i32(v):
        return (v + 2**31) % 2**32 - 2**31

    out[...] = 0
    group_out, group_in = filters.shape[2], x.shape[3] // spec.groups
    for oy, ox, ky, kx in np.ndindex(spec.out_h, spec.out_w, spec.k_h, spec.k_w):
        ty, tx = i32(i32(oy + spec.pad_top) - i32(ky * spec.dil_h)), i32(i32(ox + spec.pad_left) - i32(kx * spec.dil_w))
        iy, ix = int(ty / spec.stride_h), int(tx / spec.stride_w)  # C division truncates
        if min(ty, tx) < 0 or i32(iy * spec.stride_h) != ty or i32(ix * spec.stride_w) != tx:
            continue
        if iy >= spec.in_h or ix >= spec.in_w:
            continue
        for co in range(spec.out_c):
            c0 = (co // group_out) * group_in
            out[:, oy, ox, co] += x[:, iy, ix, c0:c0 + group_in] @ filters[ky, kx, co % group_out, c0:c0 + group_in]


def test_sensitivity_extreme_parameters(plant):
    """An int32-index gather passes ordinary calls but fails the extreme-parameter check."""
    name = plant("int32_gather", _int32_gather)
    rng = np.random.default_rng(0)
    x, f = rng.standard_normal(CASE["x_shape"]), rng.standard_normal(CASE["f_shape"])
    np.testing.assert_allclose(_call(x, f, name), _call(x, f, "numpy"), rtol=1e-12)
    with pytest.raises(AssertionError):
        test_extreme_window_parameters_match_the_definition("stride-2**30-pad-2**31-1", name)


def test_output_over_2_gib():
    """A 2.15 GB float64 output (byte offsets beyond 2**31) from a 134 MB input, checked everywhere.

    Stride 4, 1x1 filter, VALID: ``out[4*iy, 4*ix] = x[iy, ix] * f``, zeros elsewhere; the
    last element is the last input pixel, so the highest offsets are written and checked.
    """
    compiled = [b for b in BACKENDS if b != "numpy" and not _simulated(b)]
    if not compiled:
        pytest.skip("no compiled backend")
    n_in = 4100
    out_size = (n_in - 1) * 4 + 1  # 16397: VALID, kernel 1, stride 4
    rng = np.random.default_rng(3)
    x = rng.uniform(1, 2, (1, n_in, n_in, 1))
    f = np.array([[[[1.5]]]])
    for backend in compiled:
        y = conv2d_transpose(x, f, [1, out_size, out_size, 1], 4, "VALID", backend=backend)
        assert y.nbytes > 2**31 and y.shape == (1, out_size, out_size, 1)
        assert y[0, -1, -1, 0] == x[0, -1, -1, 0] * 1.5
        plane = y[0, :, :, 0]
        for start in range(0, out_size, 1024):
            block = plane[start:start + 1024]
            expected = np.zeros_like(block)
            first = -(-start // 4) * 4  # first row of the block that an input row lands on
            expected[first - start::4, ::4] = x[0, first // 4:(start + len(block) + 3) // 4, :, 0] * 1.5
            assert np.array_equal(block, expected), f"{backend}: rows {start}.. differ"
        del y, plane, block, expected


# ==========================================================================
# 3. NaN/Inf propagation, integer wrap-around, inputs never written
# ==========================================================================

def _sprinkle(a, rng, nan, posinf, neginf, zeros):
    flat = a.reshape(-1)
    idx = rng.permutation(flat.size)
    cuts = np.cumsum([nan, posinf, neginf, zeros])
    flat[idx[:cuts[0]]] = np.nan
    flat[idx[cuts[0]:cuts[1]]] = np.inf
    flat[idx[cuts[1]:cuts[2]]] = -np.inf
    flat[idx[cuts[2]:cuts[3]]] = 0
    return a


FLOAT_DTYPES = ["float16", "float32", "float64", "complex64", "complex128"]
try:
    from ml_dtypes import bfloat16
    FLOAT_DTYPES.append("bfloat16")
except ImportError:  # pragma: no cover - optional dependency
    bfloat16 = None


# NumPy (the reference, and the CUDA simulator's scalars) warns about inf - inf and inf * 0, as NumPy does.
@pytest.mark.filterwarnings("ignore:.*invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("layer, backend", layers(BACKENDS))
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_nan_and_inf_propagate_as_in_the_reference(dtype, data_format, layer, backend):
    """NaN, +inf and -inf land exactly where the definition puts them (inf * 0 and inf - inf
    give NaN), for the reference and ``backend``; finite values agree to the dtype's tolerance."""
    dtype = np.dtype(bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    complex_ = dtype.kind == "c"
    spec = LAYERS[layer]
    seen = {"nan": 0, "+inf": 0, "-inf": 0}
    for seed in range(4 if layer == "small" else 2):
        rng = np.random.default_rng(seed)
        x = rng.uniform(-2, 2, spec["x_shape"])
        f = rng.uniform(-2, 2, spec["f_shape"])
        specials = max(1, x.size // 80)  # a few of each, so most outputs stay finite
        # complex: NaN only (inf * complex is formula-dependent: (inf+0j)*(1+1j) differs between C99 and naive)
        _sprinkle(x, rng, specials, 0 if complex_ else specials, 0 if complex_ else specials, 3 * specials)
        _sprinkle(f, rng, 1, 0 if complex_ else 1, 0 if complex_ else 1, max(8, f.size // 20))
        if complex_:
            x = x + 1j * rng.uniform(-2, 2, x.shape)
            f = f - 1j * rng.uniform(-2, 2, f.shape)
        x, f = x.astype(dtype), f.astype(dtype)
        acc = np.complex128 if complex_ else np.float64
        oracle = _oracle(x, f, layer, acc)
        reference = _call(x, f, "numpy", data_format, layer=layer)
        got = _call(x, f, backend, data_format, layer=layer)
        assert got.dtype == dtype
        for name, mask in ieee_classes(oracle).items():
            np.testing.assert_array_equal(ieee_classes(reference)[name], mask, err_msg=f"reference: {name} positions")
            np.testing.assert_array_equal(ieee_classes(got)[name], mask, err_msg=f"{backend}: {name} positions")
            seen[name] += int(mask.sum())
        finite = np.isfinite(oracle)
        assert finite.mean() > 0.2, "too few finite outputs to compare values"
        tol = {"e": 2e-2, "f": 2e-5, "F": 2e-5, "d": 1e-12, "D": 1e-12}.get(dtype.char, 2e-2)
        scale = max(1.0, float(np.abs(oracle[finite]).max(initial=0)))
        err = np.abs(got.astype(acc)[finite] - oracle[finite]).max(initial=0)
        assert err <= tol * scale * 4, f"finite values: error {err}"
    assert seen["nan"] > 0 and (complex_ or (seen["+inf"] > 0 and seen["-inf"] > 0)), seen


@pytest.mark.parametrize("layer, backend", layers(BACKENDS, ("small", "big")))
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_overflow_wraps_like_numpy(dtype, data_format, layer, backend):
    """Full-range integers: every product and sum overflows; the result is the exact sum mod 2**bits."""
    info = np.iinfo(dtype)
    spec = LAYERS[layer]
    rng = np.random.default_rng(11)
    x = rng.integers(info.min, info.max, spec["x_shape"], dtype=dtype, endpoint=True)
    f = rng.integers(info.min, info.max, spec["f_shape"], dtype=dtype, endpoint=True)
    exact = _oracle(x, f, layer, object)
    modulus = 2**info.bits
    wrapped = np.array([(int(v) - info.min) % modulus + info.min for v in exact.reshape(-1)],
                       dtype).reshape(exact.shape)
    assert max(abs(int(v)) for v in exact.reshape(-1)) > 2**info.bits, "no overflow happened"
    np.testing.assert_array_equal(_call(x, f, "numpy", data_format, layer=layer), wrapped)
    np.testing.assert_array_equal(_call(x, f, backend, data_format, layer=layer), wrapped)


def test_sensitivity_wrap_check(plant):
    """A backend that saturates instead of wrapping (int64 sums clipped to int32) is caught."""
    def saturating(spec, x, filters, out):
        wide = np.empty(out.shape, np.int64)
        numba_convt.get_backend("numpy").run(spec, x.astype(np.int64), filters.astype(np.int64), wide)
        info = np.iinfo(out.dtype)
        out[...] = np.clip(wide, info.min, info.max)

    name = plant("saturating", saturating)
    with pytest.raises(AssertionError, match="Mismatched elements"):
        test_integer_overflow_wraps_like_numpy(np.int32, "NHWC", "small", name)


def _snapshot(*arrays):
    return [(a.shape, a.strides, a.dtype.str, a.tobytes()) for a in arrays]


def _check_inputs_untouched(backend, dtype, data_format, use_out, layer="small"):
    """Call on writeable, then read-only inputs; both must work, agree bitwise, and leave the inputs as they were."""
    spec = LAYERS[layer]
    rng = np.random.default_rng(5)
    x = rng.uniform(-3, 3, spec["x_shape"])
    f = rng.uniform(-3, 3, spec["f_shape"])
    x, f = x.astype(dtype), f.astype(dtype)
    if data_format == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    kwargs = dict(_layer_args(layer, data_format), backend=backend)
    shape = kwargs["output_shape"]
    shape_before, strides_before = list(shape), list(kwargs["strides"])
    before = _snapshot(x, f)
    out = np.full(shape, 3, dtype) if use_out else None
    y = conv2d_transpose(x, f, **kwargs, out=out)
    assert _snapshot(x, f) == before, "an input array was written"
    assert shape == shape_before and kwargs["strides"] == strides_before, "an argument list was changed"
    x.flags.writeable = f.flags.writeable = False
    out = np.full(shape, 3, dtype) if use_out else None
    y_readonly = conv2d_transpose(x, f, **kwargs, out=out)
    assert _snapshot(x, f) == before
    assert y_readonly.tobytes() == y.tobytes(), "read-only inputs give a different result"


@pytest.mark.parametrize("layer, backend", layers(BACKENDS, ("small", "wide16", "big")))
@pytest.mark.parametrize("use_out", [False, True], ids=["result", "out="])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.complex64])
def test_inputs_are_never_written(dtype, data_format, use_out, layer, backend):
    _check_inputs_untouched(backend, dtype, data_format, use_out, layer)


def test_sensitivity_inputs_check(plant):
    """A backend that writes into its input is caught (writeable) or cannot run (read-only)."""
    def vandal(spec, x, filters, out):
        _numpy_run(spec, x, filters, out)
        x.reshape(-1)[0] += 1

    name = plant("vandal", vandal)
    with pytest.raises(AssertionError, match="input array was written"):
        _check_inputs_untouched(name, np.float32, "NHWC", False)


@pytest.mark.filterwarnings("ignore:.*invalid value encountered:RuntimeWarning")
def test_sensitivity_nan_check(plant):
    """A backend that computes with NaN replaced by 0 is caught by the NaN-position check."""
    def nan_dropper(spec, x, filters, out):
        _numpy_run(spec, np.where(np.isnan(x), 0, x), filters, out)

    name = plant("nan_dropper", nan_dropper)
    with pytest.raises(AssertionError, match="nan positions"):
        test_nan_and_inf_propagate_as_in_the_reference("float32", "NHWC", "small", name)


# ==========================================================================
# 4. Threads: concurrent results equal serial ones; the kernels release the GIL
# ==========================================================================

def _jobs():
    """Nine distinct calls: shapes, dtypes, layouts, groups, small, wide (BLAS-sized) and big layers."""
    specs = [
        ((2, 5, 4, 4), (3, 2, 3, 4), [2, 9, 7, 6], [2, 2], "SAME", [1, 2], np.float32, "NHWC"),
        ((2, 5, 4, 4), (3, 2, 3, 4), [2, 9, 7, 6], [2, 2], "SAME", [1, 2], np.float64, "NCHW"),
        ((1, 8, 8, 8), (3, 3, 4, 8), [1, 16, 16, 4], 2, "SAME", 1, np.float32, "NHWC"),
        ((2, 16, 16, 8), (3, 3, 8, 8), [2, 31, 31, 8], 2, "SAME", 1, np.int32, "NHWC"),  # parallel-sized
        ((2, 7, 5, 3), (4, 4, 5, 3), [2, 7, 5, 5], 1, "SAME", 2, np.complex64, "NCHW"),
        ((1, 16, 16, 16), (5, 5, 16, 16), [1, 32, 32, 16], 2, "SAME", 1, np.float64, "NHWC"),
        ((2, 8, 8, 32), (3, 2, 16, 32), [2, 15, 15, 16], 2, "SAME", 1, np.float32, "NHWC"),  # wide
        ((2, 4, 4, 2), (3, 3, 2, 2), [2, 8, 8, 2], 2, "SAME", 1, np.float16, "NHWC"),
        ((4, 3, 3, 8), (3, 3, 8, 8), [4, 6, 6, 8], 2, [[0, 0], [1, 1], [1, 1], [0, 0]], 1, np.int64, "NCHW"),
    ]
    jobs = []
    for i, (xs, fs, os_, s, p, d, dtype, layout) in enumerate(specs):
        rng = np.random.default_rng(100 + i)
        x = (rng.standard_normal(xs) * 4).astype(dtype)
        f = (rng.standard_normal(fs) * 4).astype(dtype)
        if layout == "NCHW":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            os_ = [os_[0], os_[3], os_[1], os_[2]]
            if isinstance(p, list):
                p = [p[0], p[3], p[1], p[2]]
        jobs.append(dict(input=x, filters=f, output_shape=os_, strides=s, padding=p, dilations=d,
                         data_format=layout, out_dtype=dtype))
    return jobs


def _run_job(job, backend, use_out=False):
    kwargs = {k: v for k, v in job.items() if k != "out_dtype"}
    out = np.empty(job["output_shape"], job["out_dtype"]) if use_out else None
    return conv2d_transpose(**kwargs, backend=backend, out=out).tobytes()


def _concurrent_vs_serial(backend, jobs, n_threads=8, repeats=3):
    """Mismatches between 8 concurrent threads and serial calls, in two scenarios.

    "same": every thread runs the same shape and dtype (job 0's) on its own data;
    "mixed": thread ``t`` runs all jobs, starting at job ``t``, alternating ``out=``.
    Returns (mismatches, number of concurrent calls).
    """
    same = []
    for t in range(n_threads):
        rng = np.random.default_rng(1000 + t)
        job = dict(jobs[0], input=(rng.standard_normal(jobs[0]["input"].shape) * 4).astype(jobs[0]["out_dtype"]))
        same.append(job)
    serial_same = [_run_job(job, backend) for job in same]
    serial = [_run_job(job, backend) for job in jobs]
    mismatches, calls = [], [0]
    lock = threading.Lock()
    barrier = threading.Barrier(n_threads)

    def worker(t):
        try:
            barrier.wait(timeout=60)
            for r in range(repeats):
                got = _run_job(same[t], backend, use_out=r % 2 == 1)
                found = [] if got == serial_same[t] else [("same", t, r)]
                for k in range(len(jobs)):
                    j = (t + k) % len(jobs)
                    if _run_job(jobs[j], backend, use_out=(t + k + r) % 2 == 1) != serial[j]:
                        found.append(("mixed", t, j, r))
                with lock:
                    mismatches.extend(found)
                    calls[0] += 1 + len(jobs)
        except BaseException as error:  # noqa: BLE001 - report, never hang
            with lock:
                mismatches.append(("error", t, repr(error)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return mismatches, calls[0]


@pytest.mark.parametrize("backend", heavy(BACKENDS))
def test_8_threads_give_the_serial_results_bitwise(backend):
    mismatches, calls = _concurrent_vs_serial(backend, _jobs())
    assert mismatches == []
    assert calls == 8 * 3 * (1 + len(_jobs()))


def test_sensitivity_thread_check(plant):
    """A backend that shares one scratch buffer between calls is caught by the thread check."""
    shared = {}

    def racy(spec, x, filters, out):
        buffer = shared.setdefault((out.shape, out.dtype.str), np.empty_like(out))
        _numpy_run(spec, x, filters, buffer)
        time.sleep(0.002)  # widen the window another thread writes the buffer in
        out[...] = buffer

    name = plant("racy", racy)
    mismatches, _ = _concurrent_vs_serial(name, _jobs(), repeats=2)
    assert any(m[0] == "same" for m in mismatches), mismatches


def _longest_stall(call):
    """Run ``call()`` while a pure-Python thread counts; return (call seconds, longest stall of the counter).

    The counter records a timestamp every 64 increments; the longest stall is the
    longest interval within the call in which it recorded nothing. A kernel that
    keeps the GIL freezes the counter for (nearly) the whole call.
    """
    stamps, stop, started = [], threading.Event(), threading.Event()

    def counter():
        i = 0
        started.set()
        while not stop.is_set():
            i += 1
            if i % 64 == 0:
                stamps.append(time.perf_counter())

    thread = threading.Thread(target=counter)
    thread.start()
    started.wait()
    time.sleep(0.02)
    t0 = time.perf_counter()
    call()
    t1 = time.perf_counter()
    stop.set()
    thread.join()
    inside = [t0] + [s for s in stamps if t0 < s < t1] + [t1]
    return t1 - t0, max(b - a for a, b in zip(inside, inside[1:]))


def _stall_of_a_long_call(backend, dtype, seconds=0.3):
    """``_longest_stall`` of the first call lasting ``seconds`` or more, doubling the batch until one does.

    float64 with 32 input channels is a wide layer (the cpu backend multiplies it with
    BLAS, then gathers in Numba); int64 has no BLAS: direct Numba loops only.
    """
    rng = np.random.default_rng(0)
    f = (rng.standard_normal((7, 7, 32, 32)) * 4).astype(dtype)
    batch = 1
    while True:
        x = (rng.standard_normal((batch, 24, 24, 32)) * 4).astype(dtype)
        call = lambda: conv2d_transpose(x, f, [batch, 48, 48, 32], 2, "SAME", backend=backend)  # noqa: E731
        if batch == 1:
            call()  # compile
        duration, stall = _longest_stall(call)
        if duration >= seconds or batch >= 256:
            return duration, stall
        batch *= 2


@pytest.mark.parametrize("backend", heavy(BACKENDS))
@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_kernels_release_the_gil(dtype, backend):
    """A pure-Python thread keeps counting through a long call (one Numba thread, so a core is free):
    it never stalls for a quarter of the call (measured stalls: a few ms)."""
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        duration, stall = _stall_of_a_long_call(backend, dtype)
    finally:
        numba.set_num_threads(threads)
    print(f"\nGIL {backend} {np.dtype(dtype)}: call {duration:.3f} s, longest stall of the Python thread "
          f"{stall * 1e3:.1f} ms")
    assert duration >= 0.2
    assert stall < duration / 4, f"Python thread stalled {stall:.3f} s of a {duration:.3f} s call: GIL held"


def test_sensitivity_gil_check(plant):
    """A backend whose Numba kernel keeps the GIL (no nogil) freezes the counter: the same check fails."""
    @numba.njit(nogil=False)
    def spin(n):
        h = np.uint64(1)
        for i in range(n):  # a dependency chain: about a nanosecond per step, not vectorizable
            h = h * np.uint64(6364136223846793005) + np.uint64(i)
        return h

    n = 1 << 20
    spin(n)  # compile
    while True:  # LLVM unrolls the chain: measure the rate instead of guessing it
        start = time.perf_counter()
        spin(n)
        elapsed = time.perf_counter() - start
        if elapsed >= 0.05:
            break
        n *= 4
    per_microsecond = n / elapsed / 1e6

    def holder(spec, x, filters, out):
        spin(int(out.size * per_microsecond))  # about 1 us per output element, GIL held
        out[...] = 0  # (the values do not matter here)

    name = plant("gil_holder", holder)
    duration, stall = _stall_of_a_long_call(name, np.float64)
    assert duration >= 0.2 and stall >= duration / 4, (duration, stall)


# ==========================================================================
# 5. Memory: no growth over 10,000 calls; peak of one call is bounded
# ==========================================================================

SOAK = REPO / "tools" / "memory_soak.py"
RSS_NOISE = 2 * MIB
needs_soak = pytest.mark.skipif(not SOAK.exists() or not os.path.exists("/proc/self/statm"),
                                reason="needs tools/memory_soak.py and Linux /proc")


def _soak(*args):
    """Run tools/memory_soak.py in a fresh interpreter (clean heap, Numba allocation counters on)."""
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    done = subprocess.run([sys.executable, str(SOAK), *map(str, args), "--json"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=heavy(BACKENDS))
def soak_report(request):
    """10,000 small calls (NHWC, NCHW, out=, a BLAS-sized layer), then 64 MiB peak calls, in a fresh process."""
    return request.param, _soak("--backend", request.param, "--calls", 10_000, "--peak-mib", 64)


@needs_soak
def test_10000_calls_do_not_grow_resident_memory(soak_report):
    backend, report = soak_report
    print(f"\nsoak {backend}: {report['calls']} calls in {report['seconds']} s, RSS growth "
          f"{report['rss_growth'] / KIB:.0f} KiB (trace {report['trace']}), Numba allocations {report['nrt']}")
    assert report["calls"] == 10_000
    assert report["rss_growth"] < RSS_NOISE, f"resident memory grew {report['rss_growth'] / MIB:.1f} MiB"
    nrt = report["nrt"]  # None where Numba's runtime never started (the NumPy reference)
    assert nrt is not None or backend == "numpy", "NUMBA_NRT_STATS had no effect"
    nrt = nrt or {"alloc": 0, "free": 0, "mi_alloc": 0, "mi_free": 0}
    assert nrt["alloc"] == nrt["free"] and nrt["mi_alloc"] == nrt["mi_free"], f"Numba leaked: {nrt}"


@needs_soak
def test_peak_resident_memory_of_one_call(soak_report):
    """VmHWM (unlike tracemalloc, it sees memory allocated inside Numba kernels) rises by at most
    result + the documented scratch + 8 MiB of noise, for 64 MiB direct and BLAS-sized layers."""
    backend, report = soak_report
    for name, peak in report["peak"].items():
        print(f"\npeak RSS {backend} {name}: result {peak['result_bytes'] / MIB:.1f} MiB, inputs "
              f"{peak['input_bytes'] / MIB:.1f} MiB, peak increase {peak['rss_peak_increase'] / MIB:.1f} MiB")
        if not peak["hwm_reset"]:
            pytest.skip("this kernel does not allow resetting VmHWM (/proc/self/clear_refs)")
        # The layers are side x side x C_in float32, filters 3x3x8xC_in, stride 2.
        c_in = 8 if name == "direct" else 32
        side = math.isqrt(peak["input_bytes"] // 4 // c_in)
        allowed = _allowed_extra(backend, (1, side, side, c_in), (3, 3, 8, c_in), (1, 2 * side, 2 * side, 8),
                                 2, np.float32, "NHWC", False)
        assert peak["rss_peak_increase"] <= allowed + 8 * MIB, (name, peak, allowed)


@needs_soak
def test_sensitivity_memory_growth_check():
    """A backend keeping 512 bytes per call is caught over 10,000 calls (5 MB > the 2 MiB noise bound)."""
    report = _soak("--backend", "numpy", "--calls", 10_000, "--peak-mib", 0, "--leak", 512)
    assert report["rss_growth"] >= RSS_NOISE, report["rss_growth"]


def _peak_case(name):
    """(input NHWC, filters, output NHWC, stride, padding) of a peak-memory workload."""
    shapes = {  # input NHWC, filters, output NHWC, stride, padding
        "small": ((2, 8, 8, 16), (3, 3, 8, 16), (2, 16, 16, 8), 2, "SAME"),
        "dcgan": ((8, 16, 16, 128), (4, 4, 64, 128), (8, 32, 32, 64), 2, "SAME"),
        "s1_k3": ((8, 32, 32, 64), (3, 3, 64, 64), (8, 32, 32, 64), 1, "SAME"),
        "img_1ch": ((1, 512, 512, 1), (5, 5, 1, 1), (1, 1024, 1024, 1), 2, "SAME"),
    }
    return shapes[name]


PEAK_VARIANTS = [  # dtype, layout, out=
    ("float32", "NHWC", False), ("float32", "NHWC", True), ("float64", "NHWC", False),
    ("float32", "NCHW", False), ("float32", "NCHW", True), ("float16", "NHWC", False),
]
SLACK = 64 * KIB
BAND = 2 * MIB


def _allowed_extra(backend, x_shape, f_shape, out_shape, stride, dtype, layout, use_out):
    """The documented bound on the bytes one call allocates, beyond the caller's arrays.

    result (none with ``out=``)
    + when NCHW or float16/bfloat16: an NHWC buffer and an NHWC copy of the input, in the
      compute dtype (float32 for the half types), and for the half types a float32 copy of
      the filters;
    + backend scratch: compiled backends one repacked copy of the filters plus, per Numba
      thread, ``max(2 MiB, (5 * overlap + 1) * W_in * KH * KW * C_out * itemsize)`` bytes with
      ``overlap = (KH - 1) // stride`` (the cpu backend's BLAS product for one task);
      the "numpy" reference one ``N * H_in * W_in * (C_out + C_in)``-element temporary;
    + 64 KiB.
    """
    dtype = np.dtype(dtype)
    compute = np.dtype(np.float32) if dtype.itemsize == 2 else dtype
    item = compute.itemsize
    n_out, n_in, n_f = math.prod(out_shape), math.prod(x_shape), math.prod(f_shape)
    allowed = 0 if use_out else n_out * dtype.itemsize
    if layout == "NCHW" or compute != dtype:
        allowed += (n_out + n_in) * item
    if compute != dtype:
        allowed += n_f * item
    n, h, w, c_in = x_shape
    if backend == "numpy":
        allowed += n * h * w * (out_shape[3] + c_in) * item
    else:
        y_row = w * f_shape[0] * f_shape[1] * out_shape[3] * item
        allowed += n_f * item + numba.get_num_threads() * max(BAND, (5 * ((f_shape[0] - 1) // stride) + 1) * y_row)
    return allowed + SLACK


@pytest.mark.parametrize("backend", heavy(BACKENDS))
def test_peak_memory_of_one_call_is_bounded(backend):
    rows = []
    tracemalloc.start()
    try:
        for workload in ["small", "dcgan", "s1_k3", "img_1ch"]:
            x_shape, f_shape, out_shape, stride, padding = _peak_case(workload)
            rng = np.random.default_rng(0)
            for dtype, layout, use_out in PEAK_VARIANTS:
                x = rng.standard_normal(x_shape).astype(dtype)
                f = rng.standard_normal(f_shape).astype(dtype)
                shape = list(out_shape)
                if layout == "NCHW":
                    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
                    shape = [shape[0], shape[3], shape[1], shape[2]]
                out = np.empty(shape, dtype) if use_out else None
                conv2d_transpose(x, f, shape, stride, padding, layout, backend=backend, out=out)  # compile
                gc.collect()
                tracemalloc.reset_peak()
                base = tracemalloc.get_traced_memory()[0]
                y = conv2d_transpose(x, f, shape, stride, padding, layout, backend=backend, out=out)
                extra = tracemalloc.get_traced_memory()[1] - base
                del y
                result = math.prod(out_shape) * np.dtype(dtype).itemsize
                allowed = _allowed_extra(backend, x_shape, f_shape, out_shape, stride, dtype, layout, use_out)
                rows.append((workload, dtype, layout, use_out, result, x.nbytes + f.nbytes, extra, allowed))
    finally:
        tracemalloc.stop()
    print(f"\npeak bytes allocated by one call, backend {backend} (MiB)")
    print(f"{'workload':8} {'dtype':7} {'layout':6} {'out=':5} {'result':>7} {'inputs':>7} {'peak':>7} "
          f"{'peak/result':>11} {'bound':>7}")
    for workload, dtype, layout, use_out, result, inputs, extra, allowed in rows:
        print(f"{workload:8} {dtype:7} {layout:6} {str(use_out):5} {result / MIB:7.2f} {inputs / MIB:7.2f} "
              f"{extra / MIB:7.2f} {extra / result:11.2f} {allowed / MIB:7.2f}")
    over = [row for row in rows if row[6] > row[7]]
    assert over == [], f"calls allocating more than the documented bound: {over}"


def test_sensitivity_peak_check(plant):
    """A backend that allocates scratch of three results is caught by the bound."""
    def wasteful(spec, x, filters, out):
        temp = np.empty((3,) + out.shape, out.dtype)
        _numpy_run(spec, x, filters, temp[0])
        out[...] = temp[0]

    name = plant("wasteful", wasteful)
    x, f = np.ones((8, 32, 32, 64), np.float32), np.ones((3, 3, 64, 64), np.float32)
    conv2d_transpose(x, f, [8, 32, 32, 64], 1, backend=name)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        y = conv2d_transpose(x, f, [8, 32, 32, 64], 1, backend=name)
        extra = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert extra > _allowed_extra("cpu", x.shape, f.shape, y.shape, 1, np.float32, "NHWC", False)
