"""Backend tests: fixtures for the user's checkouts (skip with the reason when unset) and the
session's converted tiny models."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support.tiny_models import tiny_model

__all__ = ["cmsis_nn_root", "qemu_tools", "tiny_model"]


@pytest.fixture(scope="session")
def cmsis_nn_root() -> Path:
    """The CMSIS-NN checkout of CMSIS_NN_ROOT; the test skips, saying why, when there is none."""
    from hil.backends import get_backend

    reason = get_backend("cmsis-nn").unavailable()
    if reason:
        pytest.skip(f"needs a CMSIS-NN checkout: {reason}")
    return Path(os.environ["CMSIS_NN_ROOT"]).resolve()


@pytest.fixture(scope="session")
def qemu_tools() -> None:
    missing = [t for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm") if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: run scripts/setup.sh")
