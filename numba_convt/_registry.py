"""Name-keyed registry of backends, resolved lazily.

A backend is a function ``run(spec, x, filters, out)`` that writes every
element of the channels-last ``out`` buffer (``spec.compute_dtype``,
C-contiguous) from the C-contiguous channels-last ``x`` and ``[*kernel,
C_out / groups, C_in]`` filters, for 1, 2 or 3 spatial axes (``spec.rank``:
``NWC``, ``NHWC`` or ``NDHWC`` arrays).
Built-in backends live in ``numba_convt.backends.<name>`` and are imported on
first use, so ``import numba_convt`` compiles nothing (and never imports
``numba.cuda``). A backend that also takes device arrays (``"cuda"``) adds
``as_device_array`` and ``run_device``; one with ``takes_nchw(spec)`` (``"cpu"``)
gets channels-first ``x`` and ``out`` as they are for the calls it says yes to.
One with ``plan(spec)`` chooses its kernel once per signature (see ``_plan``):
an object with ``takes_nchw`` and ``run(x, filters, out)``.
"""

import importlib
from dataclasses import dataclass
from typing import Callable

from ._normalize import Spec

__all__ = ["Backend", "available_backends", "get_backend", "register_backend"]


@dataclass(frozen=True)
class Backend:
    """A registered backend: its ``run`` function and availability probe.

    ``as_device_array(obj)`` (zero-copy view of a ``__cuda_array_interface__``
    object) and ``run_device(spec, input, filters, out, stream) -> result`` are
    set only for backends that take device arrays; ``hint`` says what an
    unavailable backend needs. ``takes_nchw(spec)`` says whether a channels-first
    call's ``x`` and ``out`` go to ``run`` as they are (else the api converts).
    ``plan(spec)``, where set, does the choices of ``run`` and ``takes_nchw``
    once: it returns an object with that attribute and ``run(x, filters, out)``.
    """

    name: str
    run: Callable[[Spec, object, object, object], None]
    is_available: Callable[[], bool]
    as_device_array: Callable[[object], object] | None = None
    run_device: Callable[..., object] | None = None
    hint: str = ""
    takes_nchw: Callable[[Spec], bool] = lambda spec: False
    plan: Callable[[Spec], object] | None = None


_BUILTIN = ("cpu", "numpy", "cuda")
_AUTO_HOST = ("cpu", "numpy")  # "auto" for host arrays; the api picks "cuda" for device arrays
_registry = {}


def register_backend(name, run, *, is_available=None, overwrite=False):
    """Register ``run`` as backend ``name``.

    Parameters
    ----------
    name : str
        Case-insensitive name used as ``conv2d_transpose(..., backend=name)``.
    run : callable
        ``run(spec, x, filters, out)``: ``spec`` is a frozen
        :class:`numba_convt.Spec`; ``x`` the C-contiguous channels-last input
        (``NWC``, ``NHWC`` or ``NDHWC`` by ``spec.rank``) and ``filters`` the
        C-contiguous ``[*kernel, C_out / groups, C_in]`` filters, both of
        ``spec.compute_dtype``; ``out`` an uninitialised C-contiguous
        channels-last buffer of that dtype, every element of which ``run``
        must write.
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
        try:
            module = importlib.import_module(f"numba_convt.backends.{key}")
        except ImportError as error:  # an optional dependency (cuda: numba-cuda) is missing
            _registry[key] = Backend(key, None, lambda: False, hint=f"importing it failed: {error}")
        else:
            _registry[key] = Backend(
                key, module.run, getattr(module, "is_available", lambda: True),
                getattr(module, "as_device_array", None), getattr(module, "run_device", None),
                getattr(module, "UNAVAILABLE_HINT", ""), getattr(module, "takes_nchw", Backend.takes_nchw),
                getattr(module, "plan", None),
            )
    return _registry.get(key)


def available_backends():
    """Names of the backends usable on this machine.

    ``"cpu"`` (Numba kernels, the default) and ``"numpy"`` (the reference)
    always; ``"cuda"`` where numba-cuda finds a GPU (or its simulator runs);
    then those added with :func:`register_backend` whose probe says yes.

    Returns
    -------
    list of str
        Built-in names first, in the order ``backend="auto"`` prefers them
        for host arrays (``"cuda"``, when listed, is its choice for device
        arrays); checking ``"cuda"`` imports ``numba.cuda``.

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

    Parameters
    ----------
    name : str
        A name from :func:`available_backends`, or ``"auto"``: the backend
        ``conv2d_transpose(..., backend="auto")`` uses for host arrays.

    Returns
    -------
    Backend
        Frozen record with the backend's ``name``, its ``run(spec, x,
        filters, out)`` function (see :func:`register_backend`) and its
        ``is_available`` probe.

    Raises
    ------
    ValueError
        If no such backend is registered or it cannot run here; the message
        lists the available backends (and, for a built-in one, what it needs).
    TypeError
        If ``name`` is not a string.

    Examples
    --------
    >>> import numba_convt
    >>> numba_convt.get_backend("CPU").name
    'cpu'
    >>> numba_convt.get_backend("auto").name
    'cpu'
    """
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string; got {name!r}")
    if name.lower() == "auto":
        for key in _AUTO_HOST:
            backend = _lookup(key)
            if backend.is_available():
                return backend
    backend = _lookup(name)
    if backend is None or not backend.is_available():
        problem = "unknown" if backend is None else "not available on this machine"
        if backend is not None and backend.hint:
            problem += f" ({backend.hint})"
        raise ValueError(
            f"backend {name!r} is {problem}; available backends: "
            + ", ".join(["auto", *available_backends()])
        )
    return backend
