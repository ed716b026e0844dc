"""Backends: the registry of ways to run a model (own kernels, CMSIS-NN, TFLM).

`get_backend(name)` gives one (`BackendUnavailable` for an unknown name or one this bench has
no module for); `BACKEND_NAMES` lists them in table order. Each lives in its own module and is
imported only when asked for, so `hil --help` never pays for them. The protocol is in
`hil.backends.base` and docs/architecture.md ("Backends").
"""

from __future__ import annotations

import importlib

from hil.backends.base import (
    Backend,
    BackendUnavailable,
    checkout_root,
    checkout_version,
    require_available,
)

#: name -> "module:class". Adding a backend = one module implementing `Backend` + one line here.
_REGISTRY: dict[str, str] = {
    "own": "hil.backends.own:OwnBackend",
    "cmsis-nn": "hil.backends.cmsis_nn:CmsisNnBackend",
    "tflm": "hil.backends.tflm:TflmBackend",
}

#: Every backend name, in the order comparison tables list them.
BACKEND_NAMES: tuple[str, ...] = tuple(_REGISTRY)

_INSTANCES: dict[str, Backend] = {}


def get_backend(name: str) -> Backend:
    """The backend called `name` (an instance; cheap, no checkout is looked at yet)."""
    if name not in _REGISTRY:
        raise BackendUnavailable(
            f"unknown backend {name!r}: choose one of {', '.join(BACKEND_NAMES)} (or 'all')"
        )
    if name not in _INSTANCES:
        module_name, cls_name = _REGISTRY[name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            raise BackendUnavailable(
                f"backend {name!r} is not part of this version of the bench ({module_name} is "
                "missing); use another backend"
            ) from None
        _INSTANCES[name] = getattr(module, cls_name)()
    return _INSTANCES[name]


def available_backends() -> tuple[list[Backend], dict[str, str]]:
    """The backends usable on this machine, and for each other one why not (for --backend all)."""
    usable: list[Backend] = []
    skipped: dict[str, str] = {}
    for name in BACKEND_NAMES:
        try:
            backend = get_backend(name)
        except BackendUnavailable as exc:
            skipped[name] = str(exc)
            continue
        reason = backend.unavailable()
        if reason:
            skipped[name] = reason
        else:
            usable.append(backend)
    return usable, skipped


__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "BackendUnavailable",
    "available_backends",
    "checkout_root",
    "checkout_version",
    "get_backend",
    "require_available",
]
