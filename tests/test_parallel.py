"""``numba_convt._parallel``: one serial build per kernel, run in parallel by a
driver that calls it through a function pointer.

- No kernel is a ``parallel=True`` build, and the driver's code does not
  contain the kernel it runs (so the kernel's body is compiled once).
- A second process loads kernels and drivers from Numba's disk cache and
  compiles nothing.
- Each share takes its own tasks: every task runs exactly once.

Results for any thread count, forks and threads are tested in
tests/test_fork.py, tests/test_threads.py and tests/test_hardening.py.
"""

import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

from numba_convt import _layout, _parallel
from numba_convt.backends.cpu import _direct, _dot, _gemm, _tiled


def _kernels():
    found = {}
    for module in (_layout, _direct, _dot, _gemm, _tiled):
        for name, value in vars(module).items():
            for key, kernel in (value.items() if isinstance(value, dict) else [("", value)]):
                if isinstance(kernel, CPUDispatcher):
                    found[f"{module.__name__}.{name}{key}"] = kernel
    return found


def test_no_kernel_is_a_parallel_build():
    kernels = _kernels()
    assert {"numba_convt._layout._SWAP_LAST_AXES", "numba_convt.backends.cpu._tiled._TILED"} <= set(kernels)
    assert [name for name, kernel in kernels.items() if kernel.targetoptions.get("parallel")] == []


def _swap(src):
    """``src`` (``[N, R, C]`` uint32) with its last axes swapped, by the layout kernel in parallel."""
    dst = np.full((src.shape[0], src.shape[2], src.shape[1]), 2**32 - 1, src.dtype)  # a value src lacks
    _parallel.launch(_layout._SWAP_LAST_AXES, _parallel.SERIAL_WORK, src, dst)
    return dst


@pytest.fixture(params=[1, 2, 3])
def threads(request):
    """Numba set to 1, 2 or 3 threads (at most NUMBA_NUM_THREADS)."""
    previous = numba.get_num_threads()
    numba.set_num_threads(min(request.param, numba.config.NUMBA_NUM_THREADS))
    yield numba.get_num_threads()
    numba.set_num_threads(previous)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 33, 5), (3, 40, 70), (7, 1, 64)])
def test_every_task_runs(shape, threads):
    """Fewer tasks than shares included; a task no share ran would leave its values unwritten."""
    src = np.arange(np.prod(shape), dtype=np.uint32).reshape(shape)
    np.testing.assert_array_equal(_swap(src), src.transpose(0, 2, 1))


def test_more_shares_than_threads(threads, monkeypatch):
    """A parallel launch runs ``SHARES_PER_THREAD`` shares per thread on that many threads."""
    if threads == 1:
        pytest.skip("one thread runs the kernel whole")
    seen, driver = [], _parallel._driver
    monkeypatch.setattr(_parallel, "_driver", lambda arity: lambda *a: seen.append(a[1:3]) or driver(arity)(*a))
    src = np.arange(3 * 40 * 70, dtype=np.uint32).reshape(3, 40, 70)
    np.testing.assert_array_equal(_swap(src), src.transpose(0, 2, 1))
    assert seen == [(threads * _parallel.SHARES_PER_THREAD, threads)]


def test_a_pointer_is_typed_once(monkeypatch):
    """Numba types a kernel's pointer from the type it keeps (its own typing of a
    function-pointer object builds the type from ``signature()`` on every
    call, ~10 us); the type is the kernel's."""
    src = np.zeros((1, 4, 4), np.uint32)
    share = _parallel.pointer(_layout._SWAP_LAST_AXES, _parallel._share_types, src, src)
    assert share.numba_type == numba.types.FunctionType(share.signature())
    monkeypatch.setattr(share, "signature", lambda: pytest.fail("typed from its signature again"))
    assert numba.typeof(share) is share.numba_type


LISTEN = """
import json
import numpy as np
from numba.core import event
import numba_convt
from numba_convt import _parallel

compiled = []  # the qualified names of the functions Numba compiles


class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__qualname__)

    def on_end(self, ev):
        pass


event.register("numba:compile", Listener())
"""


def _run(script, cache, **env):
    """The JSON ``script`` prints last, run after :data:`LISTEN` in a new process with ``cache`` as Numba's."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), **env)
    done = subprocess.run([sys.executable, "-c", LISTEN + script], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


LAYOUT = """
x = np.arange(2 * 16 * 64 * 128, dtype=np.float32).reshape(2, 16, 64, 128)  # NCHW -> NHWC: the layout kernel
numba_convt._layout.change_layout(x, True, x.dtype)
kernel, drive = numba_convt._layout._SWAP_LAST_AXES, _parallel._driver(2)
names = [kernel.overloads[sig].fndesc.mangled_name for sig in kernel.signatures]
# the driver's IR can be read where it was compiled: does it hold the kernel's code?
linked = bool(compiled) and any(name in drive.inspect_llvm(sig) for name in names for sig in drive.signatures)
print(json.dumps({"compiled": compiled, "drivers": len(drive.signatures), "linked": linked}))
"""


def test_second_process_loads_kernels_and_drivers_from_disk(tmp_path):
    first, second = (_run(LAYOUT, tmp_path, NUMBA_NUM_THREADS="2") for _ in range(2))
    assert first["drivers"] == second["drivers"] == 1
    assert {"_swap_last_axes", "_drive2"} <= set(first["compiled"]), "the first process should compile both"
    assert not first["linked"], "the driver holds the kernel's code: its body is compiled twice"
    assert second["compiled"] == []


def test_a_blas_call_compiles_only_its_gather(tmp_path):
    """The BLAS kernel takes its gather as a function pointer: a layer with 16
    or more output channels compiles the gather by channels, not the other."""
    compiled = _run("""
from numba_convt._normalize import normalize
from numba_convt.backends import cpu
x, f = np.ones((1, 8, 8, 32), np.float32), np.ones((3, 3, 16, 32), np.float32)
assert cpu.plan(normalize(x, f, [1, 16, 16, 16], 2, "SAME", "NHWC", 1)).path == "blas"
numba_convt.conv2d_transpose(x, f, [1, 16, 16, 16], 2, "SAME")
print(json.dumps(compiled))
""", tmp_path)
    assert "_blas_tasks" in compiled and "_gather_co" in compiled
    assert "_gather_pix" not in compiled

