"""conv1d/3d_transpose are the adjoints of conv1d/3d: <conv(z, f), x> == <z, conv_transpose(x, f, z.shape)>.

The forward N-d convolution below is written here with NumPy from TF's
definition (zero padding, dilated taps, strided windows; a gather, where the
package scatters), so this checks every backend without trusting any of
numba_convt's index math. Cases: random configurations over strides,
dilations, SAME/VALID/explicit padding, groups and both layouts, plus the
input-gradient cases of TF's conv_ops_3d_test.py and the gradient cases of
conv1d/3d_transpose_test.py (spec tf_nd_semantics.md sections 7.1, 7.2, 7.4).
"""

import numpy as np
import pytest
from common import BACKENDS

import numba_convt

FUNCTIONS = {1: numba_convt.conv1d_transpose, 3: numba_convt.conv3d_transpose}
FORMATS = {1: ("NWC", "NCW"), 3: ("NDHWC", "NCDHW")}


def conv_nd(z, f, strides, dilations, pads, groups):
    """Forward channels-last conv of ``z`` ([N, *spatial, C_out]) with ``f`` ([*K, C_out/G, C_in]) -> C_in channels."""
    padded = np.pad(z, [(0, 0), *pads, (0, 0)])
    *kernel, group_out, c_in = f.shape
    group_in = c_in // groups
    sizes = [(p - (k - 1) * d - 1) // s + 1 for p, k, s, d in zip(padded.shape[1:-1], kernel, strides, dilations)]
    x = np.zeros((z.shape[0], *sizes, c_in))
    for taps in np.ndindex(*kernel):
        window = tuple(slice(t * d, t * d + (n - 1) * s + 1, s) for t, d, n, s in zip(taps, dilations, sizes, strides))
        patch = padded[(slice(None), *window)]  # [N, *sizes, C_out]: the pixels tap ``taps`` meets
        for g in range(groups):
            x[..., g * group_in:(g + 1) * group_in] += (
                patch[..., g * group_out:(g + 1) * group_out] @ f[taps][:, g * group_in:(g + 1) * group_in]
            )
    return x


def _same_pads(in_size, out_size, k, s, d):
    need = max(0, (in_size - 1) * s + (k - 1) * d + 1 - out_size)
    return need // 2, need - need // 2


def _check(z, f, strides, dilations, padding, pads, groups, data_format, backend):
    """Forward ``conv_nd(z)``, then the transpose of a random ``x`` of that shape, in ``data_format``."""
    rank = z.ndim - 2
    x = np.random.default_rng(1).standard_normal(conv_nd(z, f, strides, dilations, pads, groups).shape)
    first = data_format == FORMATS[rank][1]
    if first:  # channels-first arrays and argument order
        x_arg, out_shape = np.moveaxis(x, -1, 1), [z.shape[0], z.shape[-1], *z.shape[1:-1]]
    else:
        x_arg, out_shape = x, list(z.shape)
    if padding == "EXPLICIT":
        padding = [[0, 0], [0, 0], *map(list, pads)] if first else [[0, 0], *map(list, pads), [0, 0]]
    xt = FUNCTIONS[rank](x_arg, f, out_shape, strides, padding, data_format, dilations, backend=backend)
    xt = np.moveaxis(xt, 1, -1) if first else xt
    forward = conv_nd(z, f, strides, dilations, pads, groups)
    assert forward.shape == x.shape and xt.shape == z.shape
    np.testing.assert_allclose(np.vdot(forward, x), np.vdot(z, xt), rtol=1e-12)


def _random_case(seed, rank):
    rng = np.random.default_rng(seed)
    padding = ["SAME", "VALID", "EXPLICIT"][seed % 3]
    groups = 1 + seed // 3 % 3  # every padding kind with 1, 2 and 3 groups
    high_k, high_in = (4, 4) if rank == 3 else (6, 8)
    kernel, strides, dilations = (rng.integers(1, high, rank).tolist() for high in (high_k, 4, 4))
    ins = rng.integers(1, high_in, rank).tolist()
    pads, outs = [], []
    for i, k, s, d in zip(ins, kernel, strides, dilations):
        e = (k - 1) * d + 1
        before = int(rng.integers(0, e)) if padding == "EXPLICIT" else 0  # total at most e - 1: some size fits
        after = int(rng.integers(0, e - before)) if padding == "EXPLICIT" else 0
        base = (i - 1) * s + (1 if padding == "SAME" else e - before - after)
        outs.append(base + int(rng.integers(0, s)))  # any legal size, the extra ones included
        pads.append(_same_pads(i, outs[-1], k, s, d) if padding == "SAME" else (before, after))
    group_out = int(rng.integers(1, 4))
    z = rng.standard_normal((int(rng.integers(1, 3)), *outs, group_out * groups))
    f = rng.standard_normal((*kernel, group_out, int(rng.integers(1, 3)) * groups))
    return z, f, strides, dilations, padding, pads, groups


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", [0, 1], ids=["channels_last", "channels_first"])
@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("seed", range(9))
def test_adjoint_identity(seed, rank, layout, backend):
    _check(*_random_case(seed, rank), FORMATS[rank][layout], backend)


# (batch, input sizes, filter sizes, in, out, stride, padding) of conv_ops_3d_test.py's testInputGradient*.
TF_INPUT_GRADIENT_3D = [
    (2, (3, 5, 4), (3, 3, 3), 2, 3, 1, "VALID"),
    (2, (6, 3, 5), (3, 3, 3), 2, 3, 2, "VALID"),
    (2, (3, 7, 6), (3, 3, 3), 2, 3, 3, "VALID"),
    (2, (3, 2, 2), (3, 2, 1), 2, 1, 1, "SAME"),
    (2, (6, 3, 4), (3, 3, 3), 2, 3, 2, "SAME"),
    (2, (9, 3, 6), (3, 3, 3), 2, 3, 3, "SAME"),
    (1, (5, 8, 7), (1, 2, 3), 2, 3, [2, 3, 1], "SAME"),
    (2, (5, 4, 3), (5, 4, 3), 2, 3, 1, "VALID"),
    (2, (3, 5, 4), (2, 2, 2), 8, 2, 1, "VALID"),
]
# testGradient of conv1d_transpose_test.py and conv3d_transpose_test.py: the transposed call's
# input shape, filter shape, stride, padding; z has the output shape.
TF_GRADIENT = [
    ((2, 8, 2), (3, 2, 3), 2, "SAME"),
    ((2, 6, 8, 6, 2), (3, 3, 3, 2, 2), 2, "SAME"),
]


def _tf_case(z_shape, f_shape, stride, padding):
    rng = np.random.default_rng(len(z_shape))
    z, f = rng.standard_normal(z_shape), rng.standard_normal(f_shape)
    rank = len(z_shape) - 2
    strides = [stride] * rank if isinstance(stride, int) else stride
    pads = [(0, 0)] * rank
    if padding == "SAME":  # the forward conv's input size is ceil(out / stride)
        pads = [_same_pads(-(-o // s), o, k, s, 1) for o, k, s in zip(z_shape[1:-1], f_shape, strides)]
    return z, f, strides, [1] * rank, padding, pads, 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", [0, 1], ids=["channels_last", "channels_first"])
@pytest.mark.parametrize("case", TF_INPUT_GRADIENT_3D, ids=[str(i) for i in range(len(TF_INPUT_GRADIENT_3D))])
def test_tf_conv3d_input_gradient(case, layout, backend):
    batch, sizes, kernel, c_in, c_out, stride, padding = case
    # conv_ops_3d_test's forward filter [*K, in, out] is the transposed call's [*K, C_out, C_in].
    args = _tf_case((batch, *sizes, c_in), (*kernel, c_in, c_out), stride, padding)
    _check(*args, FORMATS[3][layout], backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", [0, 1], ids=["channels_last", "channels_first"])
@pytest.mark.parametrize("case", TF_GRADIENT, ids=["conv1d", "conv3d"])
def test_tf_transpose_gradient(case, layout, backend):
    z_shape, f_shape, stride, padding = case
    _check(*_tf_case(z_shape, f_shape, stride, padding), FORMATS[len(z_shape) - 2][layout], backend)
