"""`hil report RUN [RUN ...]`: what a search found, as a self-contained HTML page, PNGs and JSON.

Everything comes from the run store's read API (`store.open_run`), so a report can be made
while a search is still running. One run gives its Pareto front; several runs (e.g. ARS-MOBOpt
against Sobol on the same config) are overlaid on the same axes and the same hypervolume plot.

Hypervolume: the normalised one of docs/search.md (each objective mapped to
``(v - ideal) / (reference - ideal)``, the feasible trials' volume inside the unit box). All
runs of one report share one reference point: per objective the worst of the runs' own
reference values (for runs of the same config, their common one, so the figure equals what
the search itself showed). The report states the reference point it used.

Registered with the `hil` CLI through the entry-point group ``hil.commands``::

    [project.entry-points."hil.commands"]
    report = "optimizer.search.report:register"

Exit codes: 0 written, 1 an error (not a run directory, runs that cannot be compared, a path
that cannot be written), 2 bad command line.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hil.errors import HilError
from optimizer.hypervolume import hypervolume as _hypervolume
from optimizer.hypervolume import pareto_mask
from optimizer.search.store import RunStore, Trial, open_run

#: Version of the JSON layout `collect` returns; bumped when keys change meaning.
REPORT_SCHEMA_VERSION = 1
#: Colours of the runs in overlaid plots (matplotlib's tab10, colour-blind friendlier order).
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
            "#17becf", "#7f7f7f", "#bcbd22")  # fmt: skip


class ReportError(HilError):
    """The runs cannot be reported together, or the report cannot be written."""


# -- data ------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """One run directory as read from its store."""

    path: Path
    label: str
    meta: dict[str, Any]
    trials: list[Trial]

    @property
    def objectives(self) -> list[dict[str, Any]]:
        return list(self.meta.get("objectives") or [])


def _load(run_dir: str | Path) -> _Run:
    store: RunStore = open_run(run_dir)
    try:
        meta = store.all_meta()
        trials = store.trials()
    finally:
        store.close()
    path = Path(run_dir)
    return _Run(path, path.resolve().name or str(path), meta, trials)


def _labels(runs: list[_Run]) -> None:
    """Legend labels: the directory name with the algorithm and seed."""
    for run in runs:
        name = run.path.resolve().name
        run.label = f"{name} ({run.meta.get('algorithm')}, seed {run.meta.get('seed')})"


def _common_objectives(runs: list[_Run]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The runs' objectives (same names, same senses) and the shared reference point."""
    first = runs[0].objectives
    if not first:
        raise ReportError(
            f"{runs[0].path} records no objectives: it is not a finished "
            "`hil search` set-up (was it created by this version?)"
        )
    names = [o["name"] for o in first]
    for run in runs[1:]:
        other = [o["name"] for o in run.objectives]
        if sorted(other) != sorted(names):
            raise ReportError(
                f"cannot overlay {runs[0].path} and {run.path}: their objectives differ "
                f"({', '.join(names)} against {', '.join(other)}); report them separately or "
                "compare runs of the same config"
            )
    reference: dict[str, float] = {}
    for o in first:
        values = [
            float(next(p for p in r.objectives if p["name"] == o["name"])["reference"])
            for r in runs
        ]
        reference[o["name"]] = max(values) if o["sense"] == "min" else min(values)
    return first, reference


def _normalised(
    values: dict[str, float] | None,
    objectives: Sequence[dict[str, Any]],
    reference: dict[str, float],
) -> list[float] | None:
    """Natural-unit objective values -> minimised, 0 at the ideal and 1 at the reference."""
    if not values or any(o["name"] not in values for o in objectives):
        return None
    out = []
    for o in objectives:
        v, ideal, ref = float(values[o["name"]]), float(o["ideal"]), reference[o["name"]]
        if not math.isfinite(v):
            return None
        out.append((v - ideal) / (ref - ideal))
    return out


def _feasible_points(
    trials: Sequence[Trial], objectives: Sequence[dict[str, Any]], reference: dict[str, float]
) -> list[tuple[Trial, list[float]]]:
    out = []
    for t in trials:
        if t.status == "done" and t.feasible:
            point = _normalised(t.objectives, objectives, reference)
            if point is not None:
                out.append((t, point))
    return out


def _hv(points: Sequence[Sequence[float]], m: int) -> float:
    if not points:
        return 0.0
    return float(_hypervolume(np.asarray(points, dtype=float), np.ones(m)))


def _front_ids(
    trials: Sequence[Trial], objectives: Sequence[dict[str, Any]], reference: dict[str, float]
) -> set[int]:
    ok = _feasible_points(trials, objectives, reference)
    if not ok:
        return set()
    mask = pareto_mask(np.array([p for _, p in ok], dtype=float))
    return {t.id for (t, _), keep in zip(ok, mask, strict=True) if keep}


def _history(
    trials: Sequence[Trial], objectives: Sequence[dict[str, Any]], reference: dict[str, float]
) -> list[list[float]]:
    """[evaluations finished, hypervolume] after each finished trial, in finishing order."""
    done = sorted((t for t in trials if t.finished), key=lambda t: (t.finished_at or 0.0, t.id))
    m = len(objectives)
    points: list[list[float]] = []
    out: list[list[float]] = []
    for n, t in enumerate(done, start=1):
        if t.status == "done" and t.feasible:
            p = _normalised(t.objectives, objectives, reference)
            if p is not None:
                points.append(p)
        out.append([n, _hv(points, m)])
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _ratio(measured: float | None, estimate: float | None) -> float | None:
    if measured is None or not estimate:
        return None
    return measured / estimate


def _trial_entry(t: Trial, front: set[int]) -> dict[str, Any]:
    record = t.record or {}
    metrics = t.metrics or {}
    estimates = {
        "flash_bytes": _number(record.get("flash_bytes_estimate")),
        "ram_bytes": _number(record.get("ram_bytes_estimate")),
        "macs": _number(record.get("macs")),
        "params": _number(record.get("params")),
    }
    boards: dict[str, Any] = {}
    for board, rep in sorted(t.reports.items()):
        flash, ram = _number(rep.get("flash_bytes")), _number(rep.get("ram_bytes"))
        boards[board] = {
            "flash_bytes": flash,
            "ram_bytes": ram,
            "arena_bytes": _number(rep.get("arena_bytes")),
            "stack_bytes": _number(rep.get("stack_bytes")),
            "latency_ms": _number(rep.get("latency_ms")),
            "latency_counts": _number(rep.get("latency_counts")),
            "counts_per_mac": _number(rep.get("counts_per_mac")),
            "timing_source": rep.get("timing_source"),
            "flash_vs_estimate": _ratio(flash, estimates["flash_bytes"]),
            "ram_vs_estimate": _ratio(ram, estimates["ram_bytes"]),
            "arena_vs_estimate": _ratio(_number(rep.get("arena_bytes")), estimates["ram_bytes"]),
        }
    val = _number(metrics.get("accuracy", record.get("val_accuracy_int8")))
    test = _number(metrics.get("test_accuracy", record.get("test_accuracy_int8")))
    return {
        "id": t.id,
        "status": t.status,
        "failure_kind": t.failure_kind,
        "reason": t.reason,
        "params": t.params,
        "objectives": t.objectives,
        "constraints": t.constraints,
        "feasible": t.feasible,
        "on_front": t.id in front,
        "val_accuracy": val,
        "test_accuracy": test,
        "measured": boards,
        "estimates": estimates,
        "artifacts": t.artifacts or {},
        "attempts": t.attempts,
        "worker": t.worker,
        "timings": t.timings or {},
        "finished_at": t.finished_at,
    }


def collect(run_dirs: Sequence[str | Path]) -> dict[str, Any]:
    """Everything the report shows, as JSON-able data (the `--json` output).

    ``{"schema_version", "generated_at", "objectives", "reference_point", "runs": [...]}``;
    each run: run, label, algorithm, seed, dataset, boards, budget, counts, space,
    objectives, constraints, hypervolume (shared reference point), hypervolume_history,
    front (trial ids) and trials (id, status, failure_kind, reason, params, objectives,
    constraints, feasible, on_front, val/test accuracy, measured per board beside the
    factory's estimates, artifacts relative to the run directory, ...).
    """
    if not run_dirs:
        raise ReportError("name at least one run directory")
    runs = [_load(r) for r in run_dirs]
    _labels(runs)
    objectives, reference = _common_objectives(runs)
    out_runs = []
    for run in runs:
        front = _front_ids(run.trials, objectives, reference)
        points = [p for _, p in _feasible_points(run.trials, objectives, reference)]
        counts: dict[str, int] = {}
        for t in run.trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        failures: dict[str, int] = {}
        for t in run.trials:
            if t.status == "failed":
                failures[t.failure_kind or "?"] = failures.get(t.failure_kind or "?", 0) + 1
        config = run.meta.get("config") or {}
        out_runs.append(
            {
                "run": str(run.path),
                "label": run.label,
                "algorithm": run.meta.get("algorithm"),
                "seed": run.meta.get("seed"),
                "dataset": config.get("dataset"),
                "boards": run.meta.get("boards"),
                "budget": run.meta.get("budget"),
                "counts": counts,
                "failures": failures,
                "space": run.meta.get("space") or [],
                "objectives": run.objectives,
                "constraints": run.meta.get("constraints") or [],
                "hypervolume": _hv(points, len(objectives)),
                "hypervolume_history": _history(run.trials, objectives, reference),
                "front": sorted(front),
                "trials": [_trial_entry(t, front) for t in run.trials],
            }
        )
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "objectives": [
            {k: o[k] for k in ("name", "metric", "board", "sense", "unit", "ideal")}
            for o in objectives
        ],
        "reference_point": reference,
        "runs": out_runs,
    }


# -- plots -----------------------------------------------------------------------------------------


def _display(value: float, objective: dict[str, Any]) -> float:
    """Natural units -> the plotted ones (accuracy in %, bytes in KiB)."""
    if objective["metric"] == "accuracy":
        return 100.0 * value
    if objective.get("unit") == "B":
        return value / 1024.0
    return value


def _axis_label(objective: dict[str, Any]) -> str:
    if objective["metric"] == "accuracy":
        unit = "validation, %"
    elif objective.get("unit") == "B":
        unit = "KiB"
    else:
        unit = objective.get("unit") or ""
    better = "higher" if objective["sense"] == "max" else "lower"
    return (
        f"{objective['name']} ({unit}; {better} is better)"
        if unit
        else f"{objective['name']} ({better} is better)"
    )


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _scatter(data: dict[str, Any], i: int, j: int) -> bytes:
    """Objective i against objective j: every run's trials, its feasible front highlighted."""
    plt = _pyplot()
    ox, oy = data["objectives"][i], data["objectives"][j]
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    several = len(data["runs"]) > 1
    for k, run in enumerate(data["runs"]):
        colour = _COLOURS[k % len(_COLOURS)]
        groups: dict[str, list[tuple[float, float]]] = {
            "front": [],
            "feasible": [],
            "infeasible": [],
            "failed": [],
        }
        unplotted = 0
        for t in run["trials"]:
            values = t["objectives"] or {}
            if ox["name"] not in values or oy["name"] not in values:
                unplotted += t["status"] == "failed"
                continue
            xy = (_display(values[ox["name"]], ox), _display(values[oy["name"]], oy))
            if t["status"] == "failed":
                groups["failed"].append(xy)
            elif t["status"] != "done":
                continue
            elif t["on_front"]:
                groups["front"].append(xy)
            elif t["feasible"]:
                groups["feasible"].append(xy)
            else:
                groups["infeasible"].append(xy)
        prefix = f"{run['label']}: " if several else ""
        if groups["feasible"]:
            x, y = zip(*groups["feasible"], strict=True)
            ax.scatter(x, y, s=22, color=colour, alpha=0.45, label=f"{prefix}feasible")
        if groups["infeasible"]:
            x, y = zip(*groups["infeasible"], strict=True)
            ax.scatter(
                x,
                y,
                s=30,
                facecolors="none",
                edgecolors=colour,
                alpha=0.8,
                marker="s",
                label=f"{prefix}infeasible",
            )
        if groups["failed"] or unplotted:
            label = f"{prefix}failed"
            if unplotted:
                label += f" ({unplotted} without values, not shown)"
            x, y = zip(*groups["failed"], strict=True) if groups["failed"] else ((), ())
            ax.scatter(x, y, s=36, color=colour, marker="x", alpha=0.9, label=label)
        if groups["front"]:
            x, y = zip(*groups["front"], strict=True)
            ax.scatter(
                x,
                y,
                s=70,
                color=colour,
                edgecolors="black",
                linewidths=1.2,
                zorder=3,
                label=f"{prefix}Pareto front",
            )
            if len(data["objectives"]) == 2:  # the front itself is this 2-D staircase
                order = sorted(zip(x, y, strict=True))
                ax.step(
                    [p[0] for p in order],
                    [p[1] for p in order],
                    where="post",
                    color=colour,
                    alpha=0.7,
                    zorder=2,
                )
    ax.set_xlabel(_axis_label(ox))
    ax.set_ylabel(_axis_label(oy))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    title = f"{ox['name']} vs {oy['name']}"
    ax.set_title(title, fontsize=10)
    png = _png(fig)
    plt.close(fig)
    return png


def _hv_plot(data: dict[str, Any]) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 4.0))
    for k, run in enumerate(data["runs"]):
        hist = run["hypervolume_history"]
        if not hist:
            continue
        x = [0] + [h[0] for h in hist]
        y = [0.0] + [h[1] for h in hist]
        colour = _COLOURS[k % len(_COLOURS)]
        ax.step(x, y, where="post", color=colour, label=f"{run['label']}: {run['hypervolume']:.4f}")
        ax.plot(x[1:], y[1:], linestyle="none", marker="o", markersize=3, color=colour)
    ax.set_xlabel("evaluations finished")
    ax.set_ylabel("normalised hypervolume (feasible)")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    ax.set_title("hypervolume over evaluations (same reference point for every run)", fontsize=10)
    png = _png(fig)
    plt.close(fig)
    return png


def make_plots(data: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes by file name: ``hypervolume.png`` and ``scatter-A--B.png`` per objective pair."""
    plots = {"hypervolume.png": _hv_plot(data)}
    objs = data["objectives"]
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            name = f"scatter-{_slug(objs[i]['name'])}--{_slug(objs[j]['name'])}.png"
            plots[name] = _scatter(data, i, j)
    return plots


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text.replace("@", "-at-"))


# -- HTML ------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.5em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
tr.failed td { color: #a00; } tr.infeasible td { color: #777; } tr.front td { font-weight: 600; }
.plots { display: flex; flex-wrap: wrap; gap: 0.8em; } .plots img { max-width: 100%;
  border: 1px solid #eee; }
.note { color: #555; font-size: 0.9em; } code { background: #f5f5f5; padding: 0 0.2em; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _fmt_value(value: float | None, objective: dict[str, Any] | None = None, unit: str = "") -> str:
    if value is None:
        return "–"
    metric = objective["metric"] if objective else ""
    unit = objective.get("unit", "") if objective else unit
    if metric == "accuracy" or unit == "%":
        return f"{100 * value:.2f}%"
    if unit == "B":
        return f"{value / 1024:,.1f} KiB"
    if unit == "ms":
        return f"{value:,.3f} ms"
    if unit == "x":
        return f"{value:.2f}×"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _varied(run: dict[str, Any]) -> list[str]:
    return [p["name"] for p in run["space"]]


def _param(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _link(html_dir: Path, run_dir: Path, rel: str | None, text: str) -> str:
    if not rel:
        return ""
    target = os.path.relpath((run_dir / rel).resolve(), html_dir.resolve())
    return f'<a href="{_e(target)}">{_e(text)}</a>'


def _front_table(run: dict[str, Any], data: dict[str, Any], html_dir: Path) -> str:
    front = [t for t in run["trials"] if t["on_front"]]
    if not front:
        return "<p>No feasible trial yet, so no front.</p>"
    boards = run["boards"] or []
    varied = _varied(run)
    head = ["trial", *[v.split(".", 1)[-1] for v in varied], "val. acc.", "test acc."]
    for b in boards:
        head += [
            f"flash@{b}",
            "est.",
            "meas./est.",
            f"RAM@{b}",
            "arena",
            "est.",
            "arena/est.",
            f"latency@{b}",
            "counts/MAC",
        ]
    head += ["files"]
    rows = ["<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    run_dir = Path(run["run"])
    for t in sorted(front, key=lambda t: -(t["val_accuracy"] or 0)):
        cells = [
            str(t["id"]),
            *[_e(_param(t["params"].get(v))) for v in varied],
            _fmt_value(t["val_accuracy"], unit="%"),
            _fmt_value(t["test_accuracy"], unit="%"),
        ]
        est = t["estimates"]
        for b in boards:
            m = t["measured"].get(b, {})
            cells += [
                _fmt_value(m.get("flash_bytes"), unit="B"),
                _fmt_value(est["flash_bytes"], unit="B"),
                _fmt_value(m.get("flash_vs_estimate"), unit="x"),
                _fmt_value(m.get("ram_bytes"), unit="B"),
                _fmt_value(m.get("arena_bytes"), unit="B"),
                _fmt_value(est["ram_bytes"], unit="B"),
                _fmt_value(m.get("arena_vs_estimate"), unit="x"),
                _fmt_value(m.get("latency_ms"), unit="ms"),
                "–" if m.get("counts_per_mac") is None else f"{m['counts_per_mac']:.2f}",
            ]
        art = t["artifacts"]
        links = [_link(html_dir, run_dir, art.get("model.tflite"), "model.tflite")]
        links += [
            _link(html_dir, run_dir, path, f"{name}.json")
            for name, path in sorted(art.items())
            if name.startswith("profile-")
        ]
        links.append(_link(html_dir, run_dir, art.get("record.json"), "record.json"))
        cells.append(" ".join(x for x in links if x))
        rows.append(
            '<tr class="front">'
            + "".join(
                f'<td class="{"l" if k == len(cells) - 1 else ""}">{c}</td>'
                for k, c in enumerate(cells)
            )
            + "</tr>"
        )
    return "<table>" + "\n".join(rows) + "</table>"


def _trials_table(run: dict[str, Any], data: dict[str, Any]) -> str:
    objs = data["objectives"]
    varied = _varied(run)
    head = [
        "trial",
        "status",
        *[v.split(".", 1)[-1] for v in varied],
        *[o["name"] for o in objs],
        "test acc.",
        "feasible",
        "reason",
    ]
    rows = ["<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for t in run["trials"]:
        cls = (
            "front"
            if t["on_front"]
            else "failed"
            if t["status"] == "failed"
            else "infeasible"
            if t["feasible"] is False
            else ""
        )
        values = t["objectives"] or {}
        cells = [
            str(t["id"]),
            _e(t["status"] + (f" ({t['failure_kind']})" if t["failure_kind"] else "")),
            *[_e(_param(t["params"].get(v))) for v in varied],
            *[_fmt_value(values.get(o["name"]), o) for o in objs],
            _fmt_value(t["test_accuracy"], unit="%"),
            {True: "yes", False: "no", None: "–"}[t["feasible"]],
        ]
        reason = (t["reason"] or "").splitlines()[0][:240] if t["reason"] else ""
        cells.append(f'<span title="{_e(t["reason"])}">{_e(reason)}</span>')
        rows.append(
            f'<tr class="{cls}">'
            + "".join(
                f'<td class="{"l" if k in (1, len(cells) - 1) else ""}">{c}</td>'
                for k, c in enumerate(cells)
            )
            + "</tr>"
        )
    return "<table>" + "\n".join(rows) + "</table>"


def _summary_table(data: dict[str, Any]) -> str:
    head = [
        "run",
        "algorithm",
        "seed",
        "dataset",
        "boards",
        "trials / budget",
        "done",
        "failed",
        "feasible",
        "front",
        "hypervolume",
    ]
    rows = ["<tr>" + "".join(f'<th class="l">{_e(h)}</th>' for h in head) + "</tr>"]
    for run in data["runs"]:
        feasible = sum(1 for t in run["trials"] if t["status"] == "done" and t["feasible"])
        failures = ", ".join(f"{k} {n}" for k, n in sorted(run["failures"].items()))
        cells = [
            _e(run["run"]),
            _e(run["algorithm"]),
            _e(run["seed"]),
            _e(run["dataset"]),
            _e(", ".join(run["boards"] or [])),
            f"{len(run['trials'])} / {_e(run['budget'])}",
            str(run["counts"].get("done", 0)),
            f"{run['counts'].get('failed', 0)}" + (f" ({_e(failures)})" if failures else ""),
            str(feasible),
            str(len(run["front"])),
            f"{run['hypervolume']:.4f}",
        ]
        rows.append("<tr>" + "".join(f'<td class="l">{c}</td>' for c in cells) + "</tr>")
    return "<table>" + "\n".join(rows) + "</table>"


def render_html(data: dict[str, Any], plots: dict[str, bytes], html_path: Path) -> str:
    """The self-contained page (PNG images embedded as base64; file links relative to it)."""
    html_dir = html_path.parent
    runs = data["runs"]
    title = (
        f"hil search report: {runs[0]['label']}"
        if len(runs) == 1
        else f"hil search report: {len(runs)} runs overlaid"
    )
    ref = ", ".join(
        f"{_e(o['name'])} {_fmt_value(data['reference_point'][o['name']], o)}"
        for o in data["objectives"]
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="note">Generated {_e(data["generated_at"])} by <code>hil report</code>. '
        "Objectives are measured on the boards (flash, RAM, latency) or on the validation split "
        "(accuracy); test accuracy is reported, never used to select. Hypervolume: normalised "
        f"(0 at the ideal point, 1 at the reference point), reference point {ref}.</p>",
        "<h2>Runs</h2>",
        _summary_table(data),
        "<h2>Hypervolume over evaluations</h2>",
        '<div class="plots">' + _img(plots["hypervolume.png"], "hypervolume") + "</div>",
        "<h2>Objectives, pairwise</h2>",
        '<p class="note">Filled circles: feasible trials; circled in black: the feasible Pareto '
        "front (over all objectives); hollow squares: measured but infeasible (a constraint "
        "violated); crosses: failed trials with values (e.g. too large for the board, at the "
        "size the linker reported).</p>",
        '<div class="plots">'
        + "".join(_img(png, name) for name, png in plots.items() if name.startswith("scatter-"))
        + "</div>",
    ]
    for run in runs:
        head = f" of {_e(run['label'])}" if len(runs) > 1 else ""
        parts += [
            f"<h2>Pareto front{head}</h2>",
            '<p class="note">Measurements beside the candidate factory\'s analytical '
            "estimates and their ratio. Flash: the image (code included) against the estimate "
            "of weights, biases and per-channel requantization constants (no code). RAM: the "
            "image's static RAM plus measured stack; arena: the planned activation arena, "
            "against the estimate of the largest set of activations alive at once (a lower "
            "bound for the arena). counts/MAC: the board's timing counts (instructions under "
            "QEMU) per multiply-accumulate.</p>",
            _front_table(run, data, html_dir),
            f"<details><summary>All {len(run['trials'])} trials{head}</summary>",
            _trials_table(run, data),
            "</details>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _img(png: bytes, alt: str) -> str:
    return (
        f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
    )


# -- writing ---------------------------------------------------------------------------------------


def png_dir_for(html_path: Path) -> Path:
    """Where the PNGs of a page go: beside it, ``NAME-png/``."""
    return html_path.with_name(html_path.stem + "-png")


def write_report(
    run_dirs: Sequence[str | Path],
    html_path: str | Path | None = None,
    json_path: str | Path | None = None,
) -> dict[str, Any]:
    """Write the HTML page (and its PNGs) and/or the JSON; returns the collected data.

    With neither path: the page goes to RUN/report.html for one run, ./report.html for several.
    ``json_path="-"`` prints the JSON to standard output.
    """
    data = collect(run_dirs)
    if html_path is None and json_path is None:
        html_path = Path(run_dirs[0]) / "report.html" if len(run_dirs) == 1 else "report.html"
    if json_path is not None:
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
        if str(json_path) == "-":
            sys.stdout.write(text)
        else:
            _write(Path(json_path), text.encode())
    if html_path is not None:
        path = Path(html_path)
        plots = make_plots(data)
        _write(path, render_html(data, plots, path).encode())
        pngs = png_dir_for(path)
        for name, png in plots.items():
            _write(pngs / name, png)
        data["html"] = str(path)
        data["png_dir"] = str(pngs)
    return data


def _write(path: Path, content: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(content)
        tmp.replace(path)
    except OSError as exc:
        raise ReportError(
            f"cannot write {path}: {exc.strerror or exc}; choose another path"
        ) from exc


# -- command line ----------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `report` subcommand (the `hil.commands` entry-point contract)."""
    p = subparsers.add_parser(
        "report",
        help="HTML/PNG/JSON report of one or more `hil search` runs (overlaid)",
        description="Report what `hil search` found: pairwise objective plots with the "
        "feasible Pareto front, hypervolume over evaluations, the front as a table with "
        "measurements beside the factory's estimates. Several runs are overlaid with one "
        "reference point. Works on a running search too.",
        epilog="without --html or --json: one run -> RUN/report.html, several -> "
        "./report.html (PNGs in NAME-png/ beside the page). exit codes: 0 ok, 1 error, 2 usage",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories of `hil search`")
    p.add_argument("--html", metavar="PATH", help="write the page here (PNGs in PATH-png/)")
    p.add_argument(
        "--json",
        metavar="PATH",
        help="write the report's data as JSON here ('-' for standard output)",
    )
    p.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    data = write_report(args.runs, args.html, args.json)
    out = sys.stderr if args.json == "-" else sys.stdout
    for run in data["runs"]:
        print(
            f"{run['run']}: {len(run['trials'])} of {run['budget']} trials, "
            f"{run['counts'].get('failed', 0)} failed, front of {len(run['front'])}, "
            f"hypervolume {run['hypervolume']:.4f}",
            file=out,
        )
    if "html" in data:
        print(f"report: {data['html']} (PNGs in {data['png_dir']}/)", file=out)
    return 0


__all__ = [
    "REPORT_SCHEMA_VERSION",
    "ReportError",
    "collect",
    "make_plots",
    "png_dir_for",
    "register",
    "render_html",
    "write_report",
]
