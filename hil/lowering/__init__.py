"""Per-op lowering to C: one module per op family, each registering the op names it handles."""

from hil.lowering import (  # noqa: F401  (imported for their registrations)
    activation,
    conv,
    elementwise,
    fully_connected,
    pool,
    quantize,
    shape,
)
from hil.lowering.registry import lower, supported_ops

__all__ = ["lower", "supported_ops"]
