"""The cpu backend's 1-D plans (``backends/cpu/_nd.py``) against the numpy reference."""

import numpy as np
import pytest

import numba_convt
from numba_convt.backends import cpu
from numba_convt._normalize import normalize

# (input width, kernel, stride, dilation, C_in, C_out, padding NWC): long single signals, cut into segments
SIGNALS = [
    (9000, 4, 2, 1, 1, 1, "SAME"),
    (9001, 5, 3, 2, 3, 2, "VALID"),
    (12000, 7, 1, 1, 16, 16, "SAME"),  # stride 1, the register tile
    (8193, 25, 4, 1, 32, 16, "SAME"),
    (20000, 2, 2, 1, 2, 3, [[0, 0], [5, 3], [0, 0]]),
    (3000, 9, 8, 1, 1, 1, "SAME"),  # windows longer than the stride between them
]


@pytest.mark.parametrize("layer", SIGNALS)
@pytest.mark.parametrize("layout", ["NWC", "NCW"])
@pytest.mark.parametrize("size", ["smallest", "largest"])
def test_long_1d_signals_in_segments_match_the_reference(layer, layout, size):
    width, k, stride, dilation, c_in, c_out, padding = layer
    rng = np.random.default_rng(5)
    x_shape = (1, width, c_in) if layout == "NWC" else (1, c_in, width)
    if not isinstance(padding, str) and layout == "NCW":
        padding = [padding[0], padding[2], padding[1]]
    sizes = numba_convt.conv_transpose_output_sizes(x_shape, (k, c_out, c_in), stride, padding, layout, dilation)[0]
    out_w = sizes.start if size == "smallest" else sizes.stop - 1
    x, f = rng.standard_normal(x_shape), rng.standard_normal((k, c_out, c_in))
    args = ([1, out_w, c_out] if layout == "NWC" else [1, c_out, out_w], stride, padding, layout, dilation)
    assert cpu.plan(normalize(x, f, *args, rank=1)).segments > 1, "the layer must run in segments"
    expected = numba_convt.conv1d_transpose(x, f, *args, backend="numpy")
    np.testing.assert_allclose(numba_convt.conv1d_transpose(x, f, *args, backend="cpu"), expected, rtol=0, atol=1e-12)

