"""Numba's ``tbb`` layer is the one a plain environment gets (``numba_convt/_tbb.py``)."""

import importlib.metadata
import os
import subprocess
import sys

import pytest

SCRIPT = """
import numpy as np, numba, numba_convt
x, f = np.ones((1, 512, 512, 1), np.float32), np.ones((4, 4, 1, 1), np.float32)
numba_convt.conv2d_transpose(x, f, [1, 1024, 1024, 1], 2)  # large enough to run in parallel shares
print(numba.threading_layer())
"""


def _installed(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _layer(**environment):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING_LAYER")}
    env.pop("LD_LIBRARY_PATH", None)  # what a new user's shell has: the wheel's lib is not on it
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600,
                          env=dict(env, **environment))
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()[-1]


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _installed("tbb"),
                    reason="the tbb wheel is a dependency on Linux x86-64 only")
def test_a_plain_environment_runs_on_the_tbb_layer():
    assert _layer() == "tbb"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="omp: GNU OpenMP")
def test_the_users_choice_of_layer_is_kept():
    assert _layer(NUMBA_THREADING_LAYER="omp") == "omp"
