"""``conv2d_transpose_output_shape`` and ``conv2d_transpose_output_sizes``.

Expected sizes come from closed forms written here (Keras's and PyTorch's
documented formulas) and from the brute force of TF's size rule in
``common.py``, never from the package's own size math.
"""

import itertools

import numpy as np
import pytest
from common import tf_consistent_sizes

from numba_convt import conv2d_transpose, conv2d_transpose_output_shape, conv2d_transpose_output_sizes

GRID = list(itertools.product(range(5), range(1, 5), range(1, 4), range(1, 3)))  # in, kernel, stride, dilation
EXPLICIT_PADS = [(0, 0), (1, 0), (0, 2), (2, 1), (3, 3)]


def keras_size(in_size, kernel, stride, dilation, padding, output_padding):
    """keras.src.backend.common.backend_utils.compute_conv_transpose_output_length."""
    kernel = kernel + (kernel - 1) * (dilation - 1)
    if output_padding is None:
        return in_size * stride + max(kernel - stride, 0) if padding == "VALID" else in_size * stride
    pad = kernel // 2 if padding == "SAME" else 0
    return (in_size - 1) * stride + kernel - 2 * pad + output_padding


def torch_size(in_size, kernel, stride, dilation, before, after, output_padding):
    """torch.nn.ConvTranspose2d's documented H_out, with the two pads apart."""
    return (in_size - 1) * stride - before - after + dilation * (kernel - 1) + output_padding + 1


def _shape(in_size, kernel, stride, dilation, padding, output_padding=None, data_format="NHWC"):
    """The helper on a square problem: 2 images, 3 input and 5 output channels."""
    input_shape = (2, in_size, in_size, 3) if data_format == "NHWC" else (2, 3, in_size, in_size)
    return conv2d_transpose_output_shape(input_shape, (kernel, kernel, 5, 3), stride, padding, data_format,
                                         dilation, output_padding=output_padding)


def _explicit(before, after, data_format="NHWC"):
    spatial = [[before, after]] * 2
    return [[0, 0], *spatial, [0, 0]] if data_format == "NHWC" else [[0, 0], [0, 0], *spatial]


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("output_padding", [None, 0, 1, 2])
def test_same_and_valid_follow_keras(padding, output_padding):
    for in_size, kernel, stride, dilation in GRID:
        expected = keras_size(in_size, kernel, stride, dilation, padding, output_padding)
        if expected in tf_consistent_sizes(in_size, kernel, stride, dilation, padding):
            assert _shape(in_size, kernel, stride, dilation, padding, output_padding) == (2, expected, expected, 5)
        else:
            with pytest.raises(ValueError, match=f"output height {expected}"):
                _shape(in_size, kernel, stride, dilation, padding, output_padding)


def test_keras_defaults_are_always_accepted():
    """Without output_padding, SAME and VALID never fail (for any input size)."""
    for (in_size, kernel, stride, dilation), padding in itertools.product(GRID, ["SAME", "VALID"]):
        expected = keras_size(in_size, kernel, stride, dilation, padding, None)
        assert expected in tf_consistent_sizes(in_size, kernel, stride, dilation, padding)
        assert _shape(in_size, kernel, stride, dilation, padding)[1] == expected


@pytest.mark.parametrize("output_padding", [None, 0, 1, 2])
def test_explicit_padding_follows_pytorch(output_padding):
    for (in_size, kernel, stride, dilation), (before, after) in itertools.product(GRID, EXPLICIT_PADS):
        expected = torch_size(in_size, kernel, stride, dilation, before, after, output_padding or 0)
        if expected in tf_consistent_sizes(in_size, kernel, stride, dilation, "EXPLICIT", before, after):
            got = _shape(in_size, kernel, stride, dilation, _explicit(before, after), output_padding)
            assert got == (2, expected, expected, 5)
        else:
            with pytest.raises(ValueError, match="consistent output heights are"):
                _shape(in_size, kernel, stride, dilation, _explicit(before, after), output_padding)


def test_output_padding_below_stride_is_accepted():
    """PyTorch's and Keras's rule output_padding < stride, for in >= 1 (SAME: odd E)."""
    for (in_size, kernel, stride, dilation), (before, after) in itertools.product(GRID, EXPLICIT_PADS):
        if in_size == 0 or torch_size(in_size, kernel, stride, dilation, before, after, 0) < 0:
            continue
        for output_padding in range(stride):
            _shape(in_size, kernel, stride, dilation, _explicit(before, after), output_padding)
            _shape(in_size, kernel, stride, dilation, "VALID", output_padding)
            if ((kernel - 1) * dilation + 1) % 2:
                _shape(in_size, kernel, stride, dilation, "SAME", output_padding)


@pytest.mark.parametrize("padding", ["SAME", "VALID", "EXPLICIT"])
def test_sizes_match_tf_brute_force(padding):
    pads = EXPLICIT_PADS if padding == "EXPLICIT" else [(0, 0)]
    for (in_size, kernel, stride, dilation), (before, after) in itertools.product(GRID, pads):
        arg = _explicit(before, after) if padding == "EXPLICIT" else padding
        heights, widths = conv2d_transpose_output_sizes(
            (1, in_size, in_size + 1, 2), (kernel, kernel + 1, 1, 2), stride, arg, dilations=dilation)
        assert list(heights) == tf_consistent_sizes(in_size, kernel, stride, dilation, padding, before, after)
        assert list(widths) == tf_consistent_sizes(in_size + 1, kernel + 1, stride, dilation, padding, before, after)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_every_returned_size_is_accepted_by_conv2d_transpose(data_format):
    x_shape = (1, 3, 2, 4) if data_format == "NHWC" else (1, 4, 3, 2)
    for padding, strides, dilations, kernel in itertools.product(
        ["SAME", "VALID", _explicit(1, 1, data_format)], [1, [2, 3]], [1, [1, 2]], [(2, 3), (3, 2)]
    ):
        args = (strides, padding, data_format, dilations)
        x, f = np.ones(x_shape), np.ones((*kernel, 2, 4))
        shape = conv2d_transpose_output_shape(x.shape, f.shape, *args, groups=2)
        assert conv2d_transpose(x, f, shape, *args, backend="numpy").shape == shape
        heights, widths = conv2d_transpose_output_sizes(x.shape, f.shape, *args)
        for height, width in itertools.product(heights, widths):
            conv2d_transpose(x, f, [height, width], *args, backend="numpy")


def test_layout_channels_and_argument_forms():
    assert conv2d_transpose_output_shape((2, 4, 5, 6), (3, 3, 7, 6), 2) == (2, 8, 10, 7)
    assert conv2d_transpose_output_shape((2, 6, 4, 5), (3, 3, 7, 6), 2, data_format="NCHW") == (2, 7, 8, 10)
    assert conv2d_transpose_output_shape((2, 4, 5, 6), (3, 3, 7, 6), 2, groups=3) == (2, 8, 10, 21)
    assert conv2d_transpose_output_shape(np.array([2, 4, 5, 6]), [3, 3, 7, 6], [1, 2, 3, 1], "VALID") == (2, 9, 15, 7)
    per_dim = conv2d_transpose_output_shape((1, 4, 4, 1), (3, 3, 1, 1), [2, 3], "VALID", output_padding=[1, 2])
    assert per_dim == (1, 10, 14, 1)
    four = conv2d_transpose_output_shape((1, 1, 4, 4), (3, 3, 1, 1), 2, "VALID", "NCHW", output_padding=[0, 0, 1, 1])
    assert four == (1, 1, 10, 10)
    # Keras, SAME with a 4x4 kernel: output_padding=1 gives (in - 1) * stride + 1; 0 is refused.
    assert _shape(5, 4, 2, 1, "same", 1) == (2, 9, 9, 5)
    with pytest.raises(ValueError, match=r"output height 8 from output_padding 0 .* are 9\.\.10"):
        _shape(5, 4, 2, 1, "SAME", 0)


def _messages(call):
    try:
        call()
    except (TypeError, ValueError) as error:
        return type(error), str(error)
    raise AssertionError("no error")


@pytest.mark.parametrize("bad", [
    dict(strides=0), dict(strides=[1, 2, 3]), dict(strides=[2, 2, 2, 2]), dict(strides=True), dict(strides="2"),
    dict(dilations=0), dict(dilations=[1.5, 1]), dict(padding="FULL"), dict(padding="EXPLICIT"), dict(padding=3),
    dict(padding=[[0, 0], [1, 1], [1, 1]]), dict(padding=[[0, 1], [1, 1], [1, 1], [0, 0]]),
    dict(padding=[[0, 0], [-1, 1], [1, 1], [0, 0]]), dict(data_format="NCWH"), dict(data_format=1),
])
def test_shared_arguments_fail_as_in_conv2d_transpose(bad):
    args = dict(strides=2, padding="SAME", data_format="NHWC", dilations=None) | bad
    x, f = np.ones((1, 4, 4, 3)), np.ones((3, 3, 2, 3))
    expected = _messages(lambda: conv2d_transpose(x, f, [1, 8, 8, 2], **args))
    assert _messages(lambda: conv2d_transpose_output_shape(x.shape, f.shape, **args)) == expected
    assert _messages(lambda: conv2d_transpose_output_sizes(x.shape, f.shape, **args)) == expected


@pytest.mark.parametrize("call, error, pattern", [
    (dict(input_shape=(4, 4, 3)), ValueError, r"input_shape must be 4-D.*\(4, 4, 3\)"),
    (dict(input_shape=(1, -4, 4, 3)), ValueError, r"input_shape.*-4"),
    (dict(input_shape=(1, 4.0, 4, 3)), TypeError, r"input_shape.*4\.0"),
    (dict(input_shape=np.zeros((1, 4), int)), ValueError, r"input_shape must be 1-D"),
    (dict(input_shape=7), TypeError, r"input_shape.*7"),
    (dict(filters_shape=(3, 3, 2)), ValueError, r"filters_shape must be 4-D"),
    (dict(filters_shape=(0, 3, 2, 3)), ValueError, r"filters_shape.*\(0, 3, 2, 3\)"),
    (dict(filters_shape=(3, 3, 2, 5)), ValueError, r"filters.*5.*3"),
    (dict(groups=2), ValueError, r"groups=2.*input channels 3"),
    (dict(groups=0), ValueError, r"groups=0"),
    (dict(groups=1.0), TypeError, r"groups.*1\.0"),
    (dict(output_padding=-1), ValueError, r"output_padding=\[-1, -1\]"),
    (dict(output_padding=[1, 1, 1]), ValueError, r"output_padding.*length 1, 2 or 4"),
    (dict(output_padding=[1, 1, 1, 1]), ValueError, r"output_padding=\[1, 1, 1, 1\] must be 0 in the batch"),
    (dict(output_padding="1"), TypeError, r"output_padding.*'1'"),
    (dict(output_padding=2), ValueError, r"output height 11 from output_padding 2 .* are 9\.\.10"),
    (dict(output_padding=[0, 2]), ValueError, r"output width 11 from output_padding 2"),
    (dict(padding=[[0, 0], [12, 0], [0, 0], [0, 0]]), ValueError, r"output height -3 .* are none"),
])
def test_helper_arguments_are_checked(call, error, pattern):
    args = dict(input_shape=(1, 4, 4, 3), filters_shape=(3, 3, 2, 3), strides=2, padding="VALID") | call
    with pytest.raises(error, match=pattern):
        conv2d_transpose_output_shape(**args)
