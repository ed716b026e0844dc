"""Helpers of the search tests: tiny configs, the `hil` command line, process trees."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

#: A search that finishes fast: digits, one-stage ResNets of width 4..8, one or two epochs,
#: a cheap ARS-MOBOpt (its GP fit still runs for real).
TINY = """
[data]
dataset = "digits"

[model]
family = "resnet"
stages = 1
blocks_per_stage = 1
base_width = 4

[train]
epochs = 1

[space.model]
base_width = {{ low = 4, high = 8 }}

[space.train]
epochs = {{ low = 1, high = 2 }}

[search]
boards = {boards}
objectives = ["accuracy", "flash", "latency"]
constraints = ["latency_ms <= 50"]
algorithm = "{algorithm}"
algorithm_settings = {settings}
budget = {budget}
initial_design = {initial}
batch_size = 2
workers = 2
seed = 0
profile_runs = 3
train_timeout_s = 300
{extra}
"""

CHEAP_ARS = "{ iterations = 2, policies = 2, directions = 2, top_directions = 1, mc_samples = 16 }"


def tiny_config(
    path: Path,
    *,
    budget: int,
    algorithm: str = "ars-mobo",
    boards: tuple[str, ...] = ("qemu-m4",),
    initial: int = 2,
    extra: str = "",
) -> Path:
    settings = CHEAP_ARS if algorithm == "ars-mobo" else "{}"
    text = TINY.format(
        boards="[" + ", ".join(f'"{b}"' for b in boards) + "]",
        algorithm=algorithm, settings=settings, budget=budget, initial=initial, extra=extra,
    )
    path.write_text(text)
    return path


def hil_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hil.cli", *args]


def run_hil(*args: str, env: dict[str, str] | None = None, timeout: float = 900
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(hil_command(*args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=REPO, check=False)


def small_board(boards_dir: Path, name: str, flash_bytes: int) -> None:
    """A copy of qemu-m4 whose flash is `flash_bytes` (board.toml and linker script)."""
    src = REPO / "boards" / "qemu-m4"
    dst = boards_dir / name
    shutil.copytree(src, dst)
    toml, n1 = re.subn(r'(?m)^name = "qemu-m4"$', f'name = "{name}"',
                       (dst / "board.toml").read_text())
    toml, n2 = re.subn(r"(?m)^flash_bytes = [0-9_]+$", f"flash_bytes = {flash_bytes}", toml)
    (dst / "board.toml").write_text(toml)
    ld, n3 = re.subn(r"(FLASH \(rx\) *: *ORIGIN = \w+, *LENGTH = )\w+", rf"\g<1>{flash_bytes}",
                     (dst / "link.ld").read_text())
    (dst / "link.ld").write_text(ld)
    assert (n1, n2, n3) == (1, 1, 1), "boards/qemu-m4 changed shape: update small_board"


def process_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgrp, command name) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), comm)
    return table


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid`: pid -> command name."""
    table = process_table()
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _, comm) in table.items():
            if ppid == parent and child not in found:
                found[child] = comm
                frontier.append(child)
    return found


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
