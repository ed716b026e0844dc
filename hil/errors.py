"""Errors a user can cause or meet. Each message says what was wrong and what to do about it."""

from __future__ import annotations

from typing import ClassVar

#: The failure classes of a run, kept apart all the way to reports and the search store: a
#: flash error is never a build failure, a board that does not answer is not a fault.
FAILURE_CLASSES = ("build", "flash", "connect", "no-answer", "fault", "outputs-differ")


class HilError(Exception):
    """Base of every error the bench reports to a user (the CLI prints it without a traceback)."""

    #: Which of FAILURE_CLASSES this error is (None: not one of them, e.g. a bad model).
    failure: ClassVar[str | None] = None


def failure_class(exc: BaseException) -> str | None:
    """The failure class of `exc` (see FAILURE_CLASSES), or None."""
    return getattr(exc, "failure", None) if isinstance(exc, HilError) else None


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

    failure = "build"


class CacheError(HilError):
    """The build cache ($HIL_CACHE_DIR) cannot be used: a file, read-only, or full."""


class TargetError(HilError):
    """The target (QEMU or a board) did not behave: no answer, a fault, garbage."""


class TargetTimeout(TargetError):
    """The target stopped answering within the timeout (hung, or not running our firmware)."""

    failure = "no-answer"


class LinkLost(TargetTimeout):
    """The serial link went away in the middle of a request: the board reset (its USB serial
    adapter may re-enumerate) or was unplugged. For the run it is a board that stopped
    answering."""


class TargetFault(TargetError):
    """The target reported a HardFault (or QEMU stopped on a CPU lockup)."""

    failure = "fault"


class FlashError(TargetError):
    """Writing the image into the board's flash failed (after one retry), or the read-back
    differs from the image. Never a build failure: the image was built."""

    failure = "flash"


class ConnectError(TargetError):
    """The bench could not reach the board: no probe, a probe that cannot drive this chip, a
    locked chip, another chip than the board's, a serial port missing or in use, a timeout
    talking to the probe."""

    failure = "connect"


class NoProbeError(ConnectError):
    """No debug probe (or not the one asked for) is connected."""


class ProbeCapabilityError(ConnectError):
    """The probe cannot drive this chip (the RP2040 needs SWD multidrop sequences)."""


class TargetLockedError(ConnectError):
    """The chip's debug access is locked (nRF52 APPROTECT); unlocking erases it all."""


class WrongTargetError(ConnectError):
    """The probe is wired to another chip than the board type says (or an unknown one)."""


class SerialPortError(ConnectError):
    """The board's serial port cannot be found or opened."""


class PortBusyError(SerialPortError):
    """Another program holds the serial port."""


class OutputsDiffer(HilError):
    """The device's outputs differ from the reference by more than 1 LSB."""

    failure = "outputs-differ"


class ProtocolError(TargetError):
    """The target answered something that is not a valid response frame."""


class BudgetExceeded(HilError):
    """A measured figure is over a budget the user set."""
