"""tinyml-hil: profile int8 TFLite models on Cortex-M targets (QEMU or real boards).

`hil.profile(model, board)` is the public entry point and returns a `hil.Report`. Importing
`hil` stays cheap (numpy and rich, never TensorFlow): heavy parts load when a profile runs.
"""

from __future__ import annotations

__version__ = "0.1.0"

# Bound after the submodule import, so `hil.profile` is the function, not the module.
from hil.profile import profile
from hil.report import Budgets, Report

__all__ = ["Budgets", "Report", "__version__", "profile"]
