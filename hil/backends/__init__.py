"""Backends: the registry of ways to run a model (own kernels, CMSIS-NN, TFLM).

`get_backend(name)` gives one (`BackendUnavailable` for an unknown name or one this bench has
no module for); `BACKEND_NAMES` lists them in table order. Each lives in its own module and is
imported only when asked for, so `hil --help` never pays for them. The protocol is in
`hil.backends.base` and docs/architecture.md ("Backends").
"""

from __future__ import annotations

import hashlib
import importlib
from typing import TYPE_CHECKING

from hil.backends.base import (
    Backend,
    BackendUnavailable,
    checkout_root,
    checkout_version,
    require_available,
)

if TYPE_CHECKING:
    from hil.boards import Board

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


def project_dir_name(
    backend: Backend, model_sha256: str, board: Board, *, layers_diff: bool = False
) -> str:
    """The folder under the cache's projects/ for this model, backend and board.

    The own kernels' project does not depend on the board unless it keeps every tensor
    (--layers-diff); other backends' projects do (scratch sizes per core), and so do their
    flags (TFLM's kernel set): a short hash of those keeps two processes that profile the same
    model with different settings out of each other's folder.
    """
    name = model_sha256[:16]
    if backend.name == "own" and not layers_diff:
        return name
    flags = hashlib.sha256("\0".join(backend.flags(board)).encode()).hexdigest()[:8]
    name += f"-{backend.name}-{board.name}-{flags}"
    return name + ("-diff" if layers_diff else "")


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
