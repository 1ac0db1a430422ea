"""Every backend against TensorFlow 2.21's own outputs (tools/make_golden.py)."""

import json
from pathlib import Path

import numpy as np
import pytest
from common import BACKENDS, assert_close

import numba_convt

_DATA = np.load(Path(__file__).parent / "data" / "tf_golden.npz")
CASES = json.loads(str(_DATA["cases"]))


def _dtype(name):
    if name == "bfloat16":
        return np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    return np.dtype(name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("i", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_backend_matches_tensorflow(i, backend):
    case = CASES[i]
    dtype = _dtype(case["dtype"])
    x, f = _DATA[f"x{i}"].astype(dtype), _DATA[f"f{i}"].astype(dtype)
    y = numba_convt.conv2d_transpose(
        x, f, case["output_shape"], case["strides"], case["padding"],
        case["data_format"], case["dilations"], backend=backend,
    )
    assert y.dtype == dtype
    assert_close(y, _DATA[f"y{i}"], dtype)


def test_golden_file_covers_the_argument_space():
    seen = {(c["data_format"], c["dtype"], str(c["padding"])[:4], len(c["output_shape"])) for c in CASES}
    assert {s[0] for s in seen} == {"NHWC", "NCHW"}
    assert {s[1] for s in seen} >= {"float16", "float32", "float64", "int32"}
    assert {s[2] for s in seen} >= {"SAME", "VALI", "[[0,"}
    assert {s[3] for s in seen} == {2, 4}
    assert any("grouped" in c["route"] for c in CASES)
    assert any("dilated" in c["route"] for c in CASES)
