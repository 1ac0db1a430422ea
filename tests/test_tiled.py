"""The cpu backend's kernels with explicit vectors (``backends/cpu/_tile.py``): the
register tile and the dot kernel against their contracts, and their Numba
drivers (``_tiled_tasks``, ``_dot_tasks``) forced through bands, layouts,
edges, channel blocks and in-place reads."""

import numba
import numpy as np
import pytest
from common import assert_close

import numba_convt
from numba_convt._normalize import normalize
from numba_convt.backends import cpu
from numba_convt.backends.cpu import _cost, _direct, _dot, _gemm, _tile, _tiled


@numba.njit
def _call(tile, x, xoff, woff, taps, depth, x_step, w, c, ldc, rows, cols):
    tile(x.ctypes.data, xoff.ctypes.data, woff.ctypes.data, taps, depth, x_step, w.ctypes.data, c.ctypes.data,
         ldc, rows, cols)


def _sums(shape, rows, cols, taps, depth, left, right):
    """``[r, j] = sum(left(t, r, k) * right(t, j, k))`` over taps and depth, in
    float64, for ``r < rows``, ``j < cols``; -7 elsewhere in ``shape``."""
    expected = np.full(shape, -7.0)
    for r in range(rows):
        for j in range(cols):
            expected[r, j] = sum(float(left(t, r, k)) * float(right(t, j, k)) for t in range(taps)
                                 for k in range(depth))
    return expected


@pytest.mark.parametrize("vectors", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shrink", [(0, 0), (5, 0), (0, 3), (7, 9)])
def test_kernel_sums_taps_and_stores_only_its_rows_and_columns(dtype, shrink, vectors):
    tile, rows, width = _tile.kernel(dtype, vectors)
    assert width == vectors * _tile.lanes(dtype)
    rng = np.random.default_rng(0)
    taps, depth, x_step, ldc = 3, 5, 7, width + 3
    x, w = rng.standard_normal(600).astype(dtype), rng.standard_normal(3 * depth * width + 50).astype(dtype)
    xoff, woff = np.array([0, 100, 37]), np.array([0, depth * width + 50, 2 * depth * width])
    nrows, ncols = max(1, rows - shrink[0]), max(1, width - shrink[1])
    c = np.full(rows * ldc, -7.0, dtype)
    _call(tile, x, xoff, woff, taps, depth, x_step, w, c, ldc, nrows, ncols)
    expected = _sums((rows, ldc), nrows, ncols, taps, depth, lambda t, r, k: x[xoff[t] + r * x_step + k],
                     lambda t, j, k: w[woff[t] + k * width + j])
    assert_close(c.reshape(rows, ldc), expected, dtype)
    assert (c.reshape(rows, ldc)[nrows:] == -7).all() and (c.reshape(rows, ldc)[:, ncols:] == -7).all()


def test_kernel_without_taps_stores_zeros():
    tile, rows, width = _tile.kernel(np.float32)
    c = np.full(rows * width, 5.0, np.float32)
    empty = np.zeros(1, np.float32)
    _call(tile, empty, np.zeros(1, np.int64), np.zeros(1, np.int64), 0, 3, 3, empty, c, width, rows, width)
    assert (c == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_tile_is_one_vector_wide_for_channels_that_fit_in_one(dtype):
    lanes = _tile.lanes(dtype)
    assert _tile.kernel_for(dtype, lanes) == _tile.kernel(dtype, 1)
    assert _tile.kernel_for(dtype, lanes + 1) == _tile.kernel(dtype, 2)


def test_kernel_is_only_for_float32_and_float64():
    assert _tile.kernel(np.complex64) is None and _tile.kernel(np.int32) is None
    assert _tile.dot_kernel(np.complex64, 3) is None and _tile.dot_kernel(np.int32, 3) is None


@numba.njit
def _call_dot(dot, a, a_off, b_off, taps, depth, a_step, b, b_step, c, ldc):
    dot(a.ctypes.data, a_off.ctypes.data, b_off.ctypes.data, taps, depth, a_step, b.ctypes.data, b_step,
        c.ctypes.data, ldc)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels, rows", [(3, None), (1, None), (7, None), (15, None), (3, 1), (20, 2)])
@pytest.mark.parametrize("depth", [1, 16, 37, 64])
def test_dot_kernel_sums_taps_and_reads_only_depth(dtype, channels, rows, depth):
    """Each row reads ``depth`` values: a NaN just past them changes nothing."""
    dot, rows_ = _tile.dot_kernel(dtype, channels, rows)
    assert rows is None or rows_ == rows
    rng = np.random.default_rng(depth)
    taps, a_step, b_step, ldc = 3, depth + 1, depth + 1, channels + 2
    a_off, b_off = np.arange(taps) * (rows_ * a_step + 5), np.arange(taps) * (channels * b_step + 5)
    a, b = rng.standard_normal(taps * (rows_ * a_step + 5)), rng.standard_normal(taps * (channels * b_step + 5))
    for t in range(taps):  # NaN just past each row
        a[a_off[t] + depth:a_off[t] + rows_ * a_step:a_step] = np.nan
        b[b_off[t] + depth:b_off[t] + channels * b_step:b_step] = np.nan
    a, b = a.astype(dtype), b.astype(dtype)
    c = np.full(rows_ * ldc, -7.0, dtype)
    _call_dot(dot, a, a_off, b_off, taps, depth, a_step, b, b_step, c, ldc)
    expected = _sums((rows_, ldc), rows_, channels, taps, depth, lambda t, r, k: a[a_off[t] + r * a_step + k],
                     lambda t, q, k: b[b_off[t] + q * b_step + k])
    assert_close(c.reshape(rows_, ldc), expected, dtype)


# (input NHWC, filters [KH, KW, C_out, C_in], strides, padding, dilations, dtype);
# each at least 16 output pixels per row phase, as the cost model wants
TILED = {
    "same-stride-1": ((2, 9, 17, 16), (3, 3, 24, 16), 1, "SAME", 1, "float32"),
    "blocks-float64": ((2, 5, 16, 20), (4, 4, 40, 20), 2, "SAME", 1, "float64"),
    "in-place": ((2, 8, 16, 16), (2, 2, 17, 16), 2, "VALID", 1, "float32"),
    "dilated-anisotropic": ((1, 10, 16, 16), (3, 3, 19, 16), [1, 2], "SAME", [2, 1], "float32"),
    "cropped": ((2, 9, 20, 16), (3, 3, 16, 16), [1, 2], [[0, 0], [4, 3], [1, 5], [0, 0]], 2, "float64"),
    "stride-over-kernel": ((2, 6, 18, 16), (2, 2, 16, 16), 3, "VALID", 1, "float32"),
}


def _tiled_case(name, data_format):
    x_shape, f_shape, strides, padding, dilations, dtype = TILED[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x, f = rng.uniform(-4, 4, x_shape).astype(dtype), rng.uniform(-4, 4, f_shape).astype(dtype)
    output_shape = numba_convt.conv2d_transpose_output_shape(x_shape, f_shape, strides, padding, "NHWC", dilations)
    if data_format == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        output_shape = [output_shape[i] for i in (0, 3, 1, 2)]
        padding = padding if isinstance(padding, str) else [padding[i] for i in (0, 3, 1, 2)]
    return x, f, output_shape, strides, padding, data_format, dilations


@pytest.mark.parametrize("band", [1, 3, None])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("name", TILED)
def test_tiled_path_matches_reference(name, data_format, band, monkeypatch):
    args = _tiled_case(name, data_format)
    spec = normalize(*args)
    assert cpu.plan(spec).path == "tiled" and cpu.takes_nchw(spec)
    tile, rows, _ = _tile.kernel(spec.compute_dtype)
    copies = _cost._tiled_geometry(spec, rows)[3]
    assert copies == (name != "in-place")
    geometry = _cost._tiled_geometry
    if band is not None:  # bands of 1 and 3 output rows; default: a few per core
        monkeypatch.setattr(_cost, "_tiled_geometry", lambda spec, rows: (band, *geometry(spec, rows)[1:]))
    plan = cpu.plan(spec)
    assert plan.path == "tiled" and plan.split[0] == (band or geometry(spec, rows)[0])
    ran, run = [], _tiled._run_tiled
    monkeypatch.setattr(_tiled, "_run_tiled", lambda *a: ran.append(run(*a)) or ran[-1])
    expected = numba_convt.conv2d_transpose(*args, backend="numpy")
    out = np.full_like(expected, 7)  # the kernels must write every element
    numba_convt.conv2d_transpose(*args, backend="cpu", out=out)
    assert ran == [True]
    assert_close(out, expected, args[0].dtype)


# (input NHWC, filters [KH, KW, C_out, C_in], strides, padding, dilations, dtype): C_out < 16
DOT = {
    "rgb": ((2, 8, 16, 32), (4, 4, 3, 32), 2, "SAME", 1, "float32"),
    "one-channel-float64": ((2, 6, 13, 16), (3, 3, 1, 16), 1, "SAME", 1, "float64"),
    "dilated-cropped": ((2, 9, 20, 17), (3, 3, 7, 17), [1, 2], [[0, 0], [4, 3], [1, 5], [0, 0]], 2, "float32"),
    "kernel-wider-than-input": ((4, 8, 3, 16), (3, 9, 5, 16), [1, 2], "SAME", [1, 2], "float32"),
    "stride-over-kernel": ((2, 6, 18, 16), (2, 2, 15, 16), 3, "VALID", 1, "float64"),
}


@pytest.mark.parametrize("name", DOT)
def test_dot_path_matches_reference(name, monkeypatch):
    x_shape, f_shape, strides, padding, dilations, dtype = DOT[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x, f = rng.uniform(-4, 4, x_shape).astype(dtype), rng.uniform(-4, 4, f_shape).astype(dtype)
    output_shape = numba_convt.conv2d_transpose_output_shape(x_shape, f_shape, strides, padding, "NHWC", dilations)
    args = (x, f, output_shape, strides, padding, "NHWC", dilations)
    assert cpu.plan(normalize(*args)).path == "dot"
    ran, run = [], _dot._run_dot
    monkeypatch.setattr(_dot, "_run_dot", lambda *a: ran.append(1) or run(*a))
    expected = numba_convt.conv2d_transpose(*args, backend="numpy")
    out = np.full_like(expected, 7)  # the kernels must write every element
    numba_convt.conv2d_transpose(*args, backend="cpu", out=out)
    assert ran == [1]
    assert_close(out, expected, x.dtype)
    nchw = (np.ascontiguousarray(x.transpose(0, 3, 1, 2)), f, [output_shape[i] for i in (0, 3, 1, 2)], strides,
            padding if isinstance(padding, str) else [padding[i] for i in (0, 3, 1, 2)], "NCHW", dilations)
    assert cpu.plan(normalize(*nchw)).path == "blas" and cpu.takes_nchw(normalize(*nchw))  # NCHW: BLAS, in place


@pytest.mark.filterwarnings("ignore:.*invalid value encountered:RuntimeWarning")
def test_dot_path_puts_nan_and_inf_where_the_definition_does():
    """No padding: a filter's inf meets only the inputs it really multiplies."""
    x_shape, f_shape, strides, padding, dilations, dtype = DOT["rgb"]
    rng = np.random.default_rng(5)
    x, f = rng.uniform(-4, 4, x_shape).astype(dtype), rng.uniform(-4, 4, f_shape).astype(dtype)
    x[0, 0, 0, 0], x[1, 5, 7, 3], f[0, 0, 1, 4], f[3, 2, 0, 9] = np.nan, np.inf, np.inf, -np.inf
    output_shape = numba_convt.conv2d_transpose_output_shape(x_shape, f_shape, strides, padding)
    got = numba_convt.conv2d_transpose(x, f, output_shape, strides, padding, backend="cpu")
    expected = numba_convt.conv2d_transpose(x, f, output_shape, strides, padding, backend="numpy")
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(got), test(expected))
    finite = np.isfinite(expected)
    assert 0.5 < finite.mean() < 1
    assert_close(got[finite], expected[finite], x.dtype)


def test_api_hands_nchw_tiled_calls_over_as_they_are(monkeypatch):
    seen, run = [], _tiled._run_tiled
    monkeypatch.setattr(_tiled, "_run_tiled", lambda plan, x, *rest: seen.append(x.shape) or run(plan, x, *rest))
    args = _tiled_case("same-stride-1", "NCHW")
    numba_convt.conv2d_transpose(*args, backend="cpu")
    assert seen == [args[0].shape]  # NCHW, not copied to NHWC first


@pytest.mark.filterwarnings("ignore:.*invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("special", [np.inf, -np.inf, np.nan])
def test_filters_that_are_not_finite_take_the_blas_path(special, monkeypatch):
    """Zero padding times inf would be NaN where the definition has no term."""
    x, f, *rest = _tiled_case("same-stride-1", "NHWC")
    f[0, 0, 3, 5] = special
    blas, run = [], _gemm._run_blas
    monkeypatch.setattr(_gemm, "_run_blas", lambda *a: blas.append(1) or run(*a))
    got = numba_convt.conv2d_transpose(x, f, *rest, backend="cpu")
    expected = numba_convt.conv2d_transpose(x, f, *rest, backend="numpy")
    assert blas == [1]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
    finite = np.isfinite(expected)
    assert 0.5 < finite.mean() < 1
    assert_close(got[finite], expected[finite], x.dtype)


@pytest.mark.filterwarnings("ignore:.*invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_few_channel_filters_that_are_not_finite_take_the_direct_loops(data_format, monkeypatch):
    """Below BLAS's cost model the fallback is the direct loops, which index NHWC."""
    rng = np.random.default_rng(9)
    x, f = rng.uniform(-1, 1, (2, 20, 24, 3)).astype(np.float32), rng.uniform(-1, 1, (4, 4, 16, 3)).astype(np.float32)
    f[1, 2, 5, 1] = np.inf
    output_shape = [2, 40, 48, 16]
    if data_format == "NCHW":
        x, output_shape = np.ascontiguousarray(x.transpose(0, 3, 1, 2)), [2, 16, 40, 48]
    assert cpu.plan(normalize(x, f, output_shape, 2, "SAME", data_format, None)).path == "tiled"
    direct, run = [], _direct._run_direct
    monkeypatch.setattr(_direct, "_run_direct", lambda plan, x, *rest: direct.append(x.shape) or run(plan, x, *rest))
    got = numba_convt.conv2d_transpose(x, f, output_shape, 2, data_format=data_format, backend="cpu")
    expected = numba_convt.conv2d_transpose(x, f, output_shape, 2, data_format=data_format, backend="numpy")
    assert direct == [(2, 20, 24, 3)]  # NHWC, whatever the call's layout
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(got), test(expected))
    finite = np.isfinite(expected)
    assert 0.3 < finite.mean() < 1
    assert_close(got[finite], expected[finite], x.dtype)


def test_inputs_that_are_not_finite_stay_on_the_tiled_path():
    x, f, *rest = _tiled_case("same-stride-1", "NHWC")
    x[0, 0, 0, 0], x[1, 4, 10, 3] = np.inf, np.nan
    spec = normalize(x, f, *rest)
    assert cpu.plan(spec).path == "tiled"
    got = numba_convt.conv2d_transpose(x, f, *rest, backend="cpu")
    expected = numba_convt.conv2d_transpose(x, f, *rest, backend="numpy")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
    finite = np.isfinite(expected)
    assert_close(got[finite], expected[finite], x.dtype)


@pytest.mark.parametrize("name, reason", [
    ("few-output-channels", ((1, 16, 16, 16), (3, 3, 15, 16), 2, "SAME", 1, "float32")),  # the dot kernel's
    ("complex", ((1, 16, 16, 16), (3, 3, 16, 16), 2, "SAME", 1, "complex64")),
    ("few-pixels-per-phase", ((8, 8, 8, 64), (4, 4, 64, 64), 2, "SAME", 1, "float32")),
])
def test_cost_model_keeps_other_layers_off_the_tiled_path(name, reason):
    x_shape, f_shape, strides, padding, dilations, dtype = reason
    x, f = np.ones(x_shape, dtype), np.ones(f_shape, dtype)
    output_shape = numba_convt.conv2d_transpose_output_shape(x_shape, f_shape, strides, padding, "NHWC", dilations)
    assert cpu.plan(normalize(x, f, output_shape, strides, padding, "NHWC", dilations)).path != "tiled"


@pytest.mark.parametrize("x_shape, f_shape, out_c, strides, dtype, path", [
    ((1, 128, 128, 3), (4, 4, 16, 3), 16, 2, "float32", "tiled"),  # lanes over 16 output channels
    ((1, 128, 128, 3), (4, 4, 8, 3), 8, 2, "float64", "tiled"),
    ((1, 128, 128, 12), (4, 4, 8, 12), 8, 2, "float32", "dot"),  # lanes over 12 input channels
    ((1, 128, 128, 4), (5, 5, 4, 4), 4, 1, "float32", "direct"),  # few of both: loops over pixels
    ((1, 256, 256, 3), (4, 4, 3, 3), 3, 2, "float32", "direct"),
    ((1, 256, 256, 1), (4, 4, 1, 1), 1, 2, "float32", "direct"),
    ((1, 128, 128, 8), (4, 4, 8, 8), 8, 2, "int32", "direct"),  # no vector kernel for integers
    ((1, 128, 128, 8), (4, 4, 4, 8), 8, 2, "float32", "direct"),  # two groups
])
def test_few_channel_cost_model(x_shape, f_shape, out_c, strides, dtype, path):
    """Layers below BLAS's cost model go to the kernel with the fewest vector operations."""
    x, f = np.ones(x_shape, dtype), np.ones(f_shape, dtype)
    output_shape = [x_shape[0], x_shape[1] * strides, x_shape[2] * strides, out_c]
    spec = normalize(x, f, output_shape, strides, "SAME", "NHWC", None)
    assert cpu.plan(spec).path == path
    assert cpu.takes_nchw(spec) == (path == "tiled")  # the tile reads NCHW in place


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("x_shape, f_shape, strides, dilations", [
    ((1, 64, 512, 64), (3, 3, 64, 64), 1, 1),
    ((2, 40, 2000, 16), (5, 5, 32, 16), 2, 1),
    ((1, 30, 9000, 32), (3, 3, 16, 32), 1, 3),
    ((3, 9, 20, 16), (4, 4, 24, 16), 2, 1),
])
def test_task_scratch_stays_within_its_reported_bound(x_shape, f_shape, strides, dilations, data_format):
    """Every band's input rows (brute force), its slack and its NCHW output rows fit
    ``bytes``, which stays within ``_Y_BYTES`` unless a single output row needs more."""
    output_shape = numba_convt.conv2d_transpose_output_shape(x_shape, f_shape, strides, "SAME", "NHWC", dilations)
    x, f = np.empty(x_shape, np.float32), np.empty(f_shape, np.float32)
    if data_format == "NCHW":
        x, output_shape = x.transpose(0, 3, 1, 2), [output_shape[i] for i in (0, 3, 1, 2)]
    spec = normalize(x, f, output_shape, strides, "SAME", data_format, dilations)
    _, rows, _ = _tile.kernel(np.float32)
    band, _, width, _, scratch = _cost._tiled_geometry(spec, rows)
    in_row = width * spec.in_c * 4
    out_row = spec.out_w * spec.out_c * 4 if data_format == "NCHW" else 0
    for o0 in range(0, spec.out_h, band):
        o1 = min(spec.out_h, o0 + band)
        reached = {(oy + spec.pad_top - ky * spec.dil_h) // spec.stride_h for oy in range(o0, o1)
                   for ky in range(spec.k_h) if (oy + spec.pad_top - ky * spec.dil_h) % spec.stride_h == 0}
        reached = [iy for iy in reached if 0 <= iy < spec.in_h]
        span = max(reached) - min(reached) + 1 if reached else 0
        assert (span + -(-rows // width)) * in_row + (o1 - o0) * out_row <= scratch
    assert band == 1 or scratch <= _cost._Y_BYTES


@pytest.mark.parametrize("cog, groups, block", [(3, 1, 16), (32, 1, 32), (40, 2, 32), (5, 3, 16)])
def test_packed_filters_against_their_definition(cog, groups, block):
    """``wp[g, b, ky, kx, ci, j] = filters[ky, kx, b*block + j, g*cig + ci]``, zero past ``C_out/G``."""
    cig = 4
    filters = np.arange(2 * 3 * cog * groups * cig, dtype=np.float32).reshape(2, 3, cog, groups * cig) + 1
    wp = _tiled._packed(filters, groups, block, np.float64)
    blocks = -(-cog // block)
    assert wp.shape == (groups, blocks, 2, 3, cig, block) and wp.dtype == np.float64 and wp.flags.c_contiguous
    for g, b, ky, kx, ci, j in np.ndindex(wp.shape):
        co = b * block + j
        assert wp[g, b, ky, kx, ci, j] == (filters[ky, kx, co, g * cig + ci] if co < cog else 0)
