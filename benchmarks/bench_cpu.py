"""Time and peak memory of conv2d_transpose on the issue-3 workloads."""

import numba_convt

from .common import WORKLOADS, call_args


class Conv2DTranspose:
    """Warm calls (compiled in ``setup``) per workload, dtype and layout."""

    params = (list(WORKLOADS), ["float32", "float64"], ["NHWC", "NCHW"])
    param_names = ["workload", "dtype", "layout"]

    def setup(self, workload, dtype, layout):
        self.args = call_args(workload, dtype, layout)
        numba_convt.conv2d_transpose(*self.args)  # compile outside the timings

    def time_conv2d_transpose(self, workload, dtype, layout):
        numba_convt.conv2d_transpose(*self.args)

    def peakmem_conv2d_transpose(self, workload, dtype, layout):
        numba_convt.conv2d_transpose(*self.args)

    def peakmem_reference(self, workload, dtype, layout):
        """Baseline: the inputs alone, to subtract from the peak above."""


class Backends:
    """The compiled backend against the NumPy reference, float32 NHWC."""

    params = (list(WORKLOADS), ["cpu", "numpy"])
    param_names = ["workload", "backend"]

    def setup(self, workload, backend):
        self.args = call_args(workload)
        numba_convt.conv2d_transpose(*self.args, backend=backend)

    def time_conv2d_transpose(self, workload, backend):
        numba_convt.conv2d_transpose(*self.args, backend=backend)
