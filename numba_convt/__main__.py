"""``python -m numba_convt``: check the backends against the reference, then time a few layers.

See ``python -m numba_convt --help``. Exit status 0 when every check passes,
1 when one fails, 2 for bad options.
"""

import argparse
import sys
import time

import numpy as np

import numba_convt
from numba_convt._normalize import supported_dtypes
from numba_convt._warmup import resolve_backends, resolve_dtypes

# (name, function, input shape, filters shape, output_shape, strides, padding, data_format, dilations):
# every argument form of each rank, and 1-D/3-D layers with 16-48 channels (the cpu backend's BLAS and tiled
# paths, channels-first arrays read in place). conv_transpose picks the rank from len(output_shape).
CHECKS = [
    ("same-s2", "conv2d_transpose", (2, 6, 4, 3), (3, 3, 2, 3), [2, 12, 8, 2], 2, "SAME", "NHWC", None),
    ("valid-extra", "conv2d_transpose", (2, 5, 5, 4), (4, 3, 3, 4), [2, 17, 12, 3], [3, 2], "VALID", "NHWC", 1),
    ("explicit-nchw", "conv2d_transpose", (1, 3, 5, 6), (3, 2, 4, 3), [1, 4, 9, 11], [2, 2],
     [[0, 0], [0, 0], [2, 1], [0, 3]], "NCHW", [1, 2]),
    ("dilated-grouped", "conv2d_transpose", (2, 7, 6, 6), (3, 3, 2, 6), [2, 7, 6, 6], 1, "SAME", "NHWC", 2),
    ("len2-output", "conv2d_transpose", (3, 4, 4, 5), (2, 2, 3, 5), [8, 8], [1, 2, 2, 1], "VALID", "NHWC", None),
    ("1d-same-s2", "conv1d_transpose", (2, 9, 3), (3, 2, 3), [2, 18, 2], 2, "SAME", "NWC", None),
    ("1d-ncw-grouped", "conv1d_transpose", (2, 4, 7), (3, 2, 4), [2, 4, 17], [1, 1, 2], "VALID", "NCW", 2),
    ("1d-ncw-32ch", "conv_transpose", (2, 24, 40), (4, 32, 24), [2, 32, 80], 2, [[0, 0], [0, 0], [1, 1]], "NCW", 1),
    ("3d-same-s2", "conv3d_transpose", (2, 3, 4, 5, 3), (3, 3, 3, 2, 3), [2, 6, 8, 10, 2], 2, "SAME", "NDHWC", None),
    ("3d-valid-mixed", "conv3d_transpose", (1, 3, 4, 3, 2), (2, 3, 2, 3, 2), [1, 6, 8, 9, 3], [2, 1, 3], "VALID",
     "NDHWC", [1, 2, 1]),
    ("3d-grouped-pads", "conv_transpose", (1, 4, 3, 3, 3), (3, 3, 3, 1, 4), [1, 2, 6, 6, 5], 2,
     [[0, 0], [0, 0], [1, 0], [0, 1], [1, 1]], "NCDHW", None),
    ("3d-ncdhw-16ch", "conv3d_transpose", (1, 16, 4, 6, 6), (3, 3, 3, 16, 16), [1, 16, 8, 12, 12], 2, "SAME",
     "NCDHW", None),
]
# Largest error accepted, relative to the largest expected magnitude: summation
# order in the accumulating dtype, or one rounding of a float16/bfloat16 result.
TOLERANCES = {
    "float16": 2e-3, "bfloat16": 2e-2, "float32": 2e-5, "complex64": 2e-5,
    "float64": 1e-12, "complex128": 1e-12, "int32": 0, "int64": 0,
}
DEFAULT_DTYPES = "float32,float64,int32"
# (name, input shape, filters shape, output_shape, strides, padding): 2-D, 1-D and 3-D, channels last
TIMINGS = [
    ("dcgan_g3", (8, 16, 16, 128), (4, 4, 64, 128), [8, 32, 32, 64], 2, "SAME"),
    ("unet_up2", (4, 32, 32, 128), (2, 2, 64, 128), [4, 64, 64, 64], 2, "VALID"),
    ("img_1ch", (1, 512, 512, 1), (5, 5, 1, 1), [1, 1024, 1024, 1], 2, "SAME"),
    ("signal_up4", (8, 2048, 32), (8, 16, 32), [8, 8192, 16], 4, "SAME"),
    ("volume_up2", (1, 16, 16, 16, 32), (4, 4, 4, 16, 32), [1, 32, 32, 32, 16], 2, "SAME"),
]
REPEAT = 5


def parse_args(argv):
    """The options, validated: argparse exits with status 2 on a bad one."""
    parser = argparse.ArgumentParser(
        prog="python -m numba_convt",
        description=(
            "Check numba_convt's backends against the 'numpy' reference on configurations of "
            "conv1d_transpose, conv2d_transpose, conv3d_transpose and conv_transpose covering every "
            "argument form (SAME/VALID/explicit padding, channels last and first, strides, dilations, "
            "groups, 4- and 2-value output_shape, 16-48 channels) in each dtype, then time "
            f"{len(TIMINGS)} typical layers ({', '.join(t[0] for t in TIMINGS)}). "
            "Exit status 1 if a check fails."
        ),
        epilog="example: python -m numba_convt --backend cpu --dtype float64 --no-timings",
    )
    parser.add_argument(
        "--backend", action="append", metavar="NAME[,NAME...]",
        help="backends to check and time (repeatable); default: check every available one "
        f"({', '.join(numba_convt.available_backends())}) and time 'auto' "
        f"({numba_convt.get_backend('auto').name!r})",
    )
    parser.add_argument(
        "--dtype", action="append", metavar="NAME[,NAME...]",
        help=f"dtypes to check (repeatable; default {DEFAULT_DTYPES}); accepted: "
        f"{', '.join(str(d) for d in supported_dtypes())}. Timings use the first float dtype "
        "given (else the first)",
    )
    parser.add_argument("--no-timings", action="store_true", help="run the checks only")
    args = parser.parse_args(argv)
    try:
        chosen = resolve_backends(_split(args.backend)) if args.backend else None
        args.backends = chosen or numba_convt.available_backends()
        args.timed = chosen or resolve_backends(None)
    except (ValueError, TypeError) as error:
        parser.error(f"--backend: {error}")
    try:
        args.dtypes = resolve_dtypes(_split(args.dtype or [DEFAULT_DTYPES]), "--dtype")
    except TypeError as error:
        parser.error(str(error))
    return args


def _split(values):
    """Repeated options of comma-separated names -> one list of names."""
    return [name.strip() for value in values for name in value.split(",")]


def check(backend, dtypes, rng):
    """Compare ``backend`` with the reference in each dtype; return the number of failures."""
    if backend == "numpy":
        print("  numpy    is the reference: not checked against itself", flush=True)
        return 0
    failures = 0
    for name, function, x_shape, f_shape, output_shape, strides, padding, data_format, dilations in CHECKS:
        function = getattr(numba_convt, function)
        for dtype in dtypes:
            x, f = (_random(rng, shape, dtype) for shape in (x_shape, f_shape))
            args = (x, f, output_shape, strides, padding, data_format, dilations)
            expected = function(*args, backend="numpy").astype(np.complex128)
            try:
                actual = function(*args, backend=backend)
            except Exception as exc:  # a broken backend is a failed check, not a crash
                result, ok = f"raised {type(exc).__name__}: {exc}", False
            else:
                error = np.abs(actual.astype(np.complex128) - expected).max(initial=0)
                ok = error <= TOLERANCES[dtype.name] * max(1, np.abs(expected).max(initial=0))
                result = f"max error {error:.2e}"
            failures += not ok
            print(f"  {backend:8} {name:16} {dtype.name:10} {result}  {'ok' if ok else 'FAIL'}", flush=True)
    return failures


def _random(rng, shape, dtype):
    """Values in [-4, 4]: whole numbers for integer dtypes, with an imaginary part for complex."""
    values = rng.uniform(-4, 4, shape)
    if dtype.kind == "i":
        values = values.round()
    elif dtype.kind == "c":
        values = values + 1j * rng.uniform(-4, 4, shape)
    return values.astype(dtype)


def best_time(function, repeat=REPEAT):
    """Best wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def time_layers(backends, dtype, rng):
    """Print a timing table, one row per (backend, layer), each announced as it starts."""
    print(f"\n{dtype.name} timings (best of {REPEAT} calls, after one warm-up call):")
    print(f"      {'backend':8} {'layer':10} {'input':>21} {'output':>21} {'ms':>8} {'GFLOP/s':>8}")
    jobs = [(backend, layer) for backend in backends for layer in TIMINGS]
    for i, (backend, (name, x_shape, f_shape, output_shape, strides, padding)) in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {backend:8} {name:10} {str(x_shape):>21} {str(tuple(output_shape)):>21} ",
              end="", flush=True)
        x, f = _random(rng, x_shape, dtype), _random(rng, f_shape, dtype)
        run = lambda: numba_convt.conv_transpose(x, f, output_shape, strides, padding, backend=backend)  # noqa: E731
        run()
        seconds = best_time(run)
        flops = 2 * np.prod(x_shape) * np.prod(f_shape[:-1])
        print(f"{seconds * 1e3:8.2f} {flops / seconds / 1e9:8.1f}", flush=True)


def main(argv=None):
    """Run the checks and the timing table; return the exit status."""
    args = parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"numba_convt {numba_convt.__version__}; backends available: {', '.join(numba_convt.available_backends())}")
    print(f"checking {', '.join(args.backends)} in {', '.join(d.name for d in args.dtypes)}", flush=True)
    failures = sum(check(backend, args.dtypes, rng) for backend in args.backends)
    if not args.no_timings:
        timed_dtype = next((d for d in args.dtypes if d.kind == "f"), args.dtypes[0])
        time_layers(args.timed, timed_dtype, rng)
    print("\nall checks passed" if not failures else f"\n{failures} checks FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
