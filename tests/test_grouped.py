"""Grouped layers on the cpu backend's explicit-vector kernels: the register
tile (``_tiled``, NHWC and NCHW) and the dot kernel (``_dot``, NHWC) run each
group as a sub-problem. Forced through both paths against the NumPy
reference, bitwise the same for any thread count, the tiled path's
non-finite-filter fallback, and the cost model's choice on grouped shapes."""

import numba
import numpy as np
import pytest
from common import assert_close

import numba_convt
from numba_convt._normalize import normalize
from numba_convt._parallel import SERIAL_WORK
from numba_convt.backends import cpu
from numba_convt.backends.cpu import _cost, _direct, _dot, _tiled

# (input NHWC, filters [KH, KW, C_out/G, C_in], strides, padding, dilations, dtype, groups)
GROUPED = {
    "g2-same-stride-1": ((2, 9, 17, 16), (3, 3, 8, 16), 1, "SAME", 1, "float32", 2),
    "g4-one-channel": ((2, 6, 16, 8), (4, 4, 1, 8), 2, "SAME", 1, "float32", 4),
    "g2-forty-channels-float64": ((1, 5, 16, 6), (3, 3, 40, 6), 2, "VALID", 1, "float64", 2),
    "g4-dilated-anisotropic": ((1, 10, 16, 12), (3, 3, 5, 12), [1, 2], "SAME", [2, 1], "float32", 4),
    "g2-cropped": ((2, 9, 20, 8), (3, 3, 15, 8), [1, 2], [[0, 0], [4, 3], [1, 5], [0, 0]], 2, "float64", 2),
    "g4-stride-3-two-blocks": ((2, 6, 18, 16), (2, 2, 33, 16), 3, "VALID", 1, "float32", 4),
    "g2-kernel-wider-than-input": ((4, 8, 3, 10), (3, 9, 3, 10), [1, 2], "SAME", [1, 2], "float32", 2),
    "depthwise": ((2, 8, 16, 4), (3, 3, 1, 4), 2, "SAME", 1, "float32", 4),
    "g4-deep-groups": ((1, 6, 16, 80), (3, 3, 7, 80), 2, "SAME", 1, "float32", 4),
}


def _case(name, data_format, seed=None):
    x_shape, f_shape, strides, padding, dilations, dtype, groups = GROUPED[name]
    rng = np.random.default_rng(sum(map(ord, name)) if seed is None else seed)
    x, f = rng.uniform(-4, 4, x_shape).astype(dtype), rng.uniform(-4, 4, f_shape).astype(dtype)
    return layer_args(x, f, strides, padding, dilations, groups, data_format)


def layer_args(x, f, strides, padding, dilations, groups, data_format):
    """``conv2d_transpose``'s arguments for NHWC ``x`` and ``f``, in ``data_format``."""
    output_shape = numba_convt.conv2d_transpose_output_shape(x.shape, f.shape, strides, padding, "NHWC", dilations,
                                                             groups=groups)
    if data_format == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        output_shape = [output_shape[i] for i in (0, 3, 1, 2)]
        padding = padding if isinstance(padding, str) else [padding[i] for i in (0, 3, 1, 2)]
    return x, f, output_shape, strides, padding, data_format, dilations


def _force(monkeypatch, path, band=None):
    """Grouped layers (never BLAS's) on ``path``, in bands of ``band`` output rows if given."""
    monkeypatch.setattr(_cost, "_few_channel_path", lambda spec: path)
    if band is not None:
        geometry = _cost._tiled_geometry
        monkeypatch.setattr(_cost, "_tiled_geometry", lambda spec, rows: (band, *geometry(spec, rows)[1:]))
        monkeypatch.setattr(_cost, "_rows_per_task", lambda spec: band)


def _spy(monkeypatch, module, name):
    """Record what ``module.name`` returns (True for a function returning None)."""
    calls, run = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a: calls.append(run(*a) is not False) or calls[-1])
    return calls


def _fits(path, name, data_format):
    spec = normalize(*_case(name, data_format))
    return _cost._tiled_fits(spec) if path == "tiled" else _cost._dot_fits(spec)


PATHS = [(path, name, data_format) for path in ("tiled", "dot") for name in GROUPED
         for data_format in ("NHWC", "NCHW") if _fits(path, name, data_format)]


def test_every_path_takes_several_of_the_cases():
    assert {name for path, name, _ in PATHS if path == "tiled"} == set(GROUPED) - {"g2-kernel-wider-than-input"}
    assert {name for path, name, _ in PATHS if path == "dot"} == set(GROUPED) - {
        "g2-forty-channels-float64", "g4-stride-3-two-blocks"}


@pytest.mark.parametrize("band", [1, 3, None])
@pytest.mark.parametrize("path, name, data_format", PATHS)
def test_grouped_layer_on_each_path_matches_reference(path, name, data_format, band, monkeypatch):
    args = _case(name, data_format)
    _force(monkeypatch, path, band)
    plan = cpu.plan(normalize(*args))
    assert plan.path == path and plan.spec.groups == GROUPED[name][-1]
    assert band is None or plan.split[0] == band
    ran = _spy(monkeypatch, _tiled if path == "tiled" else _dot, "_run_tiled" if path == "tiled" else "_run_dot")
    expected = numba_convt.conv2d_transpose(*args, backend="numpy")
    out = np.full_like(expected, 7)  # the kernels must write every element
    numba_convt.conv2d_transpose(*args, backend="cpu", out=out)
    assert ran == [True]
    assert_close(out, expected, args[0].dtype)


@pytest.mark.parametrize("path, cog", [("tiled", cog) for cog in (1, 2, 7, 15, 16, 17, 31, 32, 33, 40)]
                         + [("dot", cog) for cog in (1, 2, 7, 8, 15)])
def test_every_group_width(path, cog, monkeypatch):
    """Output channels per group from 1 to 40: part of a block, whole blocks, a
    block and a bit; the dot kernel up to its 15."""
    rng = np.random.default_rng(cog)
    x, f = rng.uniform(-1, 1, (1, 7, 17, 12)).astype(np.float32), rng.uniform(-1, 1, (4, 3, cog, 12)).astype(np.float32)
    args = (x, f, [1, 14, 17, 4 * cog], [2, 1], "SAME", "NHWC", None)
    _force(monkeypatch, path)
    assert cpu.plan(normalize(*args)).path == path
    assert_close(numba_convt.conv2d_transpose(*args, backend="cpu"),
                 numba_convt.conv2d_transpose(*args, backend="numpy"), x.dtype)


@pytest.mark.parametrize("path, data_format", [("tiled", "NHWC"), ("tiled", "NCHW"), ("dot", "NHWC")])
def test_identical_bits_for_any_thread_count(path, data_format, monkeypatch):
    """Enough work for parallel shares: one thread or two, the same bits."""
    rng = np.random.default_rng(4)
    x, f = rng.standard_normal((2, 16, 32, 16), np.float32), rng.standard_normal((3, 3, 8, 16), np.float32)
    output_shape = [2, 32, 64, 16]
    if data_format == "NCHW":
        x, output_shape = np.ascontiguousarray(x.transpose(0, 3, 1, 2)), [2, 16, 32, 64]
    _force(monkeypatch, path)
    plan = cpu.plan(normalize(x, f, output_shape, 2, "SAME", data_format, None))
    assert plan.path == path and plan.work >= SERIAL_WORK
    assert_same_bits_for_any_thread_count(x, f, output_shape, 2, "SAME", data_format)


def assert_same_bits_for_any_thread_count(*args):
    """The cpu backend's result on ``args`` with one thread, all, and one again: the same bits."""
    threads, results = numba.get_num_threads(), []
    try:
        for count in (1, threads, 1):
            numba.set_num_threads(count)
            results.append(numba_convt.conv2d_transpose(*args, backend="cpu").tobytes())
    finally:
        numba.set_num_threads(threads)
    assert threads >= 2 and results[0] == results[1] == results[2]


@pytest.mark.filterwarnings("ignore:.*invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("special", [np.inf, np.nan])
def test_grouped_filters_that_are_not_finite_take_the_direct_loops(special, data_format, monkeypatch):
    """Zero padding times inf would be NaN where the definition has no term; no
    BLAS for groups, so the direct loops. Only the group of the bad filter is hit."""
    x, f, *rest = _case("g2-same-stride-1", data_format, seed=11)
    f[1, 2, 5, 9] = special  # group 1 (input channels 8-15), its output channel 8 + 5
    _force(monkeypatch, "tiled")
    tiled, direct = _spy(monkeypatch, _tiled, "_run_tiled"), _spy(monkeypatch, _direct, "_run_direct")
    got = numba_convt.conv2d_transpose(x, f, *rest, backend="cpu")
    expected = numba_convt.conv2d_transpose(x, f, *rest, backend="numpy")
    assert tiled == [False] and direct == [True]
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(got), test(expected))
    channels = np.moveaxis(~np.isfinite(expected), 1 if data_format == "NCHW" else 3, 0)
    assert {int(c) for c in np.flatnonzero(channels.any(axis=(1, 2, 3)))} == {13}
    finite = np.isfinite(expected)
    assert_close(got[finite], expected[finite], x.dtype)


# (input NHWC, C_out/G, groups, strides, dtype, path); 3x3 kernels at stride 1, 4x4 at 2
@pytest.mark.parametrize("x_shape, cog, groups, strides, dtype, path", [
    ((1, 64, 64, 32), 1, 32, 1, "float32", "direct"),  # depthwise: one lane of a vector kernel's operation
    ((1, 64, 64, 16), 1, 16, 2, "float64", "direct"),
    ((1, 64, 64, 8), 2, 4, 2, "float32", "direct"),  # 2 -> 2 channels: the loops over pixels
    # 8 -> 8: the one-vector tile at half its lanes, ahead of the dot kernel by its count (measured,
    # 2 cores: 0.48 against 0.74 ms, 0.17 against 0.15)
    ((1, 64, 64, 32), 8, 4, 2, "float32", "tiled"),
    ((1, 64, 64, 16), 8, 2, 1, "float32", "tiled"),
    ((1, 64, 64, 64), 32, 2, 1, "float32", "tiled"),  # 32 -> 32: every lane of a block
    ((1, 64, 64, 64), 16, 4, 2, "float64", "tiled"),
    ((1, 64, 64, 256), 4, 16, 2, "float32", "dot"),  # 16 -> 4
    ((1, 64, 64, 8), 2, 4, 2, "int32", "direct"),  # no vector kernel for integers
])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_grouped_cost_model(x_shape, cog, groups, strides, dtype, path, data_format):
    """Grouped layers (never BLAS's) go to the kernel with the fewest vector operations."""
    spec = synthetic_spec(x_shape, cog, groups, strides, dtype, data_format)
    assert cpu.plan(spec).path == path
    assert cpu.takes_nchw(spec) == (path == "tiled")


def synthetic_spec(x_shape, cog, groups, strides, dtype, data_format):
    """The spec of a grouped layer BLAS's cost model does not take: 3x3 kernels at stride 1, 4x4 at 2."""
    k = 3 if strides == 1 else 4
    x, f = np.ones(x_shape, dtype), np.ones((k, k, cog, x_shape[3]), dtype)
    output_shape = [x_shape[0], x_shape[1] * strides, x_shape[2] * strides, cog * groups]
    if data_format == "NCHW":
        x, output_shape = x.transpose(0, 3, 1, 2), [output_shape[i] for i in (0, 3, 1, 2)]
    spec = normalize(x, f, output_shape, strides, "SAME", data_format, None)
    assert spec.groups == groups and not _cost._use_blas(spec)
    return spec

