"""asv benchmarks for numba_convt (``asv run``) and the peers script (``python -m benchmarks.peers``)."""
