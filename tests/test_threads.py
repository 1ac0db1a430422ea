"""The cpu backend runs on as many threads as ``numba.set_num_threads`` allows.

Observed from the CPU time each OS thread of a fresh process spends in a
large call: with one Numba thread one OS thread does the work, with two both
do. Not a timing: the parallel kernels split the work evenly, so each working
thread's share of CPU time is about 1/n whatever the machine's load. (That
results are bitwise identical for any thread count is tested in
tests/test_api.py.)
"""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import json, os, sys
import numba, numpy as np
import numba_convt

def cpu_ticks():
    ticks = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks[tid] = int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return ticks

dtype, x_shape, f_shape, output_shape = json.loads(sys.argv[1])
x, f = np.ones(x_shape, dtype), np.ones(f_shape, dtype)
call = lambda: numba_convt.conv2d_transpose(x, f, output_shape, 2)
call()  # compile and start the thread pool
busy = {}
for threads in (1, 2):
    numba.set_num_threads(threads)
    before = cpu_ticks()
    for _ in range(5):
        call()
    work = [ticks - before.get(tid, 0) for tid, ticks in cpu_ticks().items()]
    busy[threads] = sum(w >= 0.25 * sum(work) for w in work)
print(json.dumps(busy))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="per-thread CPU times are read from Linux's /proc")
@pytest.mark.parametrize("layer", [
    ("int32", (1, 512, 512, 8), (5, 5, 8, 8), [1024, 1024]),  # direct kernel
    ("float32", (4, 64, 64, 128), (4, 4, 64, 128), [128, 128]),  # BLAS: OpenBLAS's own threads must not add
], ids=["direct", "blas"])
def test_cpu_backend_honours_set_num_threads(layer):
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(layer)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"1": 1, "2": 2}
