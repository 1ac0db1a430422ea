"""The cpu backend's paths, each forced and compared with the NumPy reference.

Random configurations rarely reach every path of ``backends/cpu/``: the
three direct inner loops (picked by channel counts), the BLAS path with its
two gathers, and its three ways to split the work into tasks (several
images, one image, bands of rows: only for large layers), and the
register-tiled kernel (``_tile``) with its bands, copies and edges.
"""

import os
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest
from common import assert_close

import numba_convt
from numba_convt import _plan
from numba_convt.backends import cpu
from numba_convt.backends.cpu import _blas, _cost, _gemm

# (input NHWC, filters [KH, KW, C_out/G, C_in], output_shape, strides, padding, dilations, dtype)
PATHS = {
    "direct-pixels": ((2, 7, 9, 2), (3, 5, 2, 2), [2, 14, 17, 2], [2, 2], "SAME", [1, 1], "float32"),
    "direct-out-channels": ((2, 6, 5, 8), (3, 3, 8, 8), [2, 13, 11, 8], [2, 2], "VALID", [1, 1], "float64"),
    "direct-in-channels": ((2, 5, 6, 20), (4, 3, 3, 20), [2, 14, 12, 3], [3, 2], "SAME", [1, 2], "int32"),
    "direct-grouped": ((1, 6, 6, 24), (3, 3, 4, 24), [1, 6, 6, 8], 1, [[0, 0], [1, 1], [2, 0], [0, 0]], 1, "float32"),
    "blas-out-channels": ((2, 9, 7, 32), (4, 3, 24, 32), [2, 18, 14, 24], [2, 2], "SAME", [1, 1], "float32"),
    "blas-pixels": ((3, 8, 10, 16), (5, 4, 3, 16), [3, 20, 25, 3], [2, 2], "VALID", [1, 2], "float64"),
    "blas-pixel-shuffle": ((5, 6, 6, 16), (2, 3, 16, 16), [5, 12, 18, 16], [2, 3], "VALID", 1, "float32"),
    "blas-cropped": ((2, 9, 7, 16), (3, 3, 16, 16), [2, 6, 12, 16], [1, 2], [[0, 0], [4, 3], [1, 5], [0, 0]], 2, "float32"),
    "blas-empty-rows": ((1, 5, 16, 16), (1, 3, 16, 16), [1, 13, 18, 16], [3, 1], "VALID", 1, "float32"),
    "blas-subpixel": ((2, 24, 24, 16), (4, 4, 8, 16), [2, 48, 48, 8], 2, "SAME", 1, "float32"),
    "blas-subpixel-anisotropic": ((1, 30, 12, 16), (4, 8, 4, 16), [1, 59, 44, 4], [2, 4],
                                  [[0, 0], [1, 2], [3, 5], [0, 0]], 1, "complex64"),
    "blas-complex": ((1, 8, 8, 16), (3, 3, 16, 16), [1, 8, 8, 16], 1, "SAME", [2, 2], "complex128"),
}


def _case(name, data_format="NHWC"):
    x_shape, f_shape, output_shape, strides, padding, dilations, dtype = PATHS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x, f = rng.uniform(-4, 4, x_shape), rng.uniform(-4, 4, f_shape)
    if np.dtype(dtype).kind == "i":
        x, f = x.round(), f.round()
    if np.dtype(dtype).kind == "c":
        x, f = x - 1j * x[..., ::-1], f + 1j
    if data_format == "NCHW":  # the cpu backend reads and writes NCHW in place on its BLAS paths
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        output_shape = [output_shape[i] for i in (0, 3, 1, 2)]
        padding = padding if isinstance(padding, str) else [padding[i] for i in (0, 3, 1, 2)]
    return x.astype(dtype), f.astype(dtype), output_shape, strides, padding, data_format, dilations


# (_Y_BYTES, _MIN_TASKS) -> how the BLAS path splits its work
SPLITS = {"images": (1 << 30, 1), "one-image": (1 << 30, 1 << 10), "bands": (1, 1), "rows": (1, 1 << 10)}


# NCHW inputs reach the GEMM copied to NHWC per task, or read transposed per image
LAYOUTS = {"NHWC": 0, "NCHW-copied": 1 << 30, "NCHW-transposed": 1}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name", PATHS)
def test_each_path_matches_reference(name, split, layout, monkeypatch):
    """The BLAS path as such: with the register-tiled and dot kernels off
    (they take most of these layers, and have their own tests: test_tiled.py)."""
    monkeypatch.setattr(_cost, "_use_tiled", lambda spec: False)
    monkeypatch.setattr(_cost, "_use_dot", lambda spec: False)
    y_bytes, min_tasks = SPLITS[split]
    monkeypatch.setattr(_cost, "_Y_BYTES", y_bytes)
    monkeypatch.setattr(_cost, "_MIN_TASKS", min_tasks)
    monkeypatch.setattr(_gemm, "_NCHW_GEMM_PIXELS", LAYOUTS[layout])
    args = _case(name, layout[:4])
    spec = _spec(*args)
    assert _cost._use_blas(spec) == name.startswith("blas")
    assert cpu.takes_nchw(spec) == name.startswith("blas")  # so NCHW reaches the BLAS kernels as it is
    assert _cost._is_subpixel(spec) == ("subpixel" in name)
    _, images, band, _ = _cost._split(spec)
    if name.startswith("blas"):
        assert cpu.plan(spec).split[:3] == ("subpixel" in name, images, band)  # what the BLAS kernels get
    assert images > 1 or split != "images" or spec.batch == 1
    rows = spec.out_h
    if "subpixel" in name:  # bands of block rows
        rows = (spec.out_h - 1 + spec.pad_top) // spec.stride_h + 1 - spec.pad_top // spec.stride_h
    assert (band < rows) == (split in ("bands", "rows"))
    expected = numba_convt.conv2d_transpose(*args, backend="numpy")
    out = np.full_like(expected, 7)  # the kernels must write every element
    numba_convt.conv2d_transpose(*args, backend="cpu", out=out)
    assert_close(out, expected, args[0].dtype)


# Layers of fewer than 64 input pixels: BLAS where its GEMM saves more than its fixed cost
FEW_PIXELS = {
    "many-channels": (((2, 4, 4, 512), (5, 5, 128, 512), [2, 8, 8, 128], 2), "blas"),
    "one-pixel-gemv": (((1, 1, 1, 256), (3, 3, 128, 256), [1, 2, 2, 128], 2), "blas"),
    "tiny": (((4, 2, 3, 16), (1, 1, 32, 16), [4, 4, 6, 32], 2), "direct"),
}


@pytest.mark.parametrize("name", FEW_PIXELS)
def test_few_pixels_take_blas_where_its_gemm_outweighs_its_fixed_cost(name):
    """The cost model's BLAS rule below 64 input pixels, on synthetic shapes:
    a 512-channel 4x4 decoder layer runs 2.7x faster on BLAS than on the
    direct loops (2 cores), a one-pixel input (a GEMV) 4-5x; a 16 -> 32
    channel 1x1 layer on 24 pixels 2-3x slower (BLAS's ~20 us call)."""
    (x_shape, f_shape, output_shape, stride), path = FEW_PIXELS[name]
    rng = np.random.default_rng(0)
    x, f = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(f_shape).astype(np.float32)
    args = (x, f, output_shape, stride, "SAME", "NHWC", 1)
    assert _cost._path(_spec(*args)) == path
    assert_close(numba_convt.conv2d_transpose(*args, backend="cpu"),
                 numba_convt.conv2d_transpose(*args, backend="numpy"), x.dtype)


def test_api_hands_nchw_blas_calls_over_as_they_are(monkeypatch):
    monkeypatch.setattr(_cost, "_use_tiled", lambda spec: False)
    seen, run_blas = [], _gemm._run_blas
    monkeypatch.setattr(_gemm, "_run_blas", lambda plan, x, *rest: seen.append(x.shape) or run_blas(plan, x, *rest))
    args = _case("blas-out-channels", "NCHW")
    numba_convt.conv2d_transpose(*args, backend="cpu")
    assert seen == [args[0].shape]  # NCHW, not copied to NHWC first


@pytest.mark.parametrize("name", [name for name in PATHS if name.startswith("blas")])
def test_without_numpys_openblas_the_direct_kernels_run(name, monkeypatch):
    monkeypatch.setattr(_blas, "gemm", lambda dtype: None)
    args = _case(name)
    assert not _cost._use_blas(_spec(*args))
    assert_close(
        numba_convt.conv2d_transpose(*args, backend="cpu"),
        numba_convt.conv2d_transpose(*args, backend="numpy"),
        args[0].dtype,
    )


@pytest.mark.parametrize("name", ["blas-out-channels", "blas-pixels", "blas-cropped"])
@pytest.mark.parametrize("y_bytes", [1, 1 << 12, 1 << 14, 1 << 16])
def test_bands_bound_y_and_recompute(name, y_bytes, monkeypatch):
    """A band's Y holds at most max(_Y_BYTES, 5 * overlap + 1 rows), and bands
    are at least 4x as tall as the input rows neighbours share."""
    monkeypatch.setattr(_cost, "_Y_BYTES", y_bytes)
    spec = _spec(*_case(name))
    _, band_h, y_bytes_reported = _cost._tasks(spec, 8)
    y_row = spec.in_w * spec.k_h * spec.k_w * spec.out_c * 8
    overlap = (spec.k_h - 1) * spec.dil_h // spec.stride_h
    for o0 in range(0, spec.out_h, band_h):  # the input rows each band reaches, brute force
        rows = {(oy + spec.pad_top - ky * spec.dil_h) // spec.stride_h
                for oy in range(o0, min(spec.out_h, o0 + band_h)) for ky in range(spec.k_h)
                if (oy + spec.pad_top - ky * spec.dil_h) % spec.stride_h == 0}
        rows = {iy for iy in rows if 0 <= iy < spec.in_h}
        assert len(rows) * y_row <= min(y_bytes_reported, max(y_bytes, (5 * overlap + 1) * y_row))
    assert band_h >= min(4 * overlap * spec.stride_h, -(-spec.out_h // 2))


# Shapes the cost model keeps off the sub-pixel kernel (edge blocks, stride 1 with
# dilation, few output channels), which the kernel itself must still get right.
SUBPIXEL_FORCED = [
    ((2, 5, 7, 16), (4, 4, 3, 16), [2, 10, 14, 3], 2, "SAME", 1),
    ((3, 6, 5, 17), (3, 3, 5, 17), [3, 9, 9, 5], 1, [[0, 0], [1, 0], [0, 2], [0, 0]], [2, 3]),
    ((3, 4, 6, 16), (6, 4, 2, 16), [3, 15, 14, 2], [3, 2], "VALID", 1),
    ((3, 9, 3, 20), (2, 8, 4, 20), [3, 9, 8, 4], [1, 4], [[0, 0], [0, 1], [5, 3], [0, 0]], 1),
]


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", range(len(SUBPIXEL_FORCED)))
def test_subpixel_kernel_on_shapes_the_cost_model_avoids(case, data_format, monkeypatch):
    x_shape, f_shape, output_shape, strides, padding, dilations = SUBPIXEL_FORCED[case]
    rng = np.random.default_rng(case)
    x, f = rng.uniform(-4, 4, x_shape).astype(np.float64), rng.uniform(-4, 4, f_shape).astype(np.float64)
    if data_format == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        output_shape = [output_shape[i] for i in (0, 3, 1, 2)]
        padding = padding if isinstance(padding, str) else [padding[i] for i in (0, 3, 1, 2)]
    args = (x, f, output_shape, strides, padding, data_format, dilations)
    assert _cost._use_blas(_spec(*args)) and not _cost._is_subpixel(_spec(*args))
    monkeypatch.setattr(_cost, "_is_subpixel", lambda spec: True)  # every case's taps split evenly
    monkeypatch.setattr(_cost, "_use_tiled", lambda spec: False)  # and BLAS, not the kernels before it
    monkeypatch.setattr(_cost, "_use_dot", lambda spec: False)
    assert_close(numba_convt.conv2d_transpose(*args, backend="cpu"),
                 numba_convt.conv2d_transpose(*args, backend="numpy"), x.dtype)


def test_layers_whose_tasks_need_huge_scratch_run_direct_loops():
    """One input row of Y here is 64 MiB x 4: the BLAS path would allocate it
    per task inside the kernel; the direct loops need no scratch."""
    x, f = np.ones((1, 2, 4096, 16), np.float32), np.ones((16, 16, 64, 16), np.float32)
    spec = _spec(x, f, [17, 4111], 1, "VALID", "NHWC", 1)
    assert _cost._split(spec)[3] > _cost._MAX_TASK_BYTES and not _cost._use_blas(spec)
    y = numba_convt.conv2d_transpose(x, f, [17, 4111], 1, "VALID")
    assert y[0, 8, 2000, 0] == 2 * 16 * 16  # 2 input rows x 16 taps wide x 16 channels, all ones


needs_openblas = pytest.mark.skipif(_blas._library() is None, reason="NumPy without its own OpenBLAS")


def _openblas_threads():
    library, prefix, suffix = _blas._library()
    return getattr(library, f"{prefix}openblas_get_num_threads{suffix}")()


@needs_openblas
def test_each_gemm_has_its_own_ctypes_class():
    """Numba's dispatcher caches a ctypes function's type by its Python class: if
    the float32 and float64 gemm shared one (as a CDLL's functions do), a kernel
    called with the second dtype's would take the slow dispatch path on every
    call (0.3 ms instead of 0.07 ms on a small BLAS layer, measured)."""
    classes = {type(_blas.gemm(np.dtype(name))) for name in ("float32", "float64", "complex64", "complex128")}
    assert len(classes) == 4


@pytest.fixture
def blas_threads(monkeypatch):
    """OpenBLAS's thread count inside each BLAS call's ``_blas.threads``, as the calls go."""
    seen = []

    class Recording(_blas.threads):
        def __enter__(self):
            super().__enter__()
            seen.append(_openblas_threads())

    monkeypatch.setattr(_blas, "threads", Recording)
    return seen


@needs_openblas
def test_blas_path_runs_openblas_single_threaded(blas_threads):
    numba_convt.conv2d_transpose(*_case("blas-pixels", "NCHW"), backend="cpu")  # NHWC: the dot kernel
    assert blas_threads == [1]


@needs_openblas
@pytest.mark.parametrize("name", ["blas-pixels", "blas-subpixel"])
def test_fewer_tasks_than_cores_run_each_gemm_on_every_thread(name, blas_threads, monkeypatch):
    """Where the split gives fewer tasks than cores, the tasks run one after
    another and OpenBLAS runs each GEMM on Numba's thread count; the result
    is bitwise that of one GEMM per thread."""
    args = _case(name, "NCHW")
    apart = numba_convt.conv2d_transpose(*args, backend="cpu")
    monkeypatch.setattr(_cost, "_MIN_TASKS", 1 << 20)
    _plan._cache.clear()  # the calls' plans, made before
    assert cpu.plan(_spec(*args)).split[3]
    alone = numba_convt.conv2d_transpose(*args, backend="cpu")
    assert blas_threads == [1, numba.get_num_threads()]
    assert alone.tobytes() == apart.tobytes()


@needs_openblas
def test_openblas_thread_count_restored_after_concurrent_calls():
    get = _openblas_threads
    before = get()
    args = _case("blas-pixels", "NCHW")
    expected = numba_convt.conv2d_transpose(*args, backend="numpy")
    results, seen = [], []

    def call():
        for _ in range(5):
            results.append(numba_convt.conv2d_transpose(*args, backend="cpu"))
            seen.append(get())

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert get() == before
    assert len(results) == 20
    for result in results:
        assert_close(result, expected, args[0].dtype)


def _spec(x, f, *rest):
    from numba_convt._normalize import normalize

    return normalize(x, f, *rest)


WORKQUEUE_SCRIPT = """
import threading, numpy as np, numba, numba_convt
x, f = np.ones((1, 128, 128, 4), np.float32), np.ones((4, 4, 4, 4), np.float32)        # direct, parallel
y, g = np.ones((4, 32, 32, 32), np.float32), np.ones((3, 3, 32, 32), np.float32)      # BLAS, parallel
calls = [(x, f, [256, 256], 2), (y, g, [32, 32], 1)]
expected = [numba_convt.conv2d_transpose(*call) for call in calls]
same = []
def work():
    for _ in range(10):
        same.extend(np.array_equal(numba_convt.conv2d_transpose(*c), e) for c, e in zip(calls, expected))
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(numba.threading_layer(), sum(same), len(same))
"""


def test_concurrent_calls_under_numbas_workqueue_layer():
    """Numba's fallback pool aborts the process on concurrent parallel launches
    unless the backend makes them take turns."""
    result = subprocess.run([sys.executable, "-c", WORKQUEUE_SCRIPT], capture_output=True, text=True,
                            env={**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["workqueue", "80", "80"]
