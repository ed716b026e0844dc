"""Every kind of failure in one search, which goes on: a training crash and a divergence, a
build failure, a hang and a fault on the target, outputs that differ (injected through the
documented HIL_SEARCH_INJECT hook), and a model that really does not fit a second board."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from search_helpers import run_hil, small_board, tiny_config  # type: ignore[import-not-found]

from optimizer.search.store import open_run

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

INJECT = "1:train-crash,2:diverge,3:build-fail,4:hang,5:fault,6:mismatch"
TINY_FLASH = 4096  # the firmware alone needs more


@pytest.fixture(autouse=True)
def _toolchain() -> None:
    missing = [t for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm") if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: run scripts/setup.sh")


def test_every_failure_is_recorded_told_and_the_search_goes_on(tmp_path: Path) -> None:
    boards = tmp_path / "boards"
    boards.mkdir()
    shutil.copytree(Path(__file__).resolve().parents[2] / "boards" / "qemu-m4",
                    boards / "qemu-m4")
    small_board(boards, "tiny-m4", TINY_FLASH)
    config = tiny_config(tmp_path / "faults.toml", budget=7, algorithm="sobol",
                         boards=("qemu-m4", "tiny-m4"), extra=f'boards_dir = "{boards}"')
    run = tmp_path / "run"
    proc = run_hil("search", str(config), "--out", str(run), "--plain",
                   env={"HIL_SEARCH_INJECT": INJECT})
    assert proc.returncode == 0, proc.stderr[-3000:]

    store = open_run(run)
    trials = {t.id: t for t in store.trials()}
    assert sorted(trials) == list(range(1, 8)) and all(t.finished for t in trials.values())
    kinds = {i: (t.status, t.failure_kind) for i, t in trials.items()}
    assert kinds == {
        1: ("failed", "training"), 2: ("failed", "diverged"), 3: ("failed", "build"),
        4: ("failed", "hang"), 5: ("failed", "fault"), 6: ("failed", "mismatch"),
        7: ("failed", "too-large"),
    }
    assert "SIGABRT" in trials[1].reason  # a real child process died
    assert "loss became NaN" in trials[2].reason
    for i in range(1, 7):
        assert "injected by HIL_SEARCH_INJECT" in trials[i].reason
        assert trials[i].observation["objectives"] is None  # told as failures
        assert not trials[i].feasible
    assert trials[6].reports["qemu-m4"]["latency_ms"] > 0  # measured, then judged wrong

    # A real model too large for tiny-m4: measured on qemu-m4, infeasible with the bytes the
    # linker reported as its tiny-m4 flash value, so the optimizer learns where the wall is.
    big = trials[7]
    assert set(big.reports) == {"qemu-m4"} and not big.feasible
    need = big.metrics["flash_bytes@tiny-m4"]
    assert need > TINY_FLASH and f"{int(need):,} bytes" in big.reason
    assert big.constraints[f"flash_bytes@tiny-m4 <= {TINY_FLASH}"] == need
    assert big.objectives["latency_ms@qemu-m4"] == big.reports["qemu-m4"]["latency_ms"]
    names = [c["name"] for c in store.constraints]
    told = big.observation["constraints"][names.index(f"flash_bytes@tiny-m4 <= {TINY_FLASH}")]
    assert told == pytest.approx(need / TINY_FLASH - 1) and told > 0
    assert big.observation["objectives"] is not None
    assert "latency_ms@tiny-m4" in big.observation["imputed"]

    state = store.optimizer_state()
    assert len(state["observations"]) == 7 and state["pending"] == []
    assert sum(o["objectives"] is None for o in state["observations"]) == 6
    for kind in ("training", "diverged", "build", "hang", "fault", "mismatch", "too-large"):
        assert f": {kind}: " in proc.stderr  # one plain line per failure
