"""Shared test setup: numba's CUDA simulator, unless the environment chose otherwise.

It must be set before anything imports numba; ``NUMBA_ENABLE_CUDASIM=0 python
-m pytest`` runs the same CUDA tests on a real GPU.
"""

import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")


import pytest  # noqa: E402  (after the environment variable above)


@pytest.fixture(autouse=True)
def _fresh_plans():
    """Tests patch the cost model and backends: each starts without the plans
    ``conv2d_transpose`` kept from earlier tests."""
    from numba_convt import _plan

    _plan._cache.clear()
