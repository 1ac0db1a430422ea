"""Every backend against TensorFlow 2.21's 1-D and 3-D outputs (tools/make_golden.py --nd).

Each case is called with the arguments TF got, through the rank's function
and through ``conv_transpose`` (the recorded ``op`` names the one TF ran).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from common import BACKENDS, assert_close

import numba_convt

_DATA = np.load(Path(__file__).parent / "data" / "tf_golden_nd.npz")
CASES = json.loads(str(_DATA["cases"]))
FUNCTIONS = {1: numba_convt.conv1d_transpose, 3: numba_convt.conv3d_transpose}


def _dtype(name):
    if name == "bfloat16":
        return np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    return np.dtype(name)


def _params():
    """(case, backend, function): cpu and numpy run each case through the rank's function and
    ``conv_transpose``; cuda (slow in the simulator) through the one TF ran, since the dispatch
    to the rank's function happens before the backend."""
    for i, case in enumerate(CASES):
        for backend in BACKENDS:
            for function in ("rank", "conv_transpose"):
                if backend != "cuda" or (function == "conv_transpose") == (case["op"] == "conv_transpose"):
                    yield pytest.param(i, backend, function, id=f"{case['id']}-{backend}-{function}")


@pytest.mark.parametrize("i, backend, function", list(_params()))
def test_backend_matches_tensorflow(i, backend, function):
    case = CASES[i]
    dtype = _dtype(case["dtype"])
    x, f = _DATA[f"x{i}"].astype(dtype), _DATA[f"f{i}"].astype(dtype)
    call = FUNCTIONS[case["rank"]] if function == "rank" else numba_convt.conv_transpose
    y = call(x, f, case["output_shape"], case["strides"], case["padding"],
             case["data_format"], case["dilations"], backend=backend)
    assert y.dtype == dtype
    assert_close(y, _DATA[f"y{i}"], dtype)


def _forms(key):
    """The argument forms of ``key`` the cases use, per rank: None, int or a list length."""
    forms = {1: set(), 3: set()}
    for c in CASES:
        v = c[key]
        forms[c["rank"]].add(v if v is None else "int" if isinstance(v, int) else len(v))
    return forms


def _in_channels(case):
    x = _DATA[f"x{CASES.index(case)}"]
    return x.shape[-1 if (case["data_format"] or "NWC").endswith("C") else 1]


def test_golden_file_covers_the_argument_space():
    for rank, formats in ((1, {"NWC", "NCW", None}), (3, {"NDHWC", "NCDHW", None})):
        cases = [c for c in CASES if c["rank"] == rank]
        assert len(cases) >= 60
        assert {c["data_format"] for c in cases} == formats
        assert {c["op"] for c in cases} == {f"conv{rank}d_transpose", "conv_transpose"}
        assert {c["padding"] for c in cases} == {"SAME", "VALID"}
        dtypes = {"float16", "bfloat16", "float32", "float64"} | ({"int32"} if rank == 1 else set())
        assert {c["dtype"] for c in cases} == dtypes
        for route in ("grouped", "dilated", "nchw", "direct"):
            assert any(route in c["route"] for c in cases), route
        assert {_in_channels(c) >= 16 for c in cases} == {True, False}
        assert {c["output_shape"][0] for c in cases} == {0, 1, 2, 3}
    for key in ("strides", "dilations"):
        assert _forms(key) == {1: {None, "int", 1, 3}, 3: {None, "int", 1, 3, 5}}
