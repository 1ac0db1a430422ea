"""Scratch kept per thread (``numba_convt/_scratch.py``) never leaks into results."""

import threading

import numpy as np
import pytest

import numba_convt
from numba_convt import _scratch

# calls whose result goes through kept scratch: channels-first copies, a half dtype, 3-D shares
CALLS = [
    (numba_convt.conv2d_transpose, (1, 3, 8, 8), (3, 3, 1, 3), [1, 1, 16, 16], "NCHW", np.float32),  # 1 channel
    (numba_convt.conv2d_transpose, (2, 4, 6, 6), (3, 3, 5, 4), [2, 5, 12, 12], "NCHW", np.float64),
    (numba_convt.conv2d_transpose, (1, 8, 8, 3), (3, 3, 1, 3), [1, 16, 16, 1], "NHWC", np.float16),
    (numba_convt.conv3d_transpose, (1, 2, 4, 4, 4), (3, 3, 3, 1, 2), [1, 1, 8, 8, 8], "NCDHW", np.float32),
    (numba_convt.conv1d_transpose, (2, 3, 40), (4, 1, 3), [2, 1, 80], "NCW", np.float32),
]


@pytest.mark.parametrize("function, x_shape, f_shape, out_shape, layout, dtype", CALLS)
def test_results_do_not_share_the_kept_scratch(function, x_shape, f_shape, out_shape, layout, dtype):
    rng = np.random.default_rng(2)
    x, f = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(f_shape).astype(dtype)
    first = function(x, f, out_shape, 2, data_format=layout)
    kept = first.copy()
    second = function(3 * x, f, out_shape, 2, data_format=layout)  # reuses this thread's scratch
    assert np.array_equal(first, kept), "a later call changed an earlier result"
    assert not np.shares_memory(first, second)
    np.testing.assert_allclose(second, function(3 * x, f, out_shape, 2, data_format=layout, backend="numpy"),
                               rtol=1e-2 if dtype == np.float16 else 1e-5, atol=1e-2 if dtype == np.float16 else 1e-5)


def test_threads_keep_their_own_scratch():
    seen = {}

    def use(name):
        seen[name] = _scratch.scratch("test", (4, 4), np.float64)
        seen[name][...] = len(name)

    threads = [threading.Thread(target=use, args=(name,)) for name in ("a", "bb")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not np.shares_memory(seen["a"], seen["bb"])
    assert (seen["a"] == 1).all() and (seen["bb"] == 2).all()


def test_large_scratch_is_not_kept():
    big = _scratch.scratch("test-large", (_scratch.KEPT_BYTES // 8 + 1,), np.float64)
    assert big.base is None and "test-large" not in _scratch._kept.__dict__


def test_empty_scratch_has_the_strides_of_a_new_array():
    """numba.cuda's copies compare strides: an empty view of a kept buffer would have zeros."""
    for shape in [(0, 3, 4, 5), (2, 0, 3, 1)]:
        assert _scratch.scratch("test-empty", shape, np.float32).strides == np.empty(shape, np.float32).strides
