"""The cpu backend's 1-D and 3-D plans (``backends/cpu/_nd.py``) against the numpy reference."""

import numpy as np
import pytest

import numba_convt
from numba_convt import _scratch
from numba_convt.backends import cpu
from numba_convt.backends.cpu import _nd
from numba_convt._normalize import normalize

# (input NDHWC, filters, output NDHWC, strides, padding, dilations)
SLABBED = [
    ((2, 7, 5, 4, 6), (3, 2, 3, 4, 6), (2, 14, 10, 8, 4), 2, "SAME", 1),
    ((1, 9, 4, 5, 4), (2, 3, 2, 2, 4), (1, 11, 6, 6, 4), [1, 1, 1], "VALID", [2, 1, 1]),  # 2 groups
    ((3, 5, 3, 3, 2), (4, 1, 1, 3, 2), (3, 13, 3, 3, 3), [3, 1, 1], [[0, 0], [2, 1], [0, 0], [0, 0], [0, 0]], 1),
]


@pytest.mark.parametrize("layer", SLABBED)
@pytest.mark.parametrize("layout", ["NDHWC", "NCDHW"])
def test_3d_volumes_in_slabs_of_input_depths_match_the_reference(monkeypatch, layer, layout):
    """A small shares bound makes the plan run several slabs and a shorter last one."""
    x_shape, f_shape, out_shape, strides, padding, dilations = layer
    rng = np.random.default_rng(7)
    x, f = rng.standard_normal(x_shape), rng.standard_normal(f_shape)
    if layout == "NCDHW":
        x, out_shape = np.moveaxis(x, -1, 1).copy(), (out_shape[0], out_shape[-1], *out_shape[1:4])
        padding = padding if isinstance(padding, str) else [padding[0], padding[4], *padding[1:4]]
    args = (list(out_shape), strides, padding, layout, dilations)
    monkeypatch.setattr(_nd, "_SHARES_BYTES", 1)  # bounded by the result's size: ~ KD / stride_d planes a slab
    plan = cpu.plan(normalize(x, f, *args, rank=3))
    assert plan.slab < x_shape[1] and x_shape[1] % plan.slab, "the layer must run several slabs, the last shorter"
    expected = numba_convt.conv3d_transpose(x, f, *args, backend="numpy")
    np.testing.assert_allclose(numba_convt.conv3d_transpose(x, f, *args, backend="cpu"), expected, rtol=0, atol=1e-12)


def test_3d_shares_stay_within_the_bound():
    x, f = np.ones((1, 64, 8, 8, 4), np.float32), np.ones((3, 3, 3, 4, 4), np.float32)
    spec = normalize(x, f, [1, 128, 16, 16, 4], 2, "SAME", "NDHWC", None, rank=3)
    plan = cpu.plan(spec)
    shares = spec.batch * plan.slab * spec.out_h * spec.out_w * spec.k_d * spec.out_c * 4
    assert shares <= max(_nd._SHARES_BYTES, 128 * 16 * 16 * 4 * 4)
    assert plan.slab == 64  # small: one slab


# (input width, kernel, stride, dilation, C_in, C_out, padding NWC): long single signals, cut into segments
SIGNALS = [
    (9000, 4, 2, 1, 1, 1, "SAME"),
    (9001, 5, 3, 2, 3, 2, "VALID"),
    (12000, 7, 1, 1, 16, 16, "SAME"),  # stride 1, the register tile
    (8193, 25, 4, 1, 32, 16, "SAME"),
    (20000, 2, 2, 1, 2, 3, [[0, 0], [5, 3], [0, 0]]),
    (3000, 9, 8, 1, 1, 1, "SAME"),  # windows longer than the stride between them
]


@pytest.mark.parametrize("layer", SIGNALS)
@pytest.mark.parametrize("layout", ["NWC", "NCW"])
@pytest.mark.parametrize("size", ["smallest", "largest"])
def test_long_1d_signals_in_segments_match_the_reference(layer, layout, size):
    width, k, stride, dilation, c_in, c_out, padding = layer
    rng = np.random.default_rng(5)
    x_shape = (1, width, c_in) if layout == "NWC" else (1, c_in, width)
    if not isinstance(padding, str) and layout == "NCW":
        padding = [padding[0], padding[2], padding[1]]
    sizes = numba_convt.conv_transpose_output_sizes(x_shape, (k, c_out, c_in), stride, padding, layout, dilation)[0]
    out_w = sizes.start if size == "smallest" else sizes.stop - 1
    x, f = rng.standard_normal(x_shape), rng.standard_normal((k, c_out, c_in))
    args = ([1, out_w, c_out] if layout == "NWC" else [1, c_out, out_w], stride, padding, layout, dilation)
    assert cpu.plan(normalize(x, f, *args, rank=1)).segments > 1, "the layer must run in segments"
    expected = numba_convt.conv1d_transpose(x, f, *args, backend="numpy")
    np.testing.assert_allclose(numba_convt.conv1d_transpose(x, f, *args, backend="cpu"), expected, rtol=0, atol=1e-12)


def test_3d_calls_reuse_their_threads_shares_buffer_and_overwrite_it():
    """The kept buffer holds the last call's shares: a smaller call after a larger one reads none of them."""
    rng = np.random.default_rng(9)
    results = []
    for x_shape, f_shape, out_shape in [((2, 6, 5, 5, 3), (3, 3, 3, 4, 3), [2, 12, 10, 10, 4]),
                                        ((1, 3, 4, 4, 2), (2, 2, 2, 3, 2), [1, 6, 8, 8, 3])]:
        x, f = rng.standard_normal(x_shape), rng.standard_normal(f_shape)
        got = numba_convt.conv3d_transpose(x, f, out_shape, 2, backend="cpu")
        results.append(_scratch._kept.__dict__.get("shares"))
        np.testing.assert_allclose(got, numba_convt.conv3d_transpose(x, f, out_shape, 2, backend="numpy"),
                                   rtol=0, atol=1e-12)
    assert results[0] is not None and results[1] is results[0]
