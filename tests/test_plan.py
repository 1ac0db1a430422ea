"""Plans (``numba_convt.plan``) and the plans ``conv2d_transpose`` keeps for
repeated signatures: the same results and the same errors as a fresh call."""

import threading

import numpy as np
import pytest
from common import BACKENDS, assert_close

import numba_convt
from numba_convt import _plan

LAYERS = {  # input shape, filters shape, then conv2d_transpose's arguments
    "nhwc": ((2, 5, 4, 6), (3, 3, 4, 6), [2, 10, 8, 4], 2, "SAME", "NHWC", None),
    "nchw-groups": ((2, 6, 5, 4), (3, 2, 2, 6), [2, 4, 9, 7], [2, 2], "SAME", "NCHW", [1, 2]),
    "explicit": ((1, 4, 4, 16), (2, 2, 16, 16), [1, 8, 7, 16], 2, [[0, 0], [1, 0], [0, 1], [0, 0]], "NHWC", 1),
}


def _arrays(layer, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    input_shape, filters_shape = LAYERS[layer][:2]
    return rng.uniform(-1, 1, input_shape).astype(dtype), rng.uniform(-1, 1, filters_shape).astype(dtype)


def _reference(layer, x, f):
    return numba_convt.conv2d_transpose(x, f, *LAYERS[layer][2:], backend="numpy")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_plan_runs_like_conv2d_transpose(layer, backend):
    p = numba_convt.plan(*LAYERS[layer], backend=backend)
    for seed in range(2):  # a plan runs many times
        x, f = _arrays(layer, seed=seed)
        expected = _reference(layer, x, f)
        assert_close(p(x, f), expected, np.float32)
        out = np.full(p.output_shape, np.nan, np.float32)
        assert p(x, f, out=out) is out
        assert_close(out, expected, np.float32)
        assert_close(p.set_filters(f)(x), expected, np.float32)


def test_set_filters_keeps_a_copy():
    x, f = _arrays("nhwc")
    p = numba_convt.plan(*LAYERS["nhwc"]).set_filters(f)
    expected = _reference("nhwc", x, f)
    f[:] = 0
    assert_close(p(x), expected, np.float32)


def test_plan_describes_itself():
    p = numba_convt.plan(*LAYERS["nchw-groups"], dtype="float16", filters_dtype=np.float64, backend="numpy")
    assert (p.input_shape, p.filters_shape, p.output_shape) == ((2, 6, 5, 4), (3, 2, 2, 6), (2, 4, 9, 7))
    assert (p.input_dtype, p.filters_dtype, p.dtype) == (np.float16, np.float64, np.float64)
    assert p.spec.groups == 2 and p.backend == "numpy"
    assert "numpy" in repr(p) and "(2, 4, 9, 7)" in repr(p)


@pytest.mark.parametrize(("what", "shape", "dtype"), [
    ("input", (2, 5, 4, 7), np.float32), ("input", (2, 5, 4, 6), np.float64), ("filters", (3, 3, 4, 5), np.float32),
])
def test_plan_refuses_other_arrays(what, shape, dtype):
    p = numba_convt.plan(*LAYERS["nhwc"])
    arrays = dict(zip(("input", "filters"), _arrays("nhwc")))
    arrays[what] = np.zeros(shape, dtype)
    with pytest.raises(ValueError, match=f"{what} has shape .* this plan takes"):
        p(arrays["input"], arrays["filters"])


def test_plan_without_filters_says_how_to_give_them():
    with pytest.raises(TypeError, match="set_filters"):
        numba_convt.plan(*LAYERS["nhwc"])(_arrays("nhwc")[0])


@pytest.mark.parametrize(("change", "error"), [
    (dict(output_shape=[2, 11, 8, 4]), ValueError),
    (dict(strides=True), TypeError),
    (dict(padding="FULL"), ValueError),
    (dict(filters_shape=(3, 3, 4, 5)), ValueError),
    (dict(input_shape=(2, 5, -4, 6)), ValueError),
    (dict(input_shape=(2, 5.0, 4, 6)), TypeError),
    (dict(dtype="float8"), TypeError),
    (dict(dtype=np.uint8), TypeError),
    (dict(backend="nonesuch"), ValueError),
])
def test_plan_refuses_what_conv2d_transpose_refuses(change, error):
    names = ("input_shape", "filters_shape", "output_shape", "strides", "padding", "data_format", "dilations")
    kwargs = {**dict(zip(names, LAYERS["nhwc"])), **change}
    with pytest.raises(error) as refused:
        numba_convt.plan(**kwargs)
    assert len(str(refused.value)) > 20  # a message, not a bare name
    first = next(iter(change))
    if first in ("output_shape", "strides", "padding", "filters_shape"):  # the same message as the call's
        x, f = np.zeros(kwargs["input_shape"], np.float32), np.zeros(kwargs["filters_shape"], np.float32)
        with pytest.raises(error) as called:
            numba_convt.conv2d_transpose(x, f, *[kwargs[name] for name in names[2:]])
        assert str(called.value) == str(refused.value)


@pytest.mark.parametrize("bad", [
    dict(strides=True), dict(strides=[True, True]), dict(strides=np.True_), dict(dilations=True),
    dict(output_shape=[1, 4, 4, 2.0]), dict(output_shape=[True, 4, 4, 2]),
])
def test_a_cached_signature_does_not_take_arguments_it_would_refuse(bad):
    """Each bad value equals a good one (``True == 1``, ``2.0 == 2``): the key tells them apart."""
    x, f = np.ones((1, 4, 4, 3), np.float32), np.ones((3, 3, 2, 3), np.float32)
    args = dict(output_shape=[1, 4, 4, 2], strides=1, dilations=1)
    good = numba_convt.conv2d_transpose(x, f, **args)  # now cached
    with pytest.raises(TypeError):
        numba_convt.conv2d_transpose(x, f, **{**args, **bad})
    assert_close(numba_convt.conv2d_transpose(x, f, **args), good, np.float32)


def test_a_cached_signature_follows_a_replaced_backend():
    x, f = _arrays("nhwc")
    numba_convt.register_backend("plan-test", lambda spec, x, f, out: out.fill(1), overwrite=True)
    assert (numba_convt.conv2d_transpose(x, f, *LAYERS["nhwc"][2:], backend="plan-test") == 1).all()
    numba_convt.register_backend("plan-test", lambda spec, x, f, out: out.fill(2), overwrite=True)
    assert (numba_convt.conv2d_transpose(x, f, *LAYERS["nhwc"][2:], backend="plan-test") == 2).all()


def test_a_cached_signature_checks_the_memory_bound_for_copies(monkeypatch):
    """Contiguity is in the key: a strided input is copied, which the bound counts."""
    x, f = _arrays("nhwc")
    numba_convt.conv2d_transpose(x, f, *LAYERS["nhwc"][2:])

    def check_size(spec, input, filters):
        if not input.flags.c_contiguous:
            raise ValueError("counted the copy")

    monkeypatch.setattr(_plan, "check_size", check_size)
    strided = np.repeat(x, 2, axis=0)[::2]
    with pytest.raises(ValueError, match="counted the copy"):
        numba_convt.conv2d_transpose(strided, f, *LAYERS["nhwc"][2:])


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(_plan, "_CACHE_SIZE", 4)
    monkeypatch.setattr(_plan, "_cache", {})
    x = np.ones((1, 1, 1, 1))
    for size in range(1, 9):
        numba_convt.conv2d_transpose(x, np.ones((size, 1, 1, 1)), [1, size, 1, 1], 1, "VALID", backend="numpy")
    assert len(_plan._cache) == 4


def test_a_shared_plan_runs_in_threads():
    p = numba_convt.plan(*LAYERS["explicit"])
    inputs = [_arrays("explicit", seed=seed) for seed in range(8)]
    results = [None] * len(inputs)

    def work(i):
        for _ in range(5):
            results[i] = p(*inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (x, f), result in zip(inputs, results):
        assert_close(result, _reference("explicit", x, f), np.float32)
