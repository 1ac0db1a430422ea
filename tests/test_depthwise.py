"""Depthwise layers and channel multipliers on the cpu backend's direct loops
over groups (``_direct._direct_groups``): 8 or more groups of 1-4 input and
output channels, a vector over many groups' channel. Against the NumPy
reference, bitwise the same for any thread count, non-finite filters landing
where the reference puts them, and the cost model's choice."""

import numpy as np
import pytest
from common import assert_close
from test_grouped import assert_same_bits_for_any_thread_count, layer_args, synthetic_spec

import numba_convt
from numba_convt import _plan
from numba_convt._normalize import normalize
from numba_convt._parallel import SERIAL_WORK
from numba_convt.backends import cpu
from numba_convt.backends.cpu import _cost, _direct

# (input NHWC, channels per group in and out, strides, padding, dilations, dtype); G = C_in / cig
LAYERS = {
    "depthwise-same": ((2, 7, 13, 16), 1, 1, 1, "SAME", 1, "float32"),
    "depthwise-stride-2-valid": ((1, 6, 9, 32), 1, 1, 2, "VALID", 1, "float32"),
    "depthwise-stride-3-odd": ((2, 5, 7, 8), 1, 1, 3, "SAME", 1, "float64"),
    "depthwise-dilated": ((1, 9, 11, 24), 1, 1, [1, 2], "SAME", [2, 3], "float32"),
    "depthwise-cropped": ((2, 6, 15, 16), 1, 1, [2, 1], [[0, 0], [3, 1], [0, 4], [0, 0]], 1, "float32"),
    "multiplier-2": ((1, 8, 17, 16), 1, 2, 2, "SAME", 1, "float32"),
    "multiplier-3-wide-groups": ((1, 5, 9, 72), 1, 3, 1, "VALID", 1, "float64"),
    "two-in-one-out": ((2, 6, 11, 32), 2, 1, 2, "SAME", 1, "float32"),
    "two-in-three-out-stride-3": ((1, 7, 5, 20), 2, 3, 3, "SAME", [1, 2], "float32"),
    "four-by-four": ((1, 6, 10, 32), 4, 4, [1, 2], "SAME", 1, "float32"),
    "kernel-wider-than-input": ((2, 4, 3, 16), 1, 2, [1, 2], "SAME", [1, 2], "float32"),
    "int32-multiplier": ((1, 6, 9, 16), 2, 2, 2, "SAME", 1, "int32"),
    "complex64": ((1, 5, 8, 8), 1, 1, 2, "VALID", 1, "complex64"),
}


def _case(name, data_format, kernel=(3, 4), seed=None):
    x_shape, cig, cog, strides, padding, dilations, dtype = LAYERS[name]
    groups = x_shape[3] // cig
    rng = np.random.default_rng(sum(map(ord, name)) if seed is None else seed)
    f_shape = (*kernel, cog, x_shape[3])

    def draw(shape):
        if np.dtype(dtype).kind == "i":
            return rng.integers(-4, 5, shape).astype(dtype)
        if np.dtype(dtype).kind == "c":
            return (rng.uniform(-4, 4, shape) + 1j * rng.uniform(-4, 4, shape)).astype(dtype)
        return rng.uniform(-4, 4, shape).astype(dtype)

    return layer_args(draw(x_shape), draw(f_shape), strides, padding, dilations, groups, data_format)


def _spy(monkeypatch):
    """Record every launch of the loops over groups."""
    calls, launch = [], _direct.launch

    def spy(kernel, work, *args):
        if kernel is _direct._DIRECT_GROUPS:
            calls.append(args[1].shape)
        return launch(kernel, work, *args)

    monkeypatch.setattr(_direct, "launch", spy)
    return calls


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("name", LAYERS)
def test_layer_matches_reference(name, data_format, monkeypatch):
    args = _case(name, data_format)
    spec = normalize(*args)
    assert spec.groups >= 8
    plan = cpu.plan(spec)
    assert plan.path == "direct" and plan.split == (_direct._F_GRP,)
    calls = _spy(monkeypatch)
    expected = numba_convt.conv2d_transpose(*args, backend="numpy")
    out = np.full_like(expected, 7)  # the kernel must write every element
    numba_convt.conv2d_transpose(*args, backend="cpu", out=out)
    assert len(calls) == 1
    assert_close(out, expected, args[0].dtype)


@pytest.mark.parametrize("span", [1, 40])
@pytest.mark.parametrize("name", ["depthwise-same", "depthwise-cropped", "multiplier-2", "two-in-three-out-stride-3"])
def test_rows_in_blocks_of_pixels(name, span, monkeypatch):
    """Rows split into blocks of 1 or ``ceil(40 / G)`` pixels, the last one partial."""
    monkeypatch.setattr(_direct, "_GROUPS_SPAN", span)
    calls = _spy(monkeypatch)
    args = _case(name, "NHWC")
    assert_close(numba_convt.conv2d_transpose(*args, backend="cpu"),
                 numba_convt.conv2d_transpose(*args, backend="numpy"), args[0].dtype)
    assert calls[0][-1] == -(-span // normalize(*args).groups) * normalize(*args).groups


@pytest.mark.parametrize("kernel", [(1, 1), (1, 5), (5, 2)])
def test_other_kernel_shapes(kernel):
    for name in ("depthwise-stride-3-odd", "two-in-three-out-stride-3"):
        args = _case(name, "NHWC", kernel)
        assert cpu.plan(normalize(*args)).split == (_direct._F_GRP,)
        assert_close(numba_convt.conv2d_transpose(*args, backend="cpu"),
                     numba_convt.conv2d_transpose(*args, backend="numpy"), args[0].dtype)


@pytest.mark.parametrize("cig, cog", [(1, 1), (1, 3), (2, 2)])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_identical_bits_for_any_thread_count(cig, cog, data_format):
    """Enough work for the parallel build: one thread or two, the same bits."""
    rng = np.random.default_rng(cig * 10 + cog)
    x, f = rng.standard_normal((2, 24, 37, 64), np.float32), rng.standard_normal((3, 3, cog, 64), np.float32)
    output_shape = [2, 48, 74, 64 // cig * cog]
    if data_format == "NCHW":
        x, output_shape = np.ascontiguousarray(x.transpose(0, 3, 1, 2)), [2, output_shape[3], 48, 74]
    plan = cpu.plan(normalize(x, f, output_shape, 2, "SAME", data_format, None))
    assert plan.split == (_direct._F_GRP,) and plan.work >= SERIAL_WORK
    assert_same_bits_for_any_thread_count(x, f, output_shape, 2, "SAME", data_format)


@pytest.mark.filterwarnings("ignore:.*invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("special", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("name", ["depthwise-stride-2-valid", "two-in-three-out-stride-3"])
def test_filters_that_are_not_finite(name, special, data_format):
    """No zero padding: an inf or NaN tap reaches exactly the outputs the
    definition sums it into, in its group's output channel only."""
    x, f, *rest = _case(name, data_format, seed=5)
    cig, cog = LAYERS[name][1:3]
    f[1, 2, cog - 1, 3 * cig] = special  # group 3, its last output channel
    assert cpu.plan(normalize(x, f, *rest)).split == (_direct._F_GRP,)
    got = numba_convt.conv2d_transpose(x, f, *rest, backend="cpu")
    expected = numba_convt.conv2d_transpose(x, f, *rest, backend="numpy")
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(got), test(expected))
    channels = np.moveaxis(~np.isfinite(expected), 1 if data_format == "NCHW" else 3, 0)
    assert {int(c) for c in np.flatnonzero(channels.any(axis=(1, 2, 3)))} == {3 * cog + cog - 1}
    finite = np.isfinite(expected)
    assert_close(got[finite], expected[finite], x.dtype)


def test_the_pixel_loops_agree(monkeypatch):
    """The same layers on the loops over pixels: the reference's value, so both forms are tested alike."""
    args = _case("two-in-three-out-stride-3", "NHWC")
    grouped = numba_convt.conv2d_transpose(*args, backend="cpu")
    monkeypatch.setattr(_cost, "_direct_over_groups", lambda spec: False)
    _plan._cache.clear()
    assert cpu.plan(normalize(*args)).split == (_direct._F_PIX,)
    assert_close(numba_convt.conv2d_transpose(*args, backend="cpu"), grouped, np.float32)


# (input NHWC, cig, cog, strides, dtype, path, over groups); 3x3 kernels at stride 1, 4x4 at 2
@pytest.mark.parametrize("x_shape, cig, cog, strides, dtype, path, over_groups", [
    ((1, 64, 64, 32), 1, 1, 1, "float32", "direct", True),  # depthwise
    ((2, 64, 64, 16), 1, 1, 2, "float32", "direct", True),
    ((1, 32, 32, 128), 1, 1, 1, "float64", "direct", True),
    ((1, 64, 64, 8), 1, 1, 1, "float32", "direct", True),  # 8 groups
    ((1, 64, 64, 32), 1, 2, 2, "float32", "direct", True),  # channel multipliers
    ((1, 64, 64, 32), 1, 4, 1, "float32", "direct", True),
    ((1, 64, 64, 64), 2, 1, 1, "float32", "direct", True),
    ((1, 64, 64, 16), 1, 1, 1, "int32", "direct", True),
    ((1, 64, 64, 8), 2, 2, 2, "float32", "direct", False),  # 4 groups: the loops over pixels
    ((1, 64, 64, 32), 8, 8, 2, "float32", "tiled", False),  # 8 -> 8: not few channels (one-vector tile)
    ((1, 64, 64, 64), 32, 32, 1, "float32", "tiled", False),
])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_cost_model(x_shape, cig, cog, strides, dtype, path, over_groups, data_format):
    spec = synthetic_spec(x_shape, cog, x_shape[3] // cig, strides, dtype, data_format)
    plan = cpu.plan(spec)
    assert plan.path == path and _cost._direct_over_groups(spec) == over_groups
    assert path != "direct" or plan.split == ((_direct._F_GRP,) if over_groups else (_direct._F_PIX,))
