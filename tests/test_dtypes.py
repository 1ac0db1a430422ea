"""Mixed ``input``/``filters`` dtypes: every pair against the README's table.

The table is written out here, not derived from NumPy or ml_dtypes, whose
promotion of these pairs has changed between versions (bfloat16 with int32
was an error before ml_dtypes 0.5 and is float64 since).
"""

import subprocess
import sys

import numpy as np
import pytest
from common import BACKENDS

import numba_convt

try:
    from ml_dtypes import bfloat16
except ImportError:  # pragma: no cover - depends on the environment
    bfloat16 = None

# Rows: input dtype; columns: filters dtype (the README's table, abbreviated).
TABLE = """
       f16   bf16  f32   f64   i32   i64   c64   c128
f16    f16   f32   f32   f64   f64   f64   c64   c128
bf16   f32   bf16  f32   f64   f64   f64   c64   c128
f32    f32   f32   f32   f64   f64   f64   c64   c128
f64    f64   f64   f64   f64   f64   f64   c128  c128
i32    f64   f64   f64   f64   i32   i64   c128  c128
i64    f64   f64   f64   f64   i64   i64   c128  c128
c64    c64   c64   c64   c128  c128  c128  c64   c128
c128   c128  c128  c128  c128  c128  c128  c128  c128
"""
NAMES = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64", "i32": "int32",
         "i64": "int64", "c64": "complex64", "c128": "complex128"}


def _pairs():
    header, *rows = [line.split() for line in TABLE.strip().splitlines()]
    for row in rows:
        for column, result in zip(header, row[1:]):
            names = NAMES[row[0]], NAMES[column], NAMES[result]
            marks = pytest.mark.skipif("bfloat16" in names and bfloat16 is None, reason="needs ml_dtypes")
            yield pytest.param(*names, id=f"{row[0]}-{column}", marks=marks)


def _dtype(name):
    return np.dtype(bfloat16) if name == "bfloat16" else np.dtype(name)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "cuda"])  # cuda: tests/test_cuda.py
@pytest.mark.parametrize("input_dtype, filters_dtype, result", list(_pairs()))
def test_mixed_dtypes_follow_the_table(input_dtype, filters_dtype, result, backend):
    """Small integers are exact in every dtype, so every pair must give the exact sums."""
    rng = np.random.default_rng(0)
    x, f = rng.integers(-3, 4, (2, 3, 4, 4)), rng.integers(-3, 4, (3, 3, 5, 4))
    y = numba_convt.conv2d_transpose(x.astype(_dtype(input_dtype)), f.astype(_dtype(filters_dtype)),
                                     [2, 6, 8, 5], 2, backend=backend)
    assert y.dtype == _dtype(result)
    expected = numba_convt.conv2d_transpose(x, f, [2, 6, 8, 5], 2, backend="numpy")  # int64, exact
    np.testing.assert_array_equal(y.astype(np.complex128), expected)


def test_the_table_covers_every_supported_dtype():
    from numba_convt._normalize import supported_dtypes

    assert {str(d) for d in supported_dtypes()} <= set(NAMES.values())


def test_ml_dtypes_is_imported_only_for_bfloat16():
    """Importing ml_dtypes takes ~0.8 s: neither the import nor a float32 call pays it."""
    code = ("import sys, numpy as np, numba_convt\n"
            "numba_convt.conv2d_transpose(np.ones((1, 2, 2, 1), np.float32), np.ones((3, 3, 1, 1), np.float32), "
            "[1, 4, 4, 1], 2)\n"
            "assert 'ml_dtypes' not in sys.modules, 'ml_dtypes imported'\n")
    if bfloat16 is not None:  # and asking for bfloat16 by name imports it
        code += ("numba_convt.plan([1, 2, 2, 1], [3, 3, 1, 1], [1, 4, 4, 1], 2, dtype='bfloat16')\n"
                 "assert 'ml_dtypes' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
