"""hil.profile end to end: fit check and input checks before any build; real runs on QEMU."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import hil
from hil import cli
from hil.boards import load_board
from hil.errors import BoardError, HilError, InputError, ModelTooLargeError
from hil.importer import load_tflite

MODEL = "autoencoder"  # FULLY_CONNECTED only: small, quick to build and run


def test_a_model_larger_than_the_board_is_refused_before_building(
    zoo_model: Callable[[str], Path],
) -> None:
    tiny = dataclasses.replace(load_board("qemu-m0"), name="tiny", ram_bytes=64, flash_bytes=512)
    with pytest.raises(ModelTooLargeError) as exc:
        hil.profile(zoo_model(MODEL), tiny, progress=False)
    msg = str(exc.value)
    assert "KiB of weights" in msg and "activation arena" in msg and "tiny has" in msg


def test_bad_arguments_and_inputs_are_clear_errors(zoo_model: Callable[[str], Path]) -> None:
    path = zoo_model(MODEL)
    with pytest.raises(BoardError, match="qemu-m4"):
        hil.profile(path, "no-such-board", progress=False)
    with pytest.raises(HilError, match="runs"):
        hil.profile(path, runs=0, progress=False)
    with pytest.raises(HilError, match="budget"):
        hil.profile(path, budgets={"max_speed": 1}, progress=False)
    with pytest.raises(InputError, match="shape"):
        hil.profile(path, inputs=[np.zeros((1, 3), np.int8)], progress=False)


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m0"])
def test_profile_on_qemu_matches_the_reference(
    board: str, zoo_model: Callable[[str], Path], tmp_path: Path
) -> None:
    path = zoo_model(MODEL)
    out = tmp_path / "report.json"
    code = cli.main(
        ["profile", str(path), "--board", board, "--runs", "3", "--json", str(out), "--quiet"]
    )
    assert code == cli.EXIT_OK
    r = json.loads(out.read_text())
    assert r["board"] == board and r["timing_source"] == "qemu-icount"
    assert r["outputs_exact_rate"] >= 0.99 and r["max_abs_diff"] <= 1
    assert r["latency_counts"] > r["macs"] > 0  # at least one instruction per MAC
    assert r["latency_ms"] == pytest.approx(r["latency_counts"] / load_board(board).clock_hz * 1e3)
    assert r["flash_bytes"] > r["params"]
    assert r["ram_bytes"] == r["static_ram_bytes"] + r["stack_bytes"]
    assert r["static_ram_bytes"] >= r["arena_bytes"] and r["stack_bytes"] > 0
    assert len(r["layers"]) == len(load_tflite(path).operators)
    assert sum(layer["macs"] for layer in r["layers"]) == r["macs"]
    assert sum(layer["counts"] for layer in r["layers"]) <= r["latency_counts"]

    # Same model again: the build is a cache hit and icount makes counts repeat exactly.
    again = hil.profile(path, board, runs=3, progress=False)
    assert again.cached
    assert again.latency_counts == r["latency_counts"]
