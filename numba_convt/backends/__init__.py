"""Built-in backends, one module each, imported lazily by the registry.

Each module defines ``run(spec, x, filters, out)`` (see
:func:`numba_convt.register_backend`) and optionally ``is_available()``.
"""
