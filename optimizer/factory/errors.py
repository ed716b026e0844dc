"""Errors of the candidate factory (all `HilError`s, so the `hil` CLI prints them cleanly)."""

from __future__ import annotations

from hil.errors import HilError


class FactoryError(HilError):
    """A candidate cannot be made: bad configuration, unknown dataset or family, bad data."""


class CandidateFailed(FactoryError):
    """Training one candidate failed (NaN loss, crash, out of memory, timeout); the message is
    the reason that goes into the failed candidate's record."""
