"""End-to-end tests need the cross toolchain and QEMU; without them they skip, saying why."""

from __future__ import annotations

import shutil

import pytest

_TOOLS = ("cmake", "arm-none-eabi-gcc", "qemu-system-arm")


@pytest.fixture(autouse=True)
def _toolchain() -> None:
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not on PATH: run scripts/setup.sh (Debian packages "
            "gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm, cmake)"
        )
