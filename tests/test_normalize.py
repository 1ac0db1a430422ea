"""Output-size rules of ``_normalize`` against a brute force of TF's forward rule."""

import itertools

import pytest
from common import tf_forward_size

import numba_convt
from numba_convt._normalize import legal_output_sizes


@pytest.mark.parametrize("padding", ["SAME", "VALID", "EXPLICIT"])
def test_legal_output_sizes_match_tf_forward_rule(padding):
    pads = [(0, 0)] if padding != "EXPLICIT" else list(itertools.product(range(4), repeat=2))
    for in_size, kernel, stride, dilation, (before, after) in itertools.product(
        range(6), range(1, 6), range(1, 5), range(1, 4), pads
    ):
        expected = [
            out for out in range(60)
            if tf_forward_size(out, kernel, stride, dilation, padding, before, after) == in_size
        ]
        legal = legal_output_sizes(in_size, kernel, stride, dilation, padding, before, after)
        assert list(legal) == expected, (in_size, kernel, stride, dilation, padding, before, after)


def test_spec_records_same_padding_split():
    spec_holder = []
    numba_convt.register_backend("record", lambda spec, *a: spec_holder.append(spec), overwrite=True)
    numba_convt.conv2d_transpose([[[[1.0]]] * 6] * 1, [[[[1.0]]]] * 3, [1, 12, 1, 1], [2, 1], backend="record")
    spec = spec_holder[0]
    # Spec section 2's worked example: H_in=6, S=2, K=3, H_out=12 -> pads 0 top, 1 bottom.
    assert (spec.in_h, spec.k_h, spec.out_h, spec.pad_top, spec.pad_bottom) == (6, 3, 12, 0, 1)
