"""``python -m numba_convt``: check every backend against the reference, then time.

Each available backend is compared with the ``"numpy"`` reference on a few
configurations covering the argument forms; then the default backend is timed
on a few typical layers. Exit status 1 if any check fails.
"""

import sys
import time

import numpy as np

import numba_convt

# (name, input shape, filters shape, output_shape, strides, padding, data_format, dilations)
CHECKS = [
    ("same-s2", (2, 6, 4, 3), (3, 3, 2, 3), [2, 12, 8, 2], 2, "SAME", "NHWC", None),
    ("valid-extra", (2, 5, 5, 4), (4, 3, 3, 4), [2, 17, 12, 3], [3, 2], "VALID", "NHWC", 1),
    ("explicit-nchw", (1, 3, 5, 6), (3, 2, 4, 3), [1, 4, 9, 11], [2, 2], [[0, 0], [0, 0], [2, 1], [0, 3]], "NCHW", [1, 2]),
    ("dilated-grouped", (2, 7, 6, 6), (3, 3, 2, 6), [2, 7, 6, 6], 1, "SAME", "NHWC", 2),
    ("len2-output", (3, 4, 4, 5), (2, 2, 3, 5), [8, 8], [1, 2, 2, 1], "VALID", "NHWC", None),
]
DTYPES = {"float32": 2e-5, "float64": 1e-12, "int32": 0}
# (name, input shape, filters shape, output_shape, strides, padding)
TIMINGS = [
    ("dcgan_g3", (8, 16, 16, 128), (4, 4, 64, 128), [8, 32, 32, 64], 2, "SAME"),
    ("unet_up2", (4, 32, 32, 128), (2, 2, 64, 128), [4, 64, 64, 64], 2, "VALID"),
    ("img_1ch", (1, 512, 512, 1), (5, 5, 1, 1), [1, 1024, 1024, 1], 2, "SAME"),
]


def check(backend, rng):
    """Compare ``backend`` with the reference; return the number of failures."""
    failures = 0
    for name, x_shape, f_shape, output_shape, strides, padding, data_format, dilations in CHECKS:
        for dtype, tolerance in DTYPES.items():
            x, f = (_random(rng, shape, dtype) for shape in (x_shape, f_shape))
            args = (x, f, output_shape, strides, padding, data_format, dilations)
            expected = numba_convt.conv2d_transpose(*args, backend="numpy")
            actual = numba_convt.conv2d_transpose(*args, backend=backend)
            error = np.abs(actual.astype(float) - expected).max(initial=0)
            ok = error <= tolerance * max(1, np.abs(expected).max(initial=0))
            failures += not ok
            print(f"  {backend:8} {name:16} {dtype:8} max error {error:.2e}  {'ok' if ok else 'FAIL'}")
    return failures


def _random(rng, shape, dtype):
    values = rng.uniform(-4, 4, shape)
    return (values.round() if np.dtype(dtype).kind == "i" else values).astype(dtype)


def best_time(function, repeat=5):
    """Best wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    """Run the checks and the timing table; return the exit status."""
    rng = np.random.default_rng(0)
    backends = numba_convt.available_backends()
    print(f"numba_convt {numba_convt.__version__}; backends available: {', '.join(backends)}")
    failures = sum(check(backend, rng) for backend in backends if backend != "numpy")
    default = numba_convt.get_backend("auto").name
    print(f"\nfloat32 timings, backend {default!r} (best of 5, after one warm-up call):")
    print(f"  {'layer':10} {'input':>18} {'output':>20} {'ms':>8} {'GFLOP/s':>8}")
    for name, x_shape, f_shape, output_shape, strides, padding in TIMINGS:
        x = rng.standard_normal(x_shape, np.float32)
        f = rng.standard_normal(f_shape, np.float32)
        run = lambda: numba_convt.conv2d_transpose(x, f, output_shape, strides, padding, backend=default)  # noqa: E731
        run()
        seconds = best_time(run)
        flops = 2 * np.prod(x_shape) * np.prod(f_shape[:3])
        print(f"  {name:10} {str(x_shape):>18} {str(tuple(output_shape)):>20} {seconds * 1e3:8.2f} {flops / seconds / 1e9:8.1f}")
    print("\nall checks passed" if not failures else f"\n{failures} checks FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
