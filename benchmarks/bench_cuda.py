"""The CUDA backend on the issue-3 workloads with batch x4, device-resident.

As asv benchmarks (``asv run --bench bench_cuda``) they skip without a real
GPU. As a script, ``python -m benchmarks.bench_cuda``, they print the ratio
to PyTorch's cuDNN ``conv_transpose2d`` (float32, TF32 off) measured in one
run, where PyTorch with CUDA is installed.
"""

import numpy as np

import numba_convt

from .common import WORKLOADS, call_args, median_time


def _gpu_arrays(workload):
    """Device copies of the workload's input and filters (batch x4), or NotImplementedError."""
    from numba import config, cuda

    if config.ENABLE_CUDASIM or not cuda.is_available():
        raise NotImplementedError("needs a real CUDA GPU")
    x, f, out_shape, stride, padding, layout, dilation = call_args(workload)
    x = np.concatenate([x] * 4)
    out_shape = [out_shape[0] * 4, *out_shape[1:]]
    return cuda, (cuda.to_device(x), cuda.to_device(f), out_shape, stride, padding, layout, dilation)


class Conv2DTransposeCUDA:
    """Device arrays in and out; every timing ends with a synchronize."""

    params = [list(WORKLOADS)]
    param_names = ["workload"]

    def setup(self, workload):
        self.cuda, self.args = _gpu_arrays(workload)
        numba_convt.conv2d_transpose(*self.args)
        self.cuda.synchronize()

    def time_conv2d_transpose(self, workload):
        numba_convt.conv2d_transpose(*self.args)
        self.cuda.synchronize()


def _cudnn(args):
    """PyTorch cuDNN's conv_transpose2d on the same device data, TF's crop applied."""
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    x, f, out_shape, stride, padding, _, dilation = args
    xt = torch.as_tensor(x, device="cuda").permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    wt = torch.as_tensor(f, device="cuda").permute(3, 2, 0, 1).contiguous()
    crops = []
    for axis, k in ((1, f.shape[0]), (2, f.shape[1])):
        full = (x.shape[axis] - 1) * stride + (k - 1) * dilation + 1
        top = (full - out_shape[axis]) // 2 if padding == "SAME" else 0
        crops.append(slice(top, top + out_shape[axis]))
    conv = torch.nn.functional.conv_transpose2d
    return lambda: conv(xt, wt, stride=stride, dilation=dilation)[:, :, crops[0], crops[1]].contiguous()


def main():
    """Print numba_convt's CUDA time, cuDNN's and their ratio per workload."""
    print(f"{'workload':<11} {'cudnn ms':>9} {'ours ms':>9} {'ratio':>6}")
    for workload in WORKLOADS:
        cuda, args = _gpu_arrays(workload)
        cudnn = _cudnn(args)
        expected = cudnn().permute(0, 2, 3, 1).cpu().numpy()
        got = numba_convt.conv2d_transpose(*args).copy_to_host()
        assert np.allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max()), workload
        ours = median_time(lambda: numba_convt.conv2d_transpose(*args), 20, cuda.synchronize)
        peer = median_time(cudnn, 20, cuda.synchronize)
        print(f"{workload:<11} {peer * 1e3:9.3f} {ours * 1e3:9.3f} {ours / peer:6.2f}")


if __name__ == "__main__":
    main()
