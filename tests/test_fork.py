"""Worker processes after parallel calls: fork, forkserver and spawn, under
every threading layer Numba may pick, give the parent's bits and never abort
or hang. A process forked after Numba's OpenMP pool started runs each kernel
whole on the calling thread (``numba_convt._parallel``), which must equal the
parallel shares bitwise.
"""

import json
import os
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

import numba_convt
from numba_convt import _parallel
from numba_convt._normalize import normalize
from numba_convt.backends import cpu
from numba_convt.backends.cpu import _cost

# (dtype, input shape, filters shape, output_shape, strides, padding, data_format): one
# layer per kernel of the cpu backend, each with work enough for its parallel build
LAYERS = {
    "direct-int32": ("int32", (2, 32, 32, 8), (3, 3, 8, 8), [64, 64], 2, "SAME", "NHWC"),
    "direct-dot-groups": ("float64", (2, 16, 16, 32), (3, 3, 2, 32), [2, 32, 32, 4], 2, "SAME", "NHWC"),
    "direct-nchw": ("float32", (4, 8, 64, 64), (4, 4, 8, 8), [128, 128], 2, "SAME", "NCHW"),
    "blas": ("float32", (2, 8, 8, 64), (4, 4, 32, 64), [16, 16], 2, "SAME", "NHWC"),
    "subpixel": ("float32", (2, 8, 8, 32), (4, 4, 16, 32), [14, 14], 2, [[0, 0], [2, 2], [2, 2], [0, 0]],
                 "NHWC"),
    "tiled": ("float32", (1, 16, 16, 32), (3, 3, 32, 32), [16, 16], 1, "SAME", "NHWC"),
    "dot": ("float32", (2, 16, 16, 32), (4, 4, 3, 32), [32, 32], 2, "SAME", "NHWC"),
}


def _arrays(layer):
    dtype, x_shape, f_shape, *_ = layer
    rng = np.random.default_rng(0)
    return (rng.uniform(-4, 4, x_shape).round(1).astype(dtype),
            rng.uniform(-4, 4, f_shape).round(1).astype(dtype))


def _call(layer):
    _, _, _, output_shape, strides, padding, data_format = layer
    x, f = _arrays(layer)
    return numba_convt.conv2d_transpose(x, f, output_shape, strides, padding, data_format)


def test_layers_reach_every_cpu_kernel():
    paths = set()
    for layer in LAYERS.values():
        spec = normalize(*_arrays(layer), *layer[3:], None)
        path = cpu.plan(spec).path
        paths.add("subpixel" if path == "blas" and _cost._is_subpixel(spec) else path)
    assert paths == {"direct", "blas", "subpixel", "tiled", "dot"}


@pytest.mark.parametrize("name", LAYERS)
def test_serial_builds_equal_parallel_builds(name, monkeypatch):
    parallel = _call(LAYERS[name])
    monkeypatch.setattr(_parallel, "SERIAL_WORK", float("inf"))
    np.testing.assert_array_equal(_call(LAYERS[name]), parallel)
    assert parallel.tobytes() == _call(LAYERS[name]).tobytes()  # bitwise, signed zeros included


SCRIPT = """
import json, multiprocessing, sys
import numba, numpy as np
from numba_convt import _parallel
from test_fork import LAYERS, _call


def child(name):
    return _call(LAYERS[name]).tobytes(), _parallel._pool_lost


if __name__ == "__main__":
    expected = {name: _call(layer).tobytes() for name, layer in LAYERS.items()}  # in parallel shares
    if numba.threading_layer() != sys.argv[1]:
        raise SystemExit(print("SKIP: Numba picked", numba.threading_layer()))
    report = {}
    for method in ("fork", "forkserver", "spawn"):
        with multiprocessing.get_context(method).Pool(2) as pool:
            results = pool.map_async(child, list(LAYERS)).get(timeout=240)  # a dead worker hangs map
        report[method] = {"same": [got == expected[name] for name, (got, _) in zip(LAYERS, results)],
                          "serial": sorted({lost for _, lost in results})}
    print(json.dumps(report))
"""


def _layer_environment(layer):
    """The environment that makes Numba use ``layer``; the tbb wheel's library
    sits in the environment's ``lib``, where Numba finds it only through
    ``LD_LIBRARY_PATH``."""
    tests = os.path.dirname(__file__)
    paths = [sysconfig.get_config_var("LIBDIR"), os.path.join(sys.prefix, "lib"), os.environ.get("LD_LIBRARY_PATH")]
    return dict(os.environ, NUMBA_THREADING_LAYER=layer, PYTHONPATH=os.pathsep.join([tests, os.environ.get(
        "PYTHONPATH", "")]), LD_LIBRARY_PATH=os.pathsep.join(p for p in paths if p))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork and forkserver are POSIX start methods")
@pytest.mark.parametrize("layer", ["omp", "tbb", "workqueue"])
def test_worker_processes_after_parallel_calls(layer, tmp_path):
    script = tmp_path / "workers.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), layer], capture_output=True, text=True,
                          env=_layer_environment(layer), timeout=600, cwd=tmp_path)
    if done.returncode and "cannot load" in done.stderr.lower() or done.stdout.startswith("SKIP"):
        pytest.skip(f"Numba's {layer} layer cannot load here: {(done.stdout + done.stderr).strip()[-300:]}")
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for method, result in report.items():
        assert all(result["same"]), (method, dict(zip(LAYERS, result["same"])))
    # only a child forked from a process whose OpenMP pool runs falls back to serial runs
    assert report["fork"]["serial"] == [layer == "omp"]
    assert report["forkserver"]["serial"] == report["spawn"]["serial"] == [False]
