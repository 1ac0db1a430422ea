"""The public call: array-likes, dtypes, ``out=``, empty shapes, determinism."""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from common import BACKENDS, assert_close

import numba_convt

ARGS = dict(output_shape=[2, 9, 7, 6], strides=[2, 2], padding="SAME", dilations=[1, 2])


def _inputs(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (2, 5, 4, 4))
    f = rng.uniform(-1, 1, (3, 2, 3, 4))  # two groups of 3 output channels
    if np.dtype(dtype).kind in "iu":
        return (x * 4).round().astype(dtype), (f * 4).round().astype(dtype)
    return x.astype(dtype), f.astype(dtype)


def _reference(x, f, **kwargs):
    return numba_convt.conv2d_transpose(x, f, **{**ARGS, **kwargs}, backend="numpy")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a.tolist(),
        lambda a: np.asfortranarray(a),
        lambda a: np.repeat(a, 2, axis=-1)[..., ::2],  # non-contiguous view
        lambda a: a.astype(a.dtype.newbyteorder(">")),
        lambda a: np.lib.stride_tricks.as_strided(a, writeable=False),
    ],
    ids=["list", "fortran", "strided", "big-endian", "read-only"],
)
def test_array_likes(convert, backend):
    x, f = _inputs()
    y = numba_convt.conv2d_transpose(convert(x), convert(f), **ARGS, backend=backend)
    assert y.dtype == np.float64 and y.flags.c_contiguous
    assert_close(y, _reference(x, f), np.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "int64", "complex64", "complex128"])
def test_dtypes(dtype, backend):
    x, f = _inputs(dtype)
    if np.dtype(dtype).kind == "c":
        x, f = x + 1j * x[..., ::-1], f - 2j * f
    y = numba_convt.conv2d_transpose(x, f, **ARGS, backend=backend)
    assert y.dtype == dtype
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    expected = _reference(x.astype(wide), f.astype(wide))
    assert_close(y, expected.astype(dtype) if np.dtype(dtype).kind in "iu" else expected, dtype)


def test_bfloat16_accumulates_in_float32():
    bfloat16 = pytest.importorskip("ml_dtypes").bfloat16
    x, f = _inputs(np.float32)
    y = numba_convt.conv2d_transpose(x.astype(bfloat16), f.astype(bfloat16), **ARGS)
    assert y.dtype == bfloat16
    expected = _reference(x.astype(bfloat16).astype(np.float64), f.astype(bfloat16).astype(np.float64))
    np.testing.assert_array_equal(y, expected.astype(bfloat16))


def test_float16_accumulates_in_float32():
    # 2048 products of 1: a float16 accumulator would stop counting at 2048 + 2 = 2050.
    x, f = np.ones((1, 1, 1, 4096), np.float16), np.ones((1, 1, 1, 4096), np.float16)
    assert numba_convt.conv2d_transpose(x, f, [1, 1], 1)[0, 0, 0, 0] == 4096


def test_integers_wrap_like_numpy():
    x = np.full((1, 1, 1, 2), 2**30, np.int32)
    f = np.full((1, 1, 1, 2), 3, np.int32)
    wrapped = (2**30 * 3 * 2 + 2**31) % 2**32 - 2**31  # two's-complement int32, as NumPy
    for backend in BACKENDS:
        assert numba_convt.conv2d_transpose(x, f, [1, 1], 1, backend=backend)[0, 0, 0, 0] == wrapped


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_out_is_filled_and_returned(dtype, data_format, backend):
    x, f = _inputs(dtype)
    shape = ARGS["output_shape"]
    args = dict(ARGS, data_format=data_format)
    if data_format == "NCHW":
        x, args["output_shape"] = x.transpose(0, 3, 1, 2), [shape[0], shape[3], shape[1], shape[2]]
    out = np.full(args["output_shape"], np.nan, dtype)
    result = numba_convt.conv2d_transpose(x, f, **args, backend=backend, out=out)
    assert result is out
    np.testing.assert_array_equal(out, numba_convt.conv2d_transpose(x, f, **args, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_inputs_are_never_modified(backend):
    x, f = _inputs()
    x_copy, f_copy = x.copy(), f.copy()
    numba_convt.conv2d_transpose(x, f, **ARGS, backend=backend)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(f, f_copy)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "x_shape, output_shape, padding",
    [
        ((0, 6, 4, 3), [0, 12, 8, 2], "SAME"),
        ((1, 0, 4, 3), [1, 0, 8, 2], "SAME"),
        ((1, 0, 4, 3), [1, 1, 9, 2], "VALID"),  # C truncation: (1 - 3 + 2) / 2 == 0
        ((1, 6, 4, 0), [1, 12, 8, 2], "SAME"),
    ],
)
def test_empty_inputs_give_zeros(x_shape, output_shape, padding, backend):
    f = np.ones((3, 3, 2, x_shape[3]), np.float32)
    y = numba_convt.conv2d_transpose(np.ones(x_shape, np.float32), f, output_shape, 2, padding, backend=backend)
    assert y.shape == tuple(output_shape) and y.dtype == np.float32
    assert not y.any()


def test_name_is_accepted_and_ignored():
    x, f = _inputs()
    np.testing.assert_array_equal(
        numba_convt.conv2d_transpose(x, f, **ARGS, name="deconv"), numba_convt.conv2d_transpose(x, f, **ARGS)
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(strides=2, dilations=None),
        dict(strides=np.int64(2), dilations=[1]),
        dict(strides=(2, 2), dilations=(1, 1)),
        dict(strides=[1, 2, 2, 1], dilations=[1, 1, 1, 1]),
        dict(strides=2.0),
        dict(padding="same"),
        dict(padding=[[0, 0], [0, 1], [0, 1], [0, 0]]),
        dict(output_shape=(12, 8)),
        dict(output_shape=np.array([2, 12, 8, 2], np.int64)),
    ],
)
def test_equivalent_argument_forms(kwargs):
    x, f = np.ones((2, 6, 4, 3)), np.arange(18.0).reshape(3, 3, 2, 1).repeat(3, axis=3)
    base = dict(output_shape=[2, 12, 8, 2], strides=[2, 2], padding="SAME")
    expected = numba_convt.conv2d_transpose(x, f, **base)
    np.testing.assert_array_equal(numba_convt.conv2d_transpose(x, f, **{**base, **kwargs}), expected)


_BLAS_CASE = """
import numpy as np, numba_convt
rng = np.random.default_rng(5)
x, f = rng.standard_normal((2, 9, 7, 32), np.float32), rng.standard_normal((3, 4, 24, 32), np.float32)
y = numba_convt.conv2d_transpose(x, f, [2, 18, 14, 24], 2, backend="cpu")
print(y.tobytes().hex())
"""


def test_identical_bits_with_one_thread_everywhere():
    """The BLAS path too: NumPy's BLAS and Numba limited to 1 thread in a subprocess."""
    one = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
    outputs = [
        subprocess.run([sys.executable, "-c", _BLAS_CASE], env={**os.environ, **env}, capture_output=True,
                       text=True, check=True).stdout
        for env in ({}, one)
    ]
    assert outputs[0] == outputs[1] and len(outputs[0]) > 1000


def test_identical_bits_for_any_thread_count():
    x, f = _inputs(np.float32, seed=3)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = numba_convt.conv2d_transpose(x, f, **ARGS, backend="cpu")
        numba.set_num_threads(threads)
        parallel = numba_convt.conv2d_transpose(x, f, **ARGS, backend="cpu")
    finally:
        numba.set_num_threads(threads)
    assert serial.tobytes() == parallel.tobytes()
