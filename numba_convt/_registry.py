"""Name-keyed registry of backends, resolved lazily.

A backend is a function ``run(spec, x, filters, out)`` that writes every
element of the NHWC ``out`` buffer (``spec.compute_dtype``, C-contiguous) from
the C-contiguous NHWC ``x`` and ``[KH, KW, C_out / groups, C_in]`` filters.
Built-in backends live in ``numba_convt.backends.<name>`` and are imported on
first use, so ``import numba_convt`` compiles nothing.
"""

import importlib
from dataclasses import dataclass
from typing import Callable

from ._normalize import Spec

__all__ = ["Backend", "available_backends", "get_backend", "register_backend"]


@dataclass(frozen=True)
class Backend:
    """A registered backend: its ``run`` function and availability probe."""

    name: str
    run: Callable[[Spec, object, object, object], None]
    is_available: Callable[[], bool]


_BUILTIN = ("cpu", "numpy")  # "auto" picks the first available one
_registry = {}


def register_backend(name, run, *, is_available=None, overwrite=False):
    """Register ``run`` as backend ``name``.

    Parameters
    ----------
    name : str
        Case-insensitive name used as ``conv2d_transpose(..., backend=name)``.
    run : callable
        ``run(spec, x, filters, out)``: ``spec`` is a frozen
        :class:`numba_convt.Spec`; ``x`` the C-contiguous NHWC input and
        ``filters`` the C-contiguous ``[KH, KW, C_out / groups, C_in]`` filters,
        both of ``spec.compute_dtype``; ``out`` an uninitialised C-contiguous
        NHWC buffer of that dtype, every element of which ``run`` must write.
    is_available : callable, optional
        Returns whether the backend can run on this machine; default always.
    overwrite : bool, default False
        Replace an existing backend of that name instead of raising.

    Returns
    -------
    Backend
        The registered backend.

    Examples
    --------
    >>> import numba_convt
    >>> def mine(spec, x, filters, out):
    ...     numba_convt.get_backend("numpy").run(spec, x, filters, out)
    >>> numba_convt.register_backend("mine", mine).name
    'mine'
    >>> numba_convt.conv2d_transpose([[[[1.0]]]], [[[[2.0]]]], [1, 1], 1, backend="mine")
    array([[[[2.]]]])
    """
    if not isinstance(name, str) or not name or name.lower() == "auto":
        raise ValueError(f"backend name must be a non-empty string other than 'auto'; got {name!r}")
    if not callable(run):
        raise TypeError(f"run must be callable; got {run!r}")
    key = name.lower()
    if not overwrite and (key in _registry or key in _BUILTIN):
        raise ValueError(f"backend {key!r} already exists; pass overwrite=True to replace it")
    backend = Backend(key, run, is_available or (lambda: True))
    _registry[key] = backend
    return backend


def _lookup(name):
    """The backend called ``name`` (imported on first use) or None."""
    key = name.lower()
    if key not in _registry and key in _BUILTIN:
        module = importlib.import_module(f"numba_convt.backends.{key}")
        _registry[key] = Backend(key, module.run, getattr(module, "is_available", lambda: True))
    return _registry.get(key)


def available_backends():
    """Names of the backends usable on this machine.

    Returns
    -------
    list of str
        Built-in names first, in the order ``backend="auto"`` prefers them.

    Examples
    --------
    >>> import numba_convt
    >>> {"cpu", "numpy"} <= set(numba_convt.available_backends())
    True
    """
    names = list(dict.fromkeys([*_BUILTIN, *_registry]))
    return [name for name in names if _lookup(name).is_available()]


def get_backend(name):
    """The backend called ``name`` (case-insensitive), or ``"auto"``'s choice.

    Raises
    ------
    ValueError
        If no such backend is registered or it cannot run here; the message
        lists the available backends.

    Examples
    --------
    >>> import numba_convt
    >>> numba_convt.get_backend("CPU").name
    'cpu'
    """
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string; got {name!r}")
    if name.lower() == "auto":
        return _lookup(available_backends()[0])
    backend = _lookup(name)
    if backend is None or not backend.is_available():
        problem = "unknown" if backend is None else "not available on this machine"
        raise ValueError(
            f"backend {name!r} is {problem}; available backends: "
            + ", ".join(["auto", *available_backends()])
        )
    return backend
