"""Targets that run built images: QEMU, physical boards through pyOCD, a Pico by UF2 copy.

One module per kind (`hil.targets.base.KINDS`); `open_target(board, options)` picks it.
"""

from hil.targets.base import KINDS, Target, TargetOptions, open_target

__all__ = ["KINDS", "Target", "TargetOptions", "open_target"]
