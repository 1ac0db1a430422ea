"""``conv_transpose_output_shape`` and ``conv_transpose_output_sizes`` for 1 and 3 spatial dimensions.

Expected sizes come from the brute force of TF's size rule (``common.py``) and
Keras's and PyTorch's documented formulas written here, never from the
package's own size math. 3-D cases give each axis different parameters, so a
mixed-up axis shows.
"""

import itertools

import numpy as np
import pytest
from common import tf_consistent_sizes
from common_nd import FUNCTIONS
from test_output_shape import EXPLICIT_PADS, GRID, keras_size, torch_size

from numba_convt import conv_transpose, conv_transpose_output_shape, conv_transpose_output_sizes

# 3-D: (in, kernel, stride, dilation) of depth, height, width, each different
AXES_3D = [((2, 3, 2, 1), (3, 2, 1, 2), (4, 1, 3, 1)), ((0, 2, 3, 1), (1, 3, 2, 2), (3, 4, 1, 1)),
           ((1, 4, 3, 2), (2, 1, 2, 1), (0, 3, 1, 1))]


def _cases(rank):
    """Per-axis (in, kernel, stride, dilation) tuples: every GRID point for 1-D, AXES_3D for 3-D."""
    return [(point,) for point in GRID] if rank == 1 else AXES_3D


def _pairs(rank, first, pairs):
    outer = [[0, 0], [0, 0]]
    return [outer[0], outer[1], *pairs] if first else [outer[0], *pairs, outer[1]]


def _call(rank, axes, padding, first=False, output_padding=None, groups=1):
    in_sizes, kernel, strides, dilations = zip(*axes)
    input_shape = (2, 3 * groups, *in_sizes) if first else (2, *in_sizes, 3 * groups)
    formats = {1: ("NWC", "NCW"), 3: ("NDHWC", "NCDHW")}[rank]
    return (input_shape, (*kernel, 5, 3 * groups), list(strides), padding, formats[first], list(dilations),
            output_padding)


@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("padding", ["SAME", "VALID", "EXPLICIT"])
def test_sizes_match_tf_brute_force(rank, padding):
    for axes, (before, after) in itertools.product(_cases(rank), EXPLICIT_PADS if padding == "EXPLICIT" else [(0, 0)]):
        arg = _pairs(rank, False, [[before, after]] * rank) if padding == "EXPLICIT" else padding
        *args, _ = _call(rank, axes, arg)
        expected = [tf_consistent_sizes(*axis, padding, before, after) for axis in axes]
        assert [list(sizes) for sizes in conv_transpose_output_sizes(*args)] == expected


@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("output_padding", [None, 0, 1, 2])
def test_same_and_valid_follow_keras(rank, padding, output_padding):
    for axes in _cases(rank):
        expected = [keras_size(*axis, padding, output_padding) for axis in axes]
        legal = [e in tf_consistent_sizes(*axis, padding) for e, axis in zip(expected, axes)]
        args = _call(rank, axes, padding, output_padding=output_padding)
        if all(legal):
            assert conv_transpose_output_shape(*args) == (2, *expected, 5)
        else:
            name = ("depth", "height", "width")[3 - rank + legal.index(False)]
            with pytest.raises(ValueError, match=f"output {name} {expected[legal.index(False)]}"):
                conv_transpose_output_shape(*args)
        if output_padding is None:  # Keras's defaults are always accepted
            assert all(legal)


@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("output_padding", [None, 0, 1])
def test_explicit_padding_follows_pytorch(rank, output_padding):
    for axes, (before, after) in itertools.product(_cases(rank), EXPLICIT_PADS):
        expected = [torch_size(*axis, before, after, output_padding or 0) for axis in axes]
        legal = all(e in tf_consistent_sizes(*axis, "EXPLICIT", before, after) for e, axis in zip(expected, axes))
        for first in (False, True):
            args = _call(rank, axes, _pairs(rank, first, [[before, after]] * rank), first, output_padding)
            if legal:
                assert conv_transpose_output_shape(*args) == ((2, 5, *expected) if first else (2, *expected, 5))
            else:
                with pytest.raises(ValueError, match=r"consistent output \w+s are"):
                    conv_transpose_output_shape(*args)


@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("first", [False, True])
def test_every_returned_size_is_accepted(rank, first):
    for axes, padding in itertools.product(_cases(rank)[::3] if rank == 1 else _cases(rank), ["SAME", "VALID"]):
        args = _call(rank, axes, padding, first, groups=2)
        input_shape, filters_shape, strides, _, data_format, dilations, _ = args
        x, f = np.ones(input_shape), np.ones(filters_shape)
        shape = conv_transpose_output_shape(*args[:-1], groups=2)
        assert FUNCTIONS[rank](x, f, shape, strides, padding, data_format, dilations, backend="numpy").shape == shape
        sizes = conv_transpose_output_sizes(*args[:-1])
        for spatial in itertools.product(*({s[0], s[-1]} for s in sizes)):  # smallest and largest per axis
            full = (2, 10, *spatial) if first else (2, *spatial, 10)
            assert conv_transpose(x, f, full, strides, padding, data_format, dilations, backend="numpy").shape == full


def test_keras_and_pytorch_examples():
    # Keras Conv1DTranspose(8, 3, strides=2, padding="same", output_padding=1) on 50 steps: (50-1)*2 + 3 - 2 + 1
    assert conv_transpose_output_shape((1, 50, 2), (3, 8, 2), 2, output_padding=1) == (1, 100, 8)
    # PyTorch ConvTranspose3d(4, 6, (3, 2, 1), stride=(2, 1, 3), padding=(1, 0, 0), output_padding=(1, 0, 2))
    shape = conv_transpose_output_shape((1, 4, 5, 6, 7), (3, 2, 1, 6, 4), [2, 1, 3],
                                        [[0, 0], [0, 0], [1, 1], [0, 0], [0, 0]], "NCDHW", output_padding=[1, 0, 2])
    assert shape == (1, 6, (5 - 1) * 2 - 2 + 3 + 1, (6 - 1) * 1 + 2, (7 - 1) * 3 + 1 + 2)
    # output_padding in data_format order (rank + 2 values, 0 for batch and channels)
    assert conv_transpose_output_shape((1, 4, 2), (3, 1, 2), 2, "VALID", output_padding=[0, 1, 0]) == (1, 10, 1)


@pytest.mark.parametrize("call, error, pattern", [
    (dict(input_shape=(4, 3)), ValueError, r"input_shape must have 3, 4 or 5 values.*\[4, 3\]"),
    (dict(input_shape=(1, 2, 2, 2, 2, 3)), ValueError, r"input_shape must have 3, 4 or 5 values"),
    (dict(input_shape=7), TypeError, r"input_shape.*7"),
    (dict(input_shape=(1, -4, 3)), ValueError, r"input_shape=\(1, -4, 3\) entries must be >= 0"),
    (dict(filters_shape=(3, 3, 2, 3)), ValueError, r"filters_shape must be 3-D; got 4-D"),
    (dict(filters_shape=(0, 2, 3)), ValueError, r"filters_shape must have non-zero width.*\(0, 2, 3\)"),
    (dict(filters_shape=(3, 2, 5)), ValueError, r"filters\.shape\[2\] \(input channels\) = 5 must equal.* 3"),
    (dict(groups=2), ValueError, r"groups=2 must be a positive divisor of the input channels 3"),
    (dict(data_format="NHWC"), ValueError, r"data_format must be 'NWC' or 'NCW' for 1-D; got 'NHWC'"),
    (dict(strides=[2, 2]), ValueError, r"strides should be of length 1 or 3"),
    (dict(padding=[[0, 0], [1, 1]]), ValueError, r"padding.*size 3"),
    (dict(output_padding=[1, 1]), ValueError, r"output_padding should be of length 1 or 3"),
    (dict(output_padding=[1, 1, 0]), ValueError, r"output_padding=\[1, 1, 0\] must be 0 in the batch and channel"),
    (dict(output_padding=-1), ValueError, r"output_padding=\[-1\]"),
    (dict(output_padding=2), ValueError, r"output width 11 from output_padding 2 .* are 9\.\.10"),
])
def test_helper_arguments_are_checked(call, error, pattern):
    args = dict(input_shape=(1, 4, 3), filters_shape=(3, 2, 3), strides=2, padding="VALID") | call
    with pytest.raises(error, match=pattern):
        conv_transpose_output_shape(**args)
    if not {"output_padding", "groups", "filters_shape"} & set(call) or "-D" in pattern:  # sizes ignore channels
        with pytest.raises(error, match=pattern):
            conv_transpose_output_sizes(**args)


def test_3d_argument_errors_name_the_rank():
    args = dict(input_shape=(1, 2, 3, 4, 3), filters_shape=(2, 2, 2, 5, 3), strides=2)
    with pytest.raises(ValueError, match=r"strides should be of length 1, 3 or 5"):
        conv_transpose_output_shape(**dict(args, strides=[2, 2]))
    with pytest.raises(ValueError, match=r"output_padding should be of length 1, 3 or 5"):
        conv_transpose_output_shape(**args, output_padding=[1, 1])
    with pytest.raises(ValueError, match=r"filters_shape must be 5-D"):
        conv_transpose_output_shape(**dict(args, filters_shape=(2, 2, 5, 3)))
    with pytest.raises(ValueError, match=r"data_format must be 'NDHWC' or 'NCDHW'.*'NCHW'"):
        conv_transpose_output_shape(**args, data_format="NCHW")
