"""TensorFlow's ``tf.nn.conv2d_transpose`` on NumPy arrays, compiled with Numba.

Public API: :func:`conv2d_transpose`, the backend registry
(:func:`available_backends`, :func:`get_backend`, :func:`register_backend`)
and :class:`Spec`, the normalized arguments a backend receives.
"""

from ._normalize import Spec
from ._registry import available_backends, get_backend, register_backend
from .api import conv2d_transpose

__all__ = ["Spec", "available_backends", "conv2d_transpose", "get_backend", "register_backend"]
__version__ = "0.1.0"
