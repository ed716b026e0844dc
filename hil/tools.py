"""The external programs the bench runs, the Debian packages that provide them, their versions.

One place for "X is missing: install it with ..." so every message names the same packages as
scripts/setup.sh, and for the versions that reports record as provenance (the programs' version
lines and the bench's own version).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from hil.errors import ToolchainError

#: Debian packages that provide each program (the same list scripts/setup.sh installs).
PACKAGES: dict[str, tuple[str, ...]] = {
    "arm-none-eabi-gcc": (
        "gcc-arm-none-eabi",
        "libnewlib-arm-none-eabi",
        "libstdc++-arm-none-eabi-newlib",
    ),
    "cmake": ("cmake",),
    "ninja": ("ninja-build",),
    "make": ("make",),
    "qemu-system-arm": ("qemu-system-arm",),
}


def install_hint(tools: Sequence[str]) -> str:
    """What to run to get `tools`: the apt-get line, or scripts/setup.sh for everything."""
    packages = [p for tool in tools for p in PACKAGES.get(tool, (tool,))]
    return (
        f"install {'it' if len(tools) == 1 else 'them'} with "
        f"`sudo apt-get install {' '.join(dict.fromkeys(packages))}` "
        "(or run scripts/setup.sh, which installs everything the bench needs)"
    )


def require(tools: Sequence[str], needed_for: str) -> dict[str, str]:
    """Paths of `tools` on PATH; ToolchainError naming every missing one and its packages."""
    found = {tool: shutil.which(tool) for tool in tools}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        names = " and ".join(missing)
        raise ToolchainError(
            f"{names} not found on PATH ({'it is' if len(missing) == 1 else 'they are'} needed "
            f"{needed_for}): {install_hint(missing)}"
        )
    return {tool: path for tool, path in found.items() if path is not None}


def first_available(tools: Sequence[str], needed_for: str) -> str:
    """The first of `tools` on PATH (e.g. ninja, else make); ToolchainError if none is."""
    for tool in tools:
        if shutil.which(tool):
            return tool
    raise ToolchainError(
        f"none of {', '.join(tools)} found on PATH (one is needed {needed_for}): "
        f"{install_hint(tools[:1])}"
    )


@functools.cache
def version_line(path: str) -> str:
    """First line of `path --version` (e.g. 'QEMU emulator version 7.2.19 (...)'), or ''."""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.splitlines()[0].strip() if out.strip() else ""


@functools.cache
def bench_version() -> str:
    """The bench's package version, plus `git describe` of its checkout when there is one
    (e.g. '0.1.0 (git a1f9732-dirty)'), so a report names the code that measured it."""
    from hil import __version__

    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists() or shutil.which("git") is None:
        return __version__
    # GIT_OPTIONAL_LOCKS=0: never take the index lock of a checkout others may be committing in.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        described = subprocess.run(
            ["git", "-C", str(root), "describe", "--tags", "--always"],
            capture_output=True, text=True, timeout=10, check=False, env=env,
        )  # fmt: skip
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=False, env=env,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return __version__
    if described.returncode != 0 or not described.stdout.strip():
        return __version__
    dirty = "-dirty" if status.returncode == 0 and status.stdout.strip() else ""
    return f"{__version__} (git {described.stdout.strip()}{dirty})"
