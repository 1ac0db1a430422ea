"""Cold start in a fresh interpreter: import, and import plus first call.

The first call loads the kernel from Numba's on-disk cache when it is warm
(every run after the first), so this tracks what a new process pays.
"""

_FIRST_CALL = """
import numpy as np
import numba_convt
numba_convt.conv2d_transpose(np.ones((1, 4, 4, 2), np.float32), np.ones((3, 3, 2, 2), np.float32),
                             [1, 8, 8, 2], 2)
"""


def timeraw_import():
    return "import numba_convt"


def timeraw_first_call():
    return _FIRST_CALL
