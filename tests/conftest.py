"""Shared test setup: numba's CUDA simulator, unless the environment chose otherwise.

It must be set before anything imports numba; ``NUMBA_ENABLE_CUDASIM=0 python
-m pytest`` runs the same CUDA tests on a real GPU.
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
