"""Targets that run built images: QEMU today, physical boards through pyOCD next."""

from hil.targets.base import Target, open_target

__all__ = ["Target", "open_target"]
