"""Time and peak memory of conv1d_transpose and conv3d_transpose on a few realistic layers."""

import numpy as np

import numba_convt

# name: input channels-last, filters [*K, C_out, C_in], output channels-last, stride, padding
ND_WORKLOADS = {
    "trace_up2": ((64, 2048, 1), (4, 1, 1), (64, 4096, 1), 2, "SAME"),  # 1-D: seismic traces, one channel
    "signal_decoder": ((8, 2048, 32), (8, 16, 32), (8, 8192, 16), 4, "SAME"),  # 1-D: audio/spectra decoder
    "volume_1ch": ((1, 32, 32, 32, 1), (3, 3, 3, 1, 1), (1, 64, 64, 64, 1), 2, "SAME"),  # 3-D: a microscopy stack
    "volume_up2": ((1, 16, 16, 16, 32), (4, 4, 4, 16, 32), (1, 32, 32, 32, 16), 2, "SAME"),  # 3-D decoder
    "unet3d_up2": ((1, 8, 16, 16, 48), (2, 2, 2, 24, 48), (1, 16, 32, 32, 24), 2, "VALID"),  # 3-D U-Net
}
_FORMATS = {3: ("NWC", "NCW"), 5: ("NDHWC", "NCDHW")}  # by array rank: channels last, first


def nd_call_args(name, dtype="float32", layout="channels_last", seed=0):
    """Positional arguments of ``conv_transpose`` for workload ``name``."""
    x_shape, f_shape, out_shape, stride, padding = ND_WORKLOADS[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    f = rng.standard_normal(f_shape).astype(dtype)
    data_format = _FORMATS[len(x_shape)][layout == "channels_first"]
    if layout == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
        out_shape = (out_shape[0], out_shape[-1], *out_shape[1:-1])
    return x, f, list(out_shape), stride, padding, data_format


class ConvNdTranspose:
    """Warm calls (compiled in ``setup``) per workload, dtype and layout."""

    params = (list(ND_WORKLOADS), ["float32", "float64"], ["channels_last", "channels_first"])
    param_names = ["workload", "dtype", "layout"]

    def setup(self, workload, dtype, layout):
        self.args = nd_call_args(workload, dtype, layout)
        numba_convt.conv_transpose(*self.args)  # compile outside the timings

    def time_conv_transpose(self, workload, dtype, layout):
        numba_convt.conv_transpose(*self.args)

    def peakmem_conv_transpose(self, workload, dtype, layout):
        numba_convt.conv_transpose(*self.args)

    def peakmem_reference(self, workload, dtype, layout):
        """Baseline: the inputs alone, to subtract from the peak above."""

