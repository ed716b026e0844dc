"""Errors a user can cause or meet. Each message says what was wrong and what to do about it."""

from __future__ import annotations


class HilError(Exception):
    """Base of every error the bench reports to a user (the CLI prints it without a traceback)."""


class ModelError(HilError):
    """The model file cannot be used: corrupt, truncated, float, or an unsupported op or type."""


class UnsupportedOpError(ModelError):
    """The model uses an operator or tensor type the bench has no kernel for."""


class ReferenceUnavailable(ModelError):
    """A reference interpreter cannot run the model: it refused it, crashed, hung, or is not
    installed. `hil.profile` then reports the check as not done instead of raising."""


class InputError(HilError):
    """User-supplied input data does not fit the model: wrong count, shape, type or range, or
    an unreadable .npy file (the model itself is fine)."""


class ModelTooLargeError(HilError):
    """The model does not fit the board's flash or RAM."""


class BoardError(HilError):
    """Unknown board, or a malformed board.toml."""


class ToolchainError(HilError):
    """arm-none-eabi-gcc, CMake or QEMU is missing, or the build failed."""


class BuildError(ToolchainError):
    """Compiling or linking the generated project failed."""


class CacheError(HilError):
    """The build cache ($HIL_CACHE_DIR) cannot be used: a file, read-only, or full."""


class TargetError(HilError):
    """The target (QEMU or a board) did not behave: no answer, a fault, garbage."""


class TargetTimeout(TargetError):
    """The target stopped answering within the timeout (hung, or not running our firmware)."""


class TargetFault(TargetError):
    """The target reported a HardFault (or QEMU stopped on a CPU lockup)."""


class ProtocolError(TargetError):
    """The target answered something that is not a valid response frame."""


class BudgetExceeded(HilError):
    """A measured figure is over a budget the user set."""
