"""Memory soak and peak for ``conv2d_transpose`` (Linux: reads ``/proc/self``).

Soak: ``--calls`` calls of small transposed convolutions (cycling NHWC, NCHW,
``out=`` and a layer wide enough for the cpu backend's BLAS path) after 300
warm-up calls; prints resident memory (RSS) along the way, its growth, and
Numba's allocation counters when ``NUMBA_NRT_STATS=1`` is set (every
allocation Numba's runtime makes must be freed).

Peak: one call whose float32 result is about ``--peak-mib`` MiB, for a
direct-kernel layer and a BLAS-path layer; the increase of the peak resident
set (``VmHWM``, reset through ``/proc/self/clear_refs``) during the call, which
unlike ``tracemalloc`` also sees memory allocated inside Numba kernels.

    NUMBA_NRT_STATS=1 python tools/memory_soak.py --calls 1000000 --backend cpu
    python tools/memory_soak.py --calls 0 --peak-mib 512 --json

``--leak BYTES`` is a self-test: it wraps the backend in one that keeps
``BYTES`` per call, to show the measurement sees such a leak.
"""

import argparse
import gc
import json
import os
import sys
import time

import numpy as np

import numba_convt

MIB = 2**20


def _page():
    return os.sysconf("SC_PAGE_SIZE")


def rss():
    """Resident set size in bytes (``/proc/self/statm``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _page()


def _status(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak():
    """Reset ``VmHWM`` to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return _status("VmHWM") <= _status("VmRSS") + MIB


def nrt_stats():
    """Numba's runtime allocation counters, or None unless ``NUMBA_NRT_STATS=1``."""
    try:
        from numba.core.runtime import rtsys
        stats = rtsys.get_allocation_stats()
    except (RuntimeError, ImportError, AttributeError):
        return None
    return {"alloc": stats.alloc, "free": stats.free, "mi_alloc": stats.mi_alloc, "mi_free": stats.mi_free}


def soak_forms(backend):
    """Small calls covering the layouts, ``out=`` and (on cpu) the BLAS path."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 4, 4))
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    f = rng.standard_normal((3, 3, 4, 4))
    out = np.empty((2, 8, 8, 4))
    wide_x = rng.standard_normal((1, 8, 8, 16)).astype(np.float32)
    wide_f = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
    conv = numba_convt.conv2d_transpose
    return [
        lambda: conv(x, f, [2, 8, 8, 4], 2, backend=backend),
        lambda: conv(x_nchw, f, [2, 4, 8, 8], 2, data_format="NCHW", backend=backend),
        lambda: conv(x, f, [2, 8, 8, 4], 2, backend=backend, out=out),
        lambda: conv(wide_x, wide_f, [1, 16, 16, 8], 2, backend=backend),
    ]


def soak(backend, calls, checkpoints=10, log=None):
    forms = soak_forms(backend)
    for i in range(300):
        forms[i % len(forms)]()
    gc.collect()
    start, trace = rss(), []
    t0 = time.perf_counter()
    step = max(1, calls // checkpoints)
    for i in range(calls):
        forms[i % len(forms)]()
        if (i + 1) % step == 0:
            trace.append((i + 1, rss() - start))
            if log:
                log(f"{i + 1:>10} calls  RSS {rss() / MIB:8.1f} MiB  growth {(rss() - start) / 1024:8.0f} KiB")
    seconds = time.perf_counter() - t0
    gc.collect()
    return {"calls": calls, "seconds": round(seconds, 3), "rss_start": start,
            "rss_growth": rss() - start, "trace": trace}


def peak(backend, mib):
    """Peak RSS increase of one call with a ~``mib`` MiB float32 result, direct and BLAS layers."""
    rng = np.random.default_rng(0)
    side = max(2, int((mib * MIB / (4 * 8 * 4)) ** 0.5))  # result (1, 2*side, 2*side, 8) float32
    layers = {
        "direct": ((1, side, side, 8), (3, 3, 8, 8)),
        "blas": ((1, side, side, 32), (3, 3, 8, 32)),
    }
    report = {}
    for name, (x_shape, f_shape) in layers.items():
        x = rng.standard_normal(x_shape).astype(np.float32)
        f = rng.standard_normal(f_shape).astype(np.float32)
        shape = [1, 2 * side, 2 * side, 8]
        tiny = np.ascontiguousarray(x[:, :4, :4])
        numba_convt.conv2d_transpose(tiny, f, [1, 8, 8, 8], 2, backend=backend)  # compile outside the peak
        gc.collect()
        ok = reset_peak()
        base = rss()
        y = numba_convt.conv2d_transpose(x, f, shape, 2, backend=backend)
        report[name] = {"hwm_reset": ok, "result_bytes": y.nbytes, "input_bytes": x.nbytes + f.nbytes,
                        "rss_peak_increase": _status("VmHWM") - base}
        del y
    return report


def leaky(backend, nbytes):
    """Register backend "leaky": ``backend`` that keeps ``nbytes`` of zeros per call."""
    inner, kept = numba_convt.get_backend(backend).run, []

    def run(spec, x, filters, out):
        inner(spec, x, filters, out)
        kept.append(bytearray(nbytes))

    numba_convt.register_backend("leaky", run, overwrite=True)
    return "leaky"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--peak-mib", type=int, default=64, help="0: skip the peak measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    parser.add_argument("--leak", type=int, default=0, help="self-test: leak this many bytes per call")
    args = parser.parse_args(argv)
    if args.leak:
        args.backend = leaky(args.backend, args.leak)
    log = None if args.json else print
    result = {"backend": args.backend, "nrt_before": nrt_stats()}
    result.update(soak(args.backend, args.calls, log=log))
    result["nrt"] = nrt_stats()
    result["peak"] = peak(args.backend, args.peak_mib) if args.peak_mib else None
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.calls} calls on {args.backend} in {result['seconds']} s: RSS growth "
              f"{result['rss_growth'] / 1024:.0f} KiB; Numba allocations {result['nrt']}")
        for name, entry in (result["peak"] or {}).items():
            print(f"peak {name}: result {entry['result_bytes'] / MIB:.1f} MiB, peak RSS increase "
                  f"{entry['rss_peak_increase'] / MIB:.1f} MiB (VmHWM reset: {entry['hwm_reset']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
