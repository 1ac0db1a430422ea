"""The cpu backend's 3-D plans (``backends/cpu/_volume.py``) against the numpy reference."""

import numpy as np
import pytest

import numba_convt
from numba_convt import _scratch
from numba_convt.backends import cpu
from numba_convt.backends.cpu import _volume
from numba_convt._normalize import normalize

# (input NDHWC, filters, output NDHWC, strides, padding, dilations)
LAYERS = [
    ((2, 7, 5, 4, 6), (3, 2, 3, 4, 6), (2, 14, 10, 8, 4), 2, "SAME", 1),  # phases of 2 and 1 taps
    ((1, 9, 4, 5, 4), (2, 3, 2, 2, 4), (1, 11, 6, 6, 4), [1, 1, 1], "VALID", [2, 1, 1]),  # 2 groups, in place
    ((3, 7, 3, 3, 2), (3, 1, 2, 3, 2), (3, 9, 3, 4, 3), [1, 1, 1], "VALID", 1),  # N > 1 at stride 1
    ((3, 5, 3, 3, 2), (4, 1, 1, 3, 2), (3, 13, 3, 3, 3), [3, 1, 1], [[0, 0], [2, 1], [0, 0], [0, 0], [0, 0]], 1),
    ((1, 3, 3, 3, 2), (2, 2, 2, 2, 2), (1, 12, 6, 6, 2), [4, 2, 2], "SAME", 1),  # phases with no tap
]


def _call(layer, layout, rng):
    x_shape, f_shape, out_shape, strides, padding, dilations = layer
    x, f = rng.standard_normal(x_shape), rng.standard_normal(f_shape)
    if layout == "NCDHW":
        x, out_shape = np.moveaxis(x, -1, 1).copy(), (out_shape[0], out_shape[-1], *out_shape[1:4])
        padding = padding if isinstance(padding, str) else [padding[0], padding[4], *padding[1:4]]
    return x, f, (list(out_shape), strides, padding, layout, dilations)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("layout", ["NDHWC", "NCDHW"])
@pytest.mark.parametrize("bound", ["whole", "chunks"])
def test_3d_depth_phases_match_the_reference(monkeypatch, layer, layout, bound):
    """With a small bound on the gathered planes, phases run in chunks of 2 output depths."""
    x, f, args = _call(layer, layout, np.random.default_rng(7))
    spec = normalize(x, f, *args, rank=3)
    if bound == "chunks":
        taps = min(len(taps) for _, taps, _, _ in cpu.plan(spec).phases if taps)
        monkeypatch.setattr(_volume, "_GATHER_BYTES", 2 * spec.batch * spec.in_h * spec.in_w * taps * spec.in_c * 8)
        plan = cpu.plan(spec)
        assert any(chunk < depths for _, taps, depths, chunk in plan.phases if taps), "no phase runs in chunks"
    expected = numba_convt.conv3d_transpose(x, f, *args, backend="numpy")
    np.testing.assert_allclose(numba_convt.conv3d_transpose(x, f, *args, backend="cpu"), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("bound", ["whole", "slabs"])
def test_3d_non_finite_filters_drop_the_taps_outside_the_input(monkeypatch, layer, bound):
    """``0 * inf`` is NaN: taps whose input depth lies outside the input must add nothing, not NaN."""
    x, f, args = _call(layer, "NDHWC", np.random.default_rng(8))
    f[0, 0, 0, 0, 0], f[-1, -1, -1, -1, -1] = np.inf, np.nan
    if bound == "slabs":
        monkeypatch.setattr(_volume, "_GATHER_BYTES", 1)  # the shares' slabs: one input depth each
    expected = numba_convt.conv3d_transpose(x, f, *args, backend="numpy")
    got = numba_convt.conv3d_transpose(x, f, *args, backend="cpu")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got[~finite], expected[~finite])


def test_3d_calls_reuse_their_threads_scratch_and_overwrite_it():
    """The kept buffers hold the last call's planes: a smaller call after a larger one reads none of them."""
    rng = np.random.default_rng(9)
    kept = []
    for x_shape, f_shape, out_shape in [((2, 6, 5, 5, 3), (3, 3, 3, 4, 3), [2, 12, 10, 10, 4]),
                                        ((1, 3, 4, 4, 2), (2, 2, 2, 3, 2), [1, 6, 8, 8, 3])]:
        x, f = rng.standard_normal(x_shape), rng.standard_normal(f_shape)
        got = numba_convt.conv3d_transpose(x, f, out_shape, 2, backend="cpu")
        kept.append(_scratch._kept.__dict__.get("gathered"))
        np.testing.assert_allclose(got, numba_convt.conv3d_transpose(x, f, out_shape, 2, backend="numpy"),
                                   rtol=0, atol=1e-12)
    assert kept[0] is not None and kept[1] is kept[0]
