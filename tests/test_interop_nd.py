"""The 1-D and 3-D mappings of ``docs/interop.md`` against real PyTorch, JAX and Keras outputs.

``tests/data/interop_golden_nd.npz`` holds calls recorded from
``torch.nn.functional.conv_transpose1d/3d``, ``jax.lax.conv_transpose``,
``keras.layers.Conv1DTranspose/Conv3DTranspose``, and TF-style SAME/VALID
calls run in PyTorch through the page's ``to_torch``
(``tools/make_interop_golden.py nd``). The mappings tested are the page's
code blocks themselves, run with the ``"numpy"`` and ``"cpu"`` backends.
"""

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from common import assert_close, tf_consistent_sizes

import numba_convt

_DATA = np.load(Path(__file__).parent / "data" / "interop_golden_nd.npz")
_DOC = Path(__file__).parent.parent / "docs" / "interop.md"
CASES = json.loads(str(_DATA["cases"]))
REFUSED = json.loads(str(_DATA["refused"]))
HOST_BACKENDS = ["numpy", "cpu"]


def _axes(value, rank):
    return (value,) * rank if isinstance(value, int) else tuple(value)


@functools.cache
def _documented(backend):
    """The page's N-d functions (``from_*_nd``, ``to_torch``), calling ``conv_transpose`` on ``backend``."""
    namespace = {}
    for block in re.findall(r"```python\n(.*?)```", _DOC.read_text(), re.S):
        if re.search(r"def (from_\w+_nd|to_torch)\(", block):
            exec(block, namespace)
    namespace["conv_transpose"] = functools.partial(numba_convt.conv_transpose, backend=backend)
    return namespace


def _peer_args(case):
    """The peer's arguments; Keras's ``filters`` and ``kernel_size`` are the kernel's shape."""
    drop = ("peer", "id", "versions", "rank", "error", "input_shape", "weight_shape", "filters", "kernel_size")
    return {k: v for k, v in case.items() if k not in drop}


@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("i", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_mapping_matches_recorded_peer(i, backend):
    case, x, w, expected = CASES[i], _DATA[f"x{i}"], _DATA[f"w{i}"], _DATA[f"y{i}"]
    assert x.ndim == case["rank"] + 2
    if case["peer"] == "torch_tf":
        return _check_to_torch(case, x, w, expected, backend)
    if case["peer"] == "keras":
        assert list(w.shape[:-1]) == [*case["kernel_size"], case["filters"]]
    mapping = _documented(backend)[f"from_{case['peer']}_nd"]
    try:
        y = mapping(x, w, **_peer_args(case))
    except ValueError:
        # JAX: an explicit padding cropping more than the whole result (an
        # empty dimension in JAX; TF's rule has no size). Keras: an empty size
        # TF's rule refuses, which TF's oneDNN kernel returns unchecked
        # (tf_nd_semantics.md section 3.4).
        assert case["peer"] in ("jax", "keras") and expected.size == 0, case
        if case["peer"] == "jax":
            _assert_no_tf_size(case, x, w)
        return
    assert y.dtype == x.dtype
    assert_close(y, expected, x.dtype)


def _check_to_torch(case, x, w, expected, backend):
    """The page's ``to_torch`` gives the recorded PyTorch arguments, and its
    slice of PyTorch's result is ``conv_transpose`` with the TF arguments."""
    rank = case["rank"]
    weight, kwargs, keep = _documented(backend)["to_torch"](
        x.shape, w, case["output_shape"], case["strides"], case["padding"], case["dilations"])
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()} == case["torch"]
    assert weight.shape == (w.shape[-1], w.shape[-2], *w.shape[:rank])
    y = numba_convt.conv_transpose(x, w, case["output_shape"], case["strides"], case["padding"],
                                   ("NCW", "NCHW", "NCDHW")[rank - 1], case["dilations"], backend=backend)
    assert y.shape == expected[keep].shape
    assert_close(y, expected[keep], x.dtype)


def _assert_no_tf_size(case, x, w):
    rank = case["rank"]
    filters = w if case["transpose_kernel"] else w.swapaxes(-1, -2)
    dilations = case["rhs_dilation"]
    crops = case["padding"] if case["use_consistent_padding"] else [
        [(k - 1) * d - lo, (k - 1) * d - hi] for (lo, hi), k, d in zip(case["padding"], filters.shape[:rank], dilations)]
    assert any(
        tf_consistent_sizes(n, k, s, d, "EXPLICIT", max(c[0], 0), max(c[1], 0)) == []
        for n, k, s, d, c in zip(x.shape[1:-1], filters.shape[:rank], case["strides"], dilations, crops)
    )


@pytest.mark.parametrize("i", range(len(REFUSED)), ids=[f"{r['peer']}-{r['rank']}d-refused-{i}" for i, r in
                                                          enumerate(REFUSED)])
def test_what_the_peer_refused_is_refused_or_empty_here(i):
    case = REFUSED[i]
    x, w = np.zeros(case["input_shape"]), np.zeros(case["weight_shape"])
    mapping = _documented("numpy")[f"from_{case['peer']}_nd"]
    if case["peer"] == "keras":  # SAME, an even kernel, output_padding 0: TF's size rule refuses it
        with pytest.raises(ValueError, match="output_padding"):
            mapping(x, w, **_peer_args(case))
        return
    # PyTorch refuses an output size below 1, by its formula (computed here);
    # TF's rule then has no size (ValueError) or an empty one.
    rank = case["rank"]
    sizes = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, op, d in zip(
        x.shape[2:], w.shape[2:], *(_axes(case[key], rank) for key in ("stride", "padding", "output_padding",
                                                                        "dilation")))]
    assert min(sizes) < 1
    try:
        y = mapping(x, w, **_peer_args(case))
    except ValueError as error:
        assert "consistent output" in str(error)
    else:
        assert y.size == 0


def test_recorded_cases_cover_the_documented_mappings():
    by_peer = {peer: [c for c in CASES if c["peer"] == peer] for peer in ("torch", "jax", "keras", "torch_tf")}
    assert all({c["rank"] for c in cases} == {1, 3} for cases in by_peer.values())
    torch_cases = by_peer["torch"]
    assert {c["groups"] for c in torch_cases} >= {1, 2, 3}
    assert any(max(_axes(c["dilation"], c["rank"])) > 1 for c in torch_cases)
    assert any(op >= s for c in torch_cases for op, s in zip(c["output_padding"], _axes(c["stride"], c["rank"])))
    kinds = {(c["padding"] if isinstance(c["padding"], str) else "explicit", c["transpose_kernel"])
             for c in by_peer["jax"]}
    assert kinds >= {(kind, flag) for kind in ("SAME", "VALID", "explicit") for flag in (True, False)}
    assert {c["use_consistent_padding"] for c in by_peer["jax"] if not isinstance(c["padding"], str)} == {True, False}
    assert {(c["padding"], c["output_padding"] is None) for c in by_peer["keras"]} == {
        (p, none) for p in ("same", "valid") for none in (True, False)}
    assert {r["peer"] for r in REFUSED} == {"torch", "keras"}
    # to_torch: SAME with an odd total pad (the extra element dropped) and an
    # even one, SAME above (I - 1) * s + E, VALID with extra elements.
    totals = []
    for c in by_peer["torch_tf"]:
        n = c["rank"]
        for i, k, o, s, d in zip(_DATA[f"x{CASES.index(c)}"].shape[2:], _DATA[f"w{CASES.index(c)}"].shape[:n],
                                 c["output_shape"][2:], c["strides"], c["dilations"]):
            totals.append((c["padding"], (i - 1) * s + (k - 1) * d + 1 - o))
    assert {("SAME", "odd"), ("SAME", "even"), ("SAME", "negative"), ("VALID", "negative")} <= {
        (kind, "negative" if t < 0 else "odd" if t % 2 else "even") for kind, t in totals}
