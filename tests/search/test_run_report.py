"""`hil report`: run stores built through the store's public write API (the way the search loop
writes them) become JSON with every trial, a self-contained HTML page and PNGs; several runs
overlay with one reference point."""

from __future__ import annotations

import base64
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from hil.boards import load_board
from hil.cli import main as hil_main
from optimizer.core import Observation
from optimizer.search import results
from optimizer.search.config import SearchConfig
from optimizer.search.objectives import judge, metric_values
from optimizer.search.report import ReportError, collect, write_report
from optimizer.search.store import RunStore, open_run, trial_dir

BOARD = "qemu-m4"


def _config(
    latency_limit: float = 50.0,
    objectives: tuple[str, ...] = ("accuracy", "flash", "latency"),
    algorithm: str = "sobol",
) -> SearchConfig:
    doc = {
        "data": {"dataset": "digits"},
        "model": {"family": "resnet", "stages": 1},
        "space": {
            "model": {"base_width": {"low": 4, "high": 16}},
            "train": {"learning_rate": {"low": 0.001, "high": 0.01}},
        },
        "search": {
            "boards": [BOARD],
            "objectives": list(objectives),
            "constraints": [f"latency_ms <= {latency_limit:g}"],
            "algorithm": algorithm,
            "budget": 8,
        },
    }
    return SearchConfig.from_mapping(doc, source="test")


def _record(acc: float, test_acc: float, flash_est: int, ram_est: int) -> dict[str, Any]:
    return {
        "status": "ok",
        "val_accuracy_int8": acc,
        "test_accuracy_int8": test_acc,
        "flash_bytes_estimate": flash_est,
        "ram_bytes_estimate": ram_est,
        "macs": 100_000,
        "params": 5_000,
    }


def _report(flash: int, ram: int, latency_ms: float) -> dict[str, Any]:
    return {
        "board": BOARD,
        "flash_bytes": flash,
        "ram_bytes": ram,
        "latency_ms": latency_ms,
        "latency_counts": int(latency_ms * 64_000),
        "counts_per_mac": latency_ms * 0.64,
        "arena_bytes": ram // 2,
        "stack_bytes": 512,
        "macs": 100_000,
        "params": 5_000,
        "timing_source": "qemu-icount",
    }


def make_run(
    run_dir: Path,
    trials: list[dict[str, Any]],
    *,
    latency_limit: float = 50.0,
    algorithm: str = "sobol",
    seed: int = 0,
    objectives: tuple[str, ...] = ("accuracy", "flash", "latency"),
) -> Path:
    """A finished run as the search loop records it: each trial dict has `acc`, `flash`,
    `latency` (done), or `fail` (a failure kind) and optionally `needs_flash` (too-large)."""
    cfg = _config(latency_limit, objectives, algorithm)
    meta = {
        "config_doc": cfg.doc,
        "config": cfg.to_dict(),
        "budget": len(trials) + 2,
        "objectives": [o.to_dict() for o in cfg.objectives],
        "constraints": [c.to_dict() for c in cfg.constraints],
        "space": cfg.to_dict()["space"],
        "boards": list(cfg.boards),
        "algorithm": algorithm,
        "seed": seed,
    }
    store = RunStore.create(run_dir, meta)
    try:
        xs = [[(i + 0.5) / len(trials), 1 - (i + 0.5) / len(trials)] for i in range(len(trials))]
        ids = store.add_trials([(x, cfg.decode(x)) for x in xs], {"algorithm": algorithm})
        for trial_id, x, spec in zip(ids, xs, trials, strict=True):
            store.mark_started(trial_id, "test", None, None)
            work = trial_dir(run_dir, trial_id)
            work.mkdir(parents=True)
            base = work.relative_to(run_dir)
            if "fail" in spec:
                needs = (
                    {BOARD: {"flash_bytes": spec["needs_flash"]}} if "needs_flash" in spec else {}
                )
                record = _record(0.9, 0.88, 900_000, 20_000) if needs else None
                values = metric_values(record, {}, needs)
                verdict = judge(values, cfg.objectives, cfg.constraints, complete=False)
                store.finish_trial(
                    trial_id, status="failed", failure_kind=spec["fail"],
                    reason=f"{spec['fail']}: made up by the test",
                    observation=Observation.failure(x, "made up").to_dict(), feasible=False,
                    metrics=values, objectives=verdict.objectives, record=record,
                    artifacts={}, timings={"train": 1.0},
                )  # fmt: skip
                continue
            record = _record(
                spec["acc"], spec["acc"] - 0.02, spec["flash"] // 4, spec.get("ram", 20_000) // 2
            )
            rep = _report(spec["flash"], spec.get("ram", 20_000), spec["latency"])
            (work / "model.tflite").write_bytes(b"TFL3 made up")
            (work / f"profile-{BOARD}.json").write_text(json.dumps(rep))
            (work / "record.json").write_text(json.dumps(record))
            values = metric_values(record, {BOARD: rep})
            verdict = judge(values, cfg.objectives, cfg.constraints, complete=True)
            assert verdict.told_objectives is not None
            obs = Observation.success(x, verdict.told_objectives, verdict.told_constraints)
            store.finish_trial(
                trial_id, status="done", feasible=verdict.feasible,
                observation={**obs.to_dict(), "imputed": []}, metrics=values,
                objectives=verdict.objectives, constraints=verdict.constraints, record=record,
                reports={BOARD: rep},
                artifacts={"model.tflite": str(base / "model.tflite"),
                           "record.json": str(base / "record.json"),
                           f"profile-{BOARD}": str(base / f"profile-{BOARD}.json")},
                timings={"train": 1.0},
            )  # fmt: skip
    finally:
        store.close()
    return run_dir


#: Trial 1, 2 and 4 form the front (each best somewhere), 3 is dominated by 2, 5 is too slow
#: (infeasible), 6 failed in training, 7 is too large with a known flash need.
TRIALS: list[dict[str, Any]] = [
    {"acc": 0.95, "flash": 400_000, "latency": 30.0},
    {"acc": 0.90, "flash": 200_000, "latency": 20.0},
    {"acc": 0.85, "flash": 250_000, "latency": 25.0},
    {"acc": 0.70, "flash": 100_000, "latency": 10.0},
    {"acc": 0.97, "flash": 150_000, "latency": 80.0},
    {"fail": "training"},
    {"fail": "too-large", "needs_flash": 2_000_000},
]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", TRIALS)


def test_json_lists_every_trial_with_the_front_and_budget(run: Path) -> None:
    data = collect([run])
    assert len(data["runs"]) == 1
    r = data["runs"][0]
    assert r["budget"] == len(TRIALS) + 2
    assert [t["id"] for t in r["trials"]] == list(range(1, len(TRIALS) + 1))
    for t in r["trials"]:
        assert {"id", "status", "reason", "params", "objectives", "feasible"} <= set(t)
        assert t["status"] in ("done", "failed")
        assert "model.base_width" in t["params"] and "train.learning_rate" in t["params"]
    by_id = {t["id"]: t for t in r["trials"]}
    assert r["front"] == [1, 2, 4]
    assert [i for i, t in by_id.items() if t["on_front"]] == [1, 2, 4]
    assert by_id[5]["feasible"] is False and by_id[5]["status"] == "done"
    assert by_id[6]["status"] == "failed" and by_id[6]["reason"].startswith("training")
    assert by_id[7]["objectives"]["flash_bytes@qemu-m4"] == 2_000_000
    assert by_id[1]["objectives"]["accuracy"] == pytest.approx(0.95)
    assert by_id[1]["test_accuracy"] == pytest.approx(0.93)
    # measured beside the factory's estimates: flash was estimated at a quarter, RAM at half
    m = by_id[1]["measured"][BOARD]
    assert m["flash_vs_estimate"] == pytest.approx(4.0)
    assert m["ram_vs_estimate"] == pytest.approx(2.0)
    assert m["arena_vs_estimate"] == pytest.approx(1.0)
    assert r["failures"] == {"training": 1, "too-large": 1}


def test_hypervolume_is_the_one_the_search_shows(run: Path) -> None:
    data = collect([run])
    store = open_run(run)
    trials = store.trials()
    store.close()
    r = data["runs"][0]
    assert r["hypervolume"] == pytest.approx(results.hypervolume(trials))
    assert r["hypervolume"] > 0
    history = r["hypervolume_history"]
    assert [h[0] for h in history] == list(range(1, len(TRIALS) + 1))
    assert history[-1][1] == pytest.approx(r["hypervolume"])
    assert all(a[1] <= b[1] + 1e-12 for a, b in itertools.pairwise(history))
    assert data["reference_point"] == {
        "accuracy": 0.0,
        "flash_bytes@qemu-m4": float(load_board(BOARD).flash_bytes),  # the board's own
        "latency_ms@qemu-m4": 50.0,  # the constraint's limit
    }


def test_html_is_self_contained_with_plots_front_table_and_links(run: Path, tmp_path: Path) -> None:
    page = tmp_path / "out" / "page.html"
    write_report([run], html_path=page)
    text = page.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 1 + 3  # hypervolume + 3 objective pairs
    for b64 in images:
        assert base64.b64decode(b64).startswith(b"\x89PNG")
    assert "http" not in text.split("<body>")[0]  # no external stylesheet or script
    pngs = sorted(p.name for p in (tmp_path / "out" / "page-png").iterdir())
    assert pngs == [
        "hypervolume.png",
        "scatter-accuracy--flash_bytes-at-qemu-m4.png",
        "scatter-accuracy--latency_ms-at-qemu-m4.png",
        "scatter-flash_bytes-at-qemu-m4--latency_ms-at-qemu-m4.png",
    ]
    front = text.split("<h2>Pareto front")[1].split("<details>")[0]
    rows = re.findall(r'<tr class="front">(.*?)</tr>', front)
    assert [re.match(r"<td[^>]*>(\d+)</td>", r).group(1) for r in rows] == ["1", "2", "4"]
    assert "4.00×" in rows[0] and "1.00×" in rows[0]  # measured / estimated flash and arena
    assert "95.00%" in rows[0] and "93.00%" in rows[0]  # val and test accuracy
    links = re.findall(r'href="([^"]+)"', front)
    assert links, "front models are linked"
    for link in links:
        assert (page.parent / link).resolve().is_file(), link
    assert any(link.endswith("model.tflite") for link in links)
    assert any(link.endswith(f"profile-{BOARD}.json") for link in links)
    # the full table marks the failures with their reason
    assert "too-large" in text and "training: made up by the test" in text


def test_overlay_uses_one_reference_point(tmp_path: Path) -> None:
    a = make_run(tmp_path / "ars", TRIALS, algorithm="ars-mobo")
    b = make_run(tmp_path / "sobol", TRIALS[1:4], latency_limit=100.0, seed=1)
    data = collect([a, b])
    assert [r["algorithm"] for r in data["runs"]] == ["ars-mobo", "sobol"]
    # the worst of the two latency references, so both hypervolumes are on one scale
    assert data["reference_point"]["latency_ms@qemu-m4"] == 100.0
    hv_a, hv_b = (r["hypervolume"] for r in data["runs"])
    alone = collect([a])["runs"][0]["hypervolume"]
    assert hv_a != pytest.approx(alone)  # a larger reference box than its own
    assert hv_a > hv_b > 0  # a's trials include all of b's plus better ones
    page = tmp_path / "both.html"
    write_report([a, b], html_path=page)
    text = page.read_text()
    assert "2 runs overlaid" in text
    fronts = [part.split("<details>")[0] for part in text.split("<h2>Pareto front")[1:]]
    assert [f.count('<tr class="front">') for f in fronts] == [3, 2]
    assert "ars (ars-mobo, seed 0)" in text and "sobol (sobol, seed 1)" in text


def test_runs_with_different_objectives_are_refused(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", TRIALS[:3])
    b = make_run(tmp_path / "b", TRIALS[:3], objectives=("accuracy", "latency"))
    with pytest.raises(ReportError, match="objectives differ"):
        collect([a, b])


def test_command_line_json_to_stdout_and_errors(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hil_main(["report", str(run), "--json", "-"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert len(data["runs"][0]["trials"]) == len(TRIALS)
    assert "hypervolume" in err  # the summary goes to stderr when stdout carries JSON
    assert not (run / "report.html").exists()  # only what was asked for

    assert hil_main(["report", str(run)]) == 0  # default: RUN/report.html
    out, _ = capsys.readouterr()
    assert (run / "report.html").is_file() and (run / "report-png" / "hypervolume.png").is_file()
    assert "report.html" in out

    assert hil_main(["report", str(tmp_path / "nothing")]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("error: ") and "not a `hil search` run directory" in err
    assert "Traceback" not in err


def test_report_of_a_run_in_progress(tmp_path: Path) -> None:
    """A search still running (trials proposed or training) reports what is finished."""
    run = make_run(tmp_path / "run", TRIALS[:2])
    cfg = _config()
    store = RunStore.resume(run)
    try:
        store.add_trials([([0.3, 0.3], cfg.decode([0.3, 0.3]))], {"algorithm": "sobol"})
    finally:
        store.close()
    data = collect([run])
    statuses = [t["status"] for t in data["runs"][0]["trials"]]
    assert statuses == ["done", "done", "proposed"]
    assert len(data["runs"][0]["hypervolume_history"]) == 2
    write_report([run], html_path=tmp_path / "r.html")
