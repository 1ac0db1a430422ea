"""Latency: the cost of a call that does almost nothing, and of the first call
in a new process, with Numba's on-disk cache warm and empty.

``timeraw_*`` run in a fresh interpreter. The warm first call loads the
kernels from the cache (warm on every run after the first); the cold ones
compile them into a new, empty ``NUMBA_CACHE_DIR``.
"""

import numpy as np

import numba_convt

from .common import WORKLOADS

_CALL = """
import numpy as np
import numba_convt
numba_convt.conv2d_transpose(np.ones({x}, np.float32), np.ones({f}, np.float32), {out}, {stride}, "{padding}",
                             dilations={dilation})
"""
_EMPTY_CACHE = """
import atexit, os, shutil, tempfile
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp()
atexit.register(shutil.rmtree, os.environ["NUMBA_CACHE_DIR"], True)
"""
_LAYERS = {"tiny": ((1, 4, 4, 8), (3, 3, 8, 8), (1, 8, 8, 8), 2, "SAME", 1), **WORKLOADS}


def _call(layer):
    x, f, out, stride, padding, dilation = _LAYERS[layer]
    return _CALL.format(x=x, f=f, out=list(out), stride=stride, padding=padding, dilation=dilation)


def timeraw_import():
    return "import numba_convt"


class FirstCall:
    """The first call of a layer in a new process."""

    params = (["tiny", "dcgan_g2", "img_1ch", "dilated_s1"], ["warm", "empty"])
    param_names = ["layer", "cache"]
    repeat = (1, 3, 120.0)  # a cold call compiles for seconds
    timeout = 600

    def timeraw_first_call(self, layer, cache):
        return (_EMPTY_CACHE if cache == "empty" else "") + _call(layer)


class Overhead:
    """Repeated calls that do almost no arithmetic: what each call costs."""

    params = ["1x1x1x1", "tiny", "tiny-plan"]
    param_names = ["call"]

    def setup(self, call):
        x, f, out, stride = _LAYERS["tiny"][:4]
        if call == "1x1x1x1":
            x, f, out, stride = (1, 1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1), 1
        self.x, self.f = np.ones(x, np.float32), np.ones(f, np.float32)
        self.args = (list(out), stride)
        self.plan = numba_convt.plan(x, f, list(out), stride).set_filters(self.f)
        self.time_call(call)  # compile outside the timings

    def time_call(self, call):
        if call == "tiny-plan":
            self.plan(self.x)
        else:
            numba_convt.conv2d_transpose(self.x, self.f, *self.args)
