"""tinyml-hil: profile int8 TFLite models on Cortex-M targets (QEMU or real boards)."""

from __future__ import annotations

__version__ = "0.1.0"
