"""Time numba_convt against TensorFlow, PyTorch and JAX side by side, in one run.

Usage::

    python -m benchmarks.peers [--dtype float64] [--layout NCHW] [--repeat N]
                               [--backend cpu] [--impl path/to/kernel.py]
                               [--only dcgan_g2,img_1ch]

Each peer that is importable is timed in its best form (TF
``tf.nn.conv2d_transpose``; PyTorch ``conv_transpose2d`` in NCHW and in
channels_last; JAX jit of ``jax.lax.conv_transpose(transpose_kernel=True)``),
after checking its output against numba_convt's. A 2048x2048 float32 ``np.dot``
gives the machine's matrix-multiply ceiling in the same run. Times are
medians over ``--repeat`` calls after a warm-up; compare ratios, not absolute
times, on a shared machine. ``--impl FILE`` times ``run`` from FILE
(registered as backend ``"fast"``) instead of ``--backend``.
"""

import argparse
import importlib.util
import math
import os
import sys
import warnings

import numpy as np

import numba_convt

from .common import WORKLOADS, flops, median_time



def _to_layout(a, layout):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if layout == "NCHW" else a


def tf_peer(x, f, out_shape, stride, padding, dilation, layout):
    import tensorflow as tf

    if layout == "NCHW":  # TF's CPU kernel only runs NHWC; time its best form
        return None
    xt, ft = tf.constant(x), tf.constant(f)
    fn = tf.function(lambda a, b: tf.nn.conv2d_transpose(a, b, out_shape, stride, padding, dilations=dilation))
    return "TF", lambda: fn(xt, ft).numpy()


def torch_peers(x, f, out_shape, stride, padding, dilation, layout):
    """PyTorch, NCHW and channels_last. TF's SAME/VALID cropping is expressed as
    ``padding`` (symmetric) or by cropping an extra row/column off the result."""
    import torch

    k_h, k_w = f.shape[:2]
    full = [(x.shape[i] - 1) * stride + (k - 1) * dilation + 1 for i, k in ((1, k_h), (2, k_w))]
    crop = [fs - o for fs, o in zip(full, out_shape[1:3])]  # TF: top/left gets the floor half
    before = [c // 2 if padding == "SAME" else 0 for c in crop]
    after = [c - b for c, b in zip(crop, before)]
    pad = [min(b, a) for b, a in zip(before, after)]
    weight = torch.from_numpy(np.ascontiguousarray(f.transpose(3, 2, 0, 1)))  # [C_in, C_out, KH, KW]
    xn = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    conv = torch.nn.functional.conv_transpose2d

    def call(xin, w):
        y = conv(xin, w, stride=stride, padding=pad, dilation=dilation)
        top, left = before[0] - pad[0], before[1] - pad[1]
        return y[:, :, top:top + out_shape[1], left:left + out_shape[2]]

    xl = xn.contiguous(memory_format=torch.channels_last)
    wl = weight.contiguous(memory_format=torch.channels_last)
    torch.set_grad_enabled(False)
    to_layout = (lambda y: y.numpy()) if layout == "NCHW" else (lambda y: y.permute(0, 2, 3, 1).numpy())
    return [
        ("PyTorch NCHW", lambda: to_layout(call(xn, weight).contiguous())),
        ("PyTorch ch_last", lambda: to_layout(call(xl, wl).contiguous(memory_format=torch.channels_last))),
    ]


def jax_peer(x, f, out_shape, stride, padding, dilation, layout):
    """JAX's transposed convolution with explicit padding that places TF's crop."""
    import jax

    pads = []
    for i, k in ((1, f.shape[0]), (2, f.shape[1])):
        k_eff = (k - 1) * dilation + 1
        full = (x.shape[i] - 1) * stride + k_eff
        before = (full - out_shape[i]) // 2 if padding == "SAME" else 0
        low = k_eff - 1 - before
        pads.append((low, out_shape[i] - (x.shape[i] - 1) * stride - 1 - low + k_eff - 1))
    spec = ("NCHW", "HWIO", "NCHW") if layout == "NCHW" else ("NHWC", "HWIO", "NHWC")
    fn = jax.jit(lambda a, b: jax.lax.conv_transpose(
        a, b, (stride, stride), pads, rhs_dilation=(dilation, dilation),
        dimension_numbers=spec, transpose_kernel=True))
    xa, fa = jax.device_put(_to_layout(x, layout)), jax.device_put(f)
    return "JAX", lambda: np.asarray(fn(xa, fa).block_until_ready())


def peers(x, f, out_shape, stride, padding, dilation, layout):
    """(name, fn) for every importable peer; ``fn()`` returns a NumPy array in ``layout``."""
    found = []
    for make in (tf_peer, torch_peers, jax_peer):
        try:
            made = make(x, f, out_shape, stride, padding, dilation, layout)
        except ImportError:
            continue
        found += made if isinstance(made, list) else [made] if made else []
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--layout", default="NHWC", choices=["NHWC", "NCHW"])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--impl", help="a file defining run(spec, x, filters, out), timed as backend 'fast'")
    parser.add_argument("--only", help="comma-separated workload names")
    parser.add_argument("--no-peers", action="store_true", help="time numba_convt only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    backend = args.backend
    if args.impl:
        name = os.path.splitext(os.path.basename(args.impl))[0]  # Numba's cache keys on it
        spec = importlib.util.spec_from_file_location(name, args.impl)
        module = sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        numba_convt.register_backend("fast", module.run, overwrite=True)
        backend = "fast"
    dtype = np.dtype(args.dtype)
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    ceiling = 2 * 2048**3 / median_time(lambda: np.dot(a, a), max(3, args.repeat // 3)) / 1e9
    print(f"sgemm 2048^2 ceiling: {ceiling:.0f} GFLOP/s; backend {backend!r}, {args.dtype}, {args.layout}")
    head = f"{'workload':<11} {'GFLOP/s':>8} {'best peer':>16} {'peer ms':>8} {'ours ms':>8} {'ratio':>6} {'ceil':>5}"
    print(head + "\n" + "-" * len(head))
    ratios = []
    names = args.only.split(",") if args.only else list(WORKLOADS)
    for name in names:
        x_shape, f_shape, out_shape, stride, padding, dilation = WORKLOADS[name]
        rng = np.random.default_rng(1)
        x = rng.standard_normal(x_shape).astype(dtype)
        f = rng.standard_normal(f_shape).astype(dtype)
        xin = _to_layout(x, args.layout)
        shape = list(_to_layout(np.empty(out_shape, np.int8), args.layout).shape)
        ours = lambda: numba_convt.conv2d_transpose(  # noqa: E731
            xin, f, shape, stride, padding, args.layout, dilation, backend=backend)
        reference = ours()
        t_ours = median_time(ours, args.repeat)
        best = ("-", math.inf)
        for peer, fn in [] if args.no_peers else peers(x, f, out_shape, stride, padding, dilation, args.layout):
            try:
                got = fn()
            except Exception as error:  # e.g. TF's CPU kernel refuses dilation > 1 in float64
                print(f"  {name}: {peer} failed ({type(error).__name__}); not timed")
                continue
            scale = max(float(np.abs(reference).max()), 1.0)
            if got.shape != reference.shape or np.abs(got - reference).max() > 1e-4 * scale:
                print(f"  {name}: {peer} disagrees with numba_convt; not timed")
                continue
            t = median_time(fn, args.repeat)
            best = min(best, (peer, t), key=lambda p: p[1])
        gflops = flops(name) / t_ours / 1e9
        ratio = t_ours / best[1]
        if best[1] < math.inf:
            ratios.append(ratio)
        print(f"{name:<11} {gflops:8.1f} {best[0]:>16} {best[1] * 1e3:8.3f} {t_ours * 1e3:8.3f} "
              f"{ratio:6.2f} {gflops / ceiling:5.2f}")
    if ratios:
        print(f"{'geomean':<11} {'':>8} {'':>16} {'':>8} {'':>8} {math.exp(np.mean(np.log(ratios))):6.2f}")


if __name__ == "__main__":
    main()
