"""The argument mappings of ``docs/interop.md`` against real PyTorch, JAX and Keras outputs.

``tests/data/interop_golden.npz`` holds calls recorded from
``torch.nn.functional.conv_transpose2d``, ``jax.lax.conv_transpose`` and
``keras.layers.Conv2DTranspose`` (``tools/make_interop_golden.py``). Each
``from_*`` function below is the mapping the document gives, written once;
the tests apply it to every recorded call and compare with the peer's output.
"""

import doctest
import json
import re
from pathlib import Path

import numpy as np
import pytest
from common import assert_close, tf_consistent_sizes

from numba_convt import conv2d_transpose, conv2d_transpose_output_shape

_DATA = np.load(Path(__file__).parent / "data" / "interop_golden.npz")
_DOC = Path(__file__).parent.parent / "docs" / "interop.md"
CASES = json.loads(str(_DATA["cases"]))
REFUSED = json.loads(str(_DATA["refused"]))
HOST_BACKENDS = ["numpy", "cpu"]


def _hw(value):
    return (value, value) if isinstance(value, int) else tuple(value)


# --------------------------------------------------------------------------
# The mappings, as in docs/interop.md.
# --------------------------------------------------------------------------

def from_torch(x, weight, stride=1, padding=0, output_padding=0, dilation=1, groups=1, backend="auto"):
    """``torch.nn.functional.conv_transpose2d(x, weight, ...)`` (NCHW)."""
    stride, padding, output_padding, dilation = map(_hw, (stride, padding, output_padding, dilation))
    filters = weight.transpose(2, 3, 1, 0)  # [C_in, C_out/g, kH, kW] -> [kH, kW, C_out/g, C_in]
    if all(op < s for op, s in zip(output_padding, stride)):
        pads = [[0, 0], [0, 0], [padding[0]] * 2, [padding[1]] * 2]
        shape = conv2d_transpose_output_shape(x.shape, filters.shape, stride, pads, "NCHW", dilation,
                                              output_padding=output_padding, groups=groups)
        return conv2d_transpose(x, filters, shape, stride, pads, "NCHW", dilation, backend=backend)
    # output_padding >= stride (PyTorch allows it when dilation > stride): crop
    # output_padding fewer rows at the bottom, and add zero rows past the full result.
    after = [max(p - op, 0) for p, op in zip(padding, output_padding)]
    zeros = [max(op - p, 0) for p, op in zip(padding, output_padding)]
    pads = [[0, 0], [0, 0], [padding[0], after[0]], [padding[1], after[1]]]
    shape = conv2d_transpose_output_shape(x.shape, filters.shape, stride, pads, "NCHW", dilation, groups=groups)
    y = conv2d_transpose(x, filters, shape, stride, pads, "NCHW", dilation, backend=backend)
    return np.pad(y, [(0, 0), (0, 0), (0, zeros[0]), (0, zeros[1])])


def from_jax(lhs, rhs, strides, padding, rhs_dilation=None, transpose_kernel=False,
             use_consistent_padding=False, backend="auto"):
    """``jax.lax.conv_transpose(lhs, rhs, ...)`` with ``("NHWC", "HWIO", "NHWC")``."""
    dilations = (1, 1) if rhs_dilation is None else tuple(rhs_dilation)
    # transpose_kernel=True reads rhs as [kH, kW, C_out, C_in], TF's layout;
    # False is a plain convolution of the dilated input: flip and swap I/O.
    filters = rhs if transpose_kernel else rhs[::-1, ::-1].transpose(0, 1, 3, 2)
    if isinstance(padding, str):
        shape = conv2d_transpose_output_shape(lhs.shape, filters.shape, strides, padding, "NHWC", dilations)
        return conv2d_transpose(lhs, filters, shape, strides, padding, "NHWC", dilations, backend=backend)
    effective = [(k - 1) * d + 1 for k, d in zip(filters.shape[:2], dilations)]
    # Crops of the full result: the pairs themselves with use_consistent_padding,
    # else pairs padding the dilated input, i.e. crops of E - 1 - pad.
    crops = padding if use_consistent_padding else [[e - 1 - lo, e - 1 - hi] for (lo, hi), e in zip(padding, effective)]
    pads = [[0, 0], *([max(c, 0) for c in pair] for pair in crops), [0, 0]]
    shape = conv2d_transpose_output_shape(lhs.shape, filters.shape, strides, pads, "NHWC", dilations)
    y = conv2d_transpose(lhs, filters, shape, strides, pads, "NHWC", dilations, backend=backend)
    # A negative crop (padding past the kernel's reach) is rows of zeros.
    return np.pad(y, [(0, 0), *([max(-c, 0) for c in pair] for pair in crops), (0, 0)])


def from_keras(x, kernel, strides=1, padding="valid", output_padding=None, dilation_rate=1, backend="auto"):
    """``keras.layers.Conv2DTranspose(..., use_bias=False)`` with its kernel (channels_last)."""
    shape = conv2d_transpose_output_shape(x.shape, kernel.shape, strides, padding, "NHWC", dilation_rate,
                                          output_padding=output_padding)
    return conv2d_transpose(x, kernel, shape, strides, padding, "NHWC", dilation_rate, backend=backend)


MAPPINGS = {"torch": from_torch, "jax": from_jax, "keras": from_keras}


def _peer_args(case):
    """The peer's arguments; Keras's ``filters`` and ``kernel_size`` are the kernel's shape."""
    drop = ("peer", "id", "versions", "error", "input_shape", "weight_shape", "filters", "kernel_size")
    return {k: v for k, v in case.items() if k not in drop}


# --------------------------------------------------------------------------
# Tests.
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("i", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_mapping_matches_recorded_peer(i, backend):
    _check_case(i, lambda peer, *arrays, **args: MAPPINGS[peer](*arrays, backend=backend, **args))


def test_documented_code_matches_recorded_peers():
    """The code blocks of docs/interop.md, run as they are, on every case."""
    namespace = {}
    for block in re.findall(r"```python\n(.*?)```", _DOC.read_text(), re.S):
        if "def from_" in block:
            exec(block, namespace)
    for i in range(len(CASES)):
        _check_case(i, lambda peer, *arrays, **args: namespace[f"from_{peer}"](*arrays, **args))


def test_documented_examples_run():
    assert doctest.testfile(str(_DOC), module_relative=False).failed == 0


def _check_case(i, mapping):
    case = CASES[i]
    x, w, expected = _DATA[f"x{i}"], _DATA[f"w{i}"], _DATA[f"y{i}"]
    if case["peer"] == "keras":
        assert list(w.shape[:3]) == [*case["kernel_size"], case["filters"]]
    try:
        y = mapping(case["peer"], x, w, **_peer_args(case))
    except ValueError:
        # Only JAX gets here: an explicit padding that crops more than the
        # whole result gives an empty dimension in JAX; TF's rule has no size.
        assert case["peer"] == "jax" and expected.size == 0, case
        _assert_no_tf_size(case, x, w)
        return
    assert y.dtype == x.dtype
    assert_close(y, expected, x.dtype)


def _assert_no_tf_size(case, x, w):
    filters = w if case["transpose_kernel"] else w.transpose(0, 1, 3, 2)
    dilations = case["rhs_dilation"]
    crops = case["padding"] if case["use_consistent_padding"] else [
        [(k - 1) * d - lo, (k - 1) * d - hi] for (lo, hi), k, d in zip(case["padding"], filters.shape[:2], dilations)]
    assert any(
        tf_consistent_sizes(n, k, s, d, "EXPLICIT", max(c[0], 0), max(c[1], 0)) == []
        for n, k, s, d, c in zip(x.shape[1:3], filters.shape[:2], case["strides"], dilations, crops)
    )


@pytest.mark.parametrize("i", range(len(REFUSED)), ids=[f"{r['peer']}-refused-{i}" for i, r in enumerate(REFUSED)])
def test_what_the_peer_refused_is_refused_here(i):
    """Keras's SAME with an even kernel and output_padding 0: TF's size rule refuses it."""
    case = REFUSED[i]
    x, w = np.zeros(case["input_shape"]), np.zeros(case["weight_shape"])
    with pytest.raises(ValueError, match="output_padding"):
        MAPPINGS[case["peer"]](x, w, backend="numpy", **_peer_args(case))


def test_recorded_cases_cover_the_documented_mappings():
    torch_cases = [c for c in CASES if c["peer"] == "torch"]
    jax_cases = [c for c in CASES if c["peer"] == "jax"]
    keras_cases = [c for c in CASES if c["peer"] == "keras"]
    assert {c["groups"] for c in torch_cases} >= {1, 2, 3}
    assert any(max(_hw(c["dilation"])) > 1 for c in torch_cases)
    big = [(op, s, p) for c in torch_cases for op, s, p in
           zip(_hw(c["output_padding"]), _hw(c["stride"]), _hw(c["padding"])) if op >= s]
    assert any(op <= p for op, _, p in big) and any(op > p for op, _, p in big)
    kinds = {(c["padding"] if isinstance(c["padding"], str) else "explicit", c["transpose_kernel"]) for c in jax_cases}
    assert kinds >= {(kind, flag) for kind in ("SAME", "VALID", "explicit") for flag in (True, False)}
    assert {c["use_consistent_padding"] for c in jax_cases if not isinstance(c["padding"], str)} == {True, False}
    assert any(min(min(pair) for pair in c["padding"]) < 0 for c in jax_cases if not isinstance(c["padding"], str))
    assert {(c["padding"], c["output_padding"] is None) for c in keras_cases} == {
        (p, none) for p in ("same", "valid") for none in (True, False)}
    assert any(max(c["dilation_rate"]) > 1 for c in keras_cases)
    assert REFUSED and all(r["peer"] == "keras" for r in REFUSED)
