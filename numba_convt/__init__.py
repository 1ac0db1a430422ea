"""TensorFlow's ``tf.nn.conv2d_transpose`` on NumPy arrays, compiled with Numba.

Same arguments, same size rules, same numbers as TensorFlow 2.21, with only
``numpy`` and ``numba`` as dependencies; plus NCHW, groups and more dtypes on
every backend, ``out=``, and a choice of backends.

Public API
----------
conv2d_transpose
    The operation (``help(numba_convt.conv2d_transpose)``).
conv1d_transpose, conv3d_transpose, conv_transpose
    The same for 1 and 3 spatial dimensions, and by the rank of ``output_shape``.
plan, Plan
    Validate a call once and choose its kernel, then run it on many arrays.
warmup
    Compile the kernels ahead of the first call.
conv2d_transpose_output_shape, conv2d_transpose_output_sizes
    The output shape Keras/JAX/PyTorch pick, or every one TensorFlow accepts.
conv_transpose_output_shape, conv_transpose_output_sizes
    The same for every rank.
available_backends, get_backend, register_backend
    The backend registry: ``"cpu"`` (the default), ``"numpy"`` (the
    reference), ``"cuda"`` where it can run, and your own.
Spec
    The normalized arguments a backend receives.

``python -m numba_convt`` checks the backends against the reference and
times a few layers (``python -m numba_convt --help``). The ``"cpu"`` backend
follows Numba's thread count (``numba.set_num_threads``) with bitwise
identical results for any count.

Examples
--------
>>> import numpy as np
>>> import numba_convt
>>> x = np.ones((1, 2, 2, 3), np.float32)                # NHWC
>>> f = np.ones((2, 2, 4, 3), np.float32)                # [KH, KW, C_out, C_in]
>>> numba_convt.conv2d_transpose(x, f, [1, 4, 4, 4], strides=2).shape
(1, 4, 4, 4)
"""

from . import _tbb
from ._normalize import Spec
from ._plan import Plan, plan
from ._registry import available_backends, get_backend, register_backend
from ._warmup import warmup
from .api import conv1d_transpose, conv2d_transpose, conv3d_transpose, conv_transpose
from .shapes import (
    conv2d_transpose_output_shape, conv2d_transpose_output_sizes, conv_transpose_output_shape,
    conv_transpose_output_sizes,
)

__all__ = ["Plan", "Spec", "available_backends", "conv1d_transpose", "conv2d_transpose",
           "conv2d_transpose_output_shape", "conv2d_transpose_output_sizes", "conv3d_transpose", "conv_transpose",
           "conv_transpose_output_shape", "conv_transpose_output_sizes", "get_backend", "plan", "register_backend",
           "warmup"]
__version__ = "0.1.0"

_tbb.preload()  # before any parallel call picks Numba's threading layer
