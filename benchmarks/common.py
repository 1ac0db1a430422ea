"""The performance workloads (issue 3), shared by the asv suites and the peers script."""

import time

import numpy as np

# name: input NHWC, filters [KH, KW, C_out, C_in], output NHWC, stride, padding, dilation
WORKLOADS = {
    "dcgan_g2": ((8, 8, 8, 256), (4, 4, 128, 256), (8, 16, 16, 128), 2, "SAME", 1),
    "dcgan_g3": ((8, 16, 16, 128), (4, 4, 64, 128), (8, 32, 32, 64), 2, "SAME", 1),
    "dcgan_rgb": ((8, 32, 32, 64), (4, 4, 3, 64), (8, 64, 64, 3), 2, "SAME", 1),
    "unet_up2": ((4, 32, 32, 128), (2, 2, 64, 128), (4, 64, 64, 64), 2, "VALID", 1),
    "fcn_up8": ((1, 32, 32, 21), (16, 16, 21, 21), (1, 256, 256, 21), 8, "SAME", 1),
    "s1_k3": ((8, 32, 32, 64), (3, 3, 64, 64), (8, 32, 32, 64), 1, "SAME", 1),
    "img_1ch": ((1, 512, 512, 1), (5, 5, 1, 1), (1, 1024, 1024, 1), 2, "SAME", 1),
    "dilated_s1": ((4, 32, 32, 32), (3, 3, 32, 32), (4, 32, 32, 32), 1, "SAME", 2),
}

# The N-d workloads of issue 15, in the same form (channels-last shapes, filters [*K, C_out, C_in])
ND_WORKLOADS = {
    "unet3d_up": ((1, 16, 16, 16, 64), (2, 2, 2, 32, 64), (1, 32, 32, 32, 32), 2, "VALID", 1),
    "vnet_up": ((2, 8, 8, 8, 128), (4, 4, 4, 64, 128), (2, 16, 16, 16, 64), 2, "SAME", 1),
    "vol_1ch": ((1, 64, 64, 64, 1), (3, 3, 3, 1, 1), (1, 128, 128, 128, 1), 2, "SAME", 1),
    "wave_up": ((16, 256, 64), (25, 32, 64), (16, 1024, 32), 4, "SAME", 1),
    "audio_1ch": ((8, 16000, 1), (4, 1, 1), (8, 32000, 1), 2, "SAME", 1),
}


def flops(name):
    """2 * N * H_in * W_in * C_in * KH * KW * C_out for workload ``name``."""
    x_shape, f_shape = WORKLOADS[name][:2]
    return 2 * int(np.prod(x_shape)) * int(np.prod(f_shape[:3]))


def call_args(name, dtype="float32", layout="NHWC", seed=0):
    """Positional arguments of ``conv2d_transpose`` for workload ``name``."""
    x_shape, f_shape, out_shape, stride, padding, dilation = WORKLOADS[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    f = rng.standard_normal(f_shape).astype(dtype)
    if layout == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        out_shape = (out_shape[0], out_shape[3], *out_shape[1:3])
    return x, f, list(out_shape), stride, padding, layout, dilation


def median_time(function, repeat, synchronize=lambda: None):
    """Median wall time of ``function()`` in seconds, after two warm-up calls.

    ``synchronize`` runs after each call, inside the timing (GPU work).
    """
    times = []
    for i in range(repeat + 2):
        start = time.perf_counter()
        function()
        synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times[2:]))
