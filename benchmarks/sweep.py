"""Layer sweep: numba_convt against its peers on layers drawn from real uses.

Usage::

    python -m benchmarks.sweep [--layers 200] [--seed 0] [--rounds 3]
                               [--dtype float32,float64] [--layout NHWC,NCHW]
                               [--busy] [--json sweep.json] [--max-gflop 2]
                               [--ranks 2] [--set nd_workloads]
                               [--layers-from layers.json]

Layers are drawn (seeded) from scientific imaging (1-16 channels, frames
64-1024, interpolation-style kernels), deep-learning decoders (16-512
channels), anisotropic and 1-D-style kernels, dilated, grouped and
depthwise layers, with SAME, VALID and explicit padding. ``--ranks 1,2,3``
adds 1-D layers (signals of 1-16 channels and 1k-64k samples, decoders of
16-256 channels) and 3-D ones (volumes of 1-16 channels, 16^3-128^3;
decoders of 16-256 channels, 4^3-32^3), dilated and grouped at each rank;
``--ranks 2`` draws the same layers as before 1-D/3-D existed. ``--set``
times a named set instead (``workloads``: the 8 2-D workloads,
``nd_workloads``: the 5 of the N-d speed issue) and prints every layer.
Layout ``NHWC`` means channels last and ``NCHW`` channels first at every
rank (NWC/NCW, NDHWC/NCDHW). Each library runs
in its own process (idle OpenMP/Eigen threads of one would steal the cores
of the next), in alternating rounds; a layer's time is its median over the
rounds. Peers: PyTorch (NCHW and channels_last, the best of both), and TF
and JAX where installed, each checked against the NumPy reference on the
smaller layers. ``--busy`` keeps one core busy with another process
throughout. Prints per dtype and layout the median, 90th percentile and
maximum of numba_convt's time / the best peer's, and the 10 worst layers
with numba_convt's GFLOP/s and GB/s (input, filters and output moved once)
and each peer's time ("-": cannot run).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

from .layers import draw_layers, gflop, named_set
from .peer_calls import PEERS, arguments, call_ours, ours_function


def _time(function, budget=0.3, at_least=3, at_most=50):
    """Median seconds of ``function()`` after a warm-up call, repeated for about ``budget`` seconds."""
    import time

    function()
    times = []
    while len(times) < at_least or (sum(times) < budget and len(times) < at_most):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _worker(library, layers, dtype, layout):
    """Times of every layer for one library in this process (None where it cannot run)."""
    import warnings

    warnings.filterwarnings("ignore")
    make = PEERS.get(library, call_ours)
    times, errors = [], []
    for layer in layers:
        x, f = _arrays(layer, dtype, layout)
        try:
            functions, error = make(layer, x, f, layout), None
        except Exception as refused:  # a peer that refuses the layer
            functions, error = [], f"{type(refused).__name__}: {refused}"
        times.append(min((_time(fn) for fn in functions), default=None))
        checks = (_check(library, layer, x, f, layout, fn) for fn in functions)
        errors.append(error or next(filter(None, checks), None))
    return {"times": times, "errors": errors}


def _check(library, layer, x, f, layout, function):
    """None, or why ``function``'s result differs from the reference (small layers only)."""
    if library == "ours" or gflop(layer) > 0.05:
        return None
    expected = ours_function(layer)(x.astype(np.float64), f.astype(np.float64), *arguments(layer, layout),
                                    backend="numpy")
    got = np.asarray(function(), np.float64)
    scale = max(np.abs(expected).max(initial=0), 1)
    error = np.abs(got - expected).max(initial=0) / scale if got.shape == expected.shape else np.inf
    return None if error < 1e-4 else f"mismatch {error:.3g}"


def _arrays(layer, dtype, layout):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(layer["input"], dtype=np.float64).astype(dtype)
    f = rng.standard_normal(layer["filters"], dtype=np.float64).astype(dtype)
    return (np.ascontiguousarray(np.moveaxis(x, -1, 1)) if layout == "NCHW" else x), f


def _run_worker(library, layers_file, dtype, layout):
    command = [sys.executable, "-m", "benchmarks.sweep", "--worker", library, "--layers-file", layers_file,
               "--dtype", dtype, "--layout", layout]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return None if "ModuleNotFoundError" in done.stderr else sys.exit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _summary(layers, ours, peers, itemsize):
    """Per-layer ratios to the best peer, and the distribution."""
    rows = []
    for i, layer in enumerate(layers):
        best = min(((t, name) for name, times in peers.items() if (t := times[i]) is not None), default=None)
        if best is not None and ours[i] is not None:
            rows.append(dict(layer, ours_ms=ours[i] * 1e3, peer_ms=best[0] * 1e3, peer=best[1],
                             ratio=ours[i] / best[0], gflops=gflop(layer) / ours[i],
                             gbs=_bytes(layer, itemsize) / ours[i] / 1e9,
                             peers_ms={name: None if times[i] is None else times[i] * 1e3
                                       for name, times in peers.items()}))
    ratios = np.array([row["ratio"] for row in rows])
    stats = {"layers": len(rows), "median": float(np.median(ratios)), "p90": float(np.percentile(ratios, 90)),
             "max": float(ratios.max()), "geomean": float(math.exp(np.log(ratios).mean()))}
    return stats, sorted(rows, key=lambda row: -row["ratio"])


def _bytes(layer, itemsize):
    """Bytes a layer must move at least: read the input and filters, write the output once."""
    return itemsize * sum(int(np.prod(layer[key])) for key in ("input", "filters", "output"))


def _copy_bandwidth(size=2**25):
    """GB/s of a large array copy (bytes read + written), the floor for memory-bound layers."""
    a, b = np.ones(size // 8), np.empty(size // 8)
    return 2 * size / _time(lambda: np.copyto(b, a)) / 1e9


def _medians(runs):
    """Per-layer median over rounds (None where every round gave None)."""
    columns = zip(*[run["times"] for run in runs])
    return [float(np.median(ts)) if (ts := [t for t in column if t is not None]) else None for column in columns]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtype", default="float32,float64")
    parser.add_argument("--layout", default="NHWC,NCHW")
    parser.add_argument("--max-gflop", type=float, default=2.0, help="skip layers of more work")
    parser.add_argument("--busy", action="store_true", help="keep one core busy with another process")
    parser.add_argument("--json", help="write every layer's times and ratios here")
    parser.add_argument("--layers-from", help="time the layers of this JSON file (a list, or a --json report)")
    parser.add_argument("--ranks", default="2", help="spatial dimensions of the drawn layers, e.g. 1,2,3")
    parser.add_argument("--set", help="time a named set of layers: workloads, nd_workloads")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--layers-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        with open(args.layers_file) as file:
            layers = json.load(file)
        print(json.dumps(_worker(args.worker, layers, args.dtype, args.layout)))
        return
    if args.layers_from:
        with open(args.layers_from) as file:
            layers = json.load(file)
        layers = layers["layers"] if isinstance(layers, dict) else layers
    elif args.set:
        layers = named_set(args.set)
    else:
        layers = draw_layers(args.layers, args.seed, args.max_gflop, tuple(int(r) for r in args.ranks.split(",")))
    bandwidth = _copy_bandwidth()
    print(f"copy bandwidth {bandwidth:.1f} GB/s (read + write, 32 MiB)")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    report = {"layers": layers, "copy_gbs": bandwidth, "runs": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            layers_file = os.path.join(tmp, "layers.json")
            with open(layers_file, "w") as file:
                json.dump(layers, file)
            for dtype in args.dtype.split(","):
                for layout in args.layout.split(","):
                    report["runs"][f"{dtype} {layout}"] = _measure(layers, layers_file, dtype, layout, args.rounds,
                                                                   len(layers) if args.set else 10)
    finally:
        if busy:
            busy.kill()
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)


def _measure(layers, layers_file, dtype, layout, rounds, shown):
    libraries = ["ours", *PEERS]
    runs = {library: [] for library in libraries}
    for r in range(rounds):  # alternating: each round starts with the next library
        for library in libraries[r % len(libraries):] + libraries[:r % len(libraries)]:
            result = _run_worker(library, layers_file, dtype, layout)
            if result is not None:
                runs[library].append(result)
    times = {library: _medians(found) for library, found in runs.items() if found}
    peers = {library: t for library, t in times.items() if library != "ours"}
    stats, rows = _summary(layers, times["ours"], peers, np.dtype(dtype).itemsize)
    print(f"\n{dtype} {layout}: {stats['layers']} layers, ratio = numba_convt / best peer: "
          f"median {stats['median']:.2f}, p90 {stats['p90']:.2f}, max {stats['max']:.2f}, "
          f"geomean {stats['geomean']:.2f}")
    for row in rows[:shown]:
        _print_row(row)
    mismatches = {library: [e for e in found[0]["errors"] if e and e.startswith("mismatch")]
                  for library, found in runs.items() if found}
    if any(mismatches.values()):
        print("  MISMATCHES:", {k: v for k, v in mismatches.items() if v})
    return {"stats": stats, "rows": rows, "times": times,
            "errors": {library: found[0]["errors"] for library, found in runs.items() if found}}


def _print_row(row):
    others = "  ".join(f"{name} {'-' if ms is None else f'{ms:.3f}'}" for name, ms in row["peers_ms"].items())
    print(f"  {row['ratio']:5.2f}  ours {row['ours_ms']:8.3f} ms {row['gflops']:6.1f} GFLOP/s {row['gbs']:5.1f} GB/s  "
          f"best {row['peer']:<5} {row['peer_ms']:8.3f} ms  ({others})  {row['kind']:<11} in {row['input']} "
          f"f {row['filters']} s {row['strides']} d {row['dilations']} g {row['groups']} {row['padding']}")

if __name__ == "__main__":
    main()
