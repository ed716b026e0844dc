"""The result of one profiling run: figures, per-layer breakdown, budget verdicts; JSON and table.

`Report` is what `hil.profile` returns, what `hil profile --json` writes and what the optimizer
reads its objectives from, so its field names are a public contract (see `to_dict`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from hil.graph import shape_text
from hil.measure import MAX_LSB_DIFF

KIB = 1024
#: `schema_version` of the JSON report. 1: reports without the field (before provenance);
#: 2: provenance and reference-check fields.
SCHEMA_VERSION = 2

#: Keys of `Report.to_dict()` that consumers (CI scripts, the optimizer, `hil profile --json`
#: readers) may rely on: renaming or dropping one is a breaking change.
JSON_CONTRACT_KEYS: frozenset[str] = frozenset(
    {
        "schema_version",
        "board",
        "model",
        "model_sha256",
        "bench_version",
        "compiler_version",
        "build_flags",
        "target_version",
        "cached",
        "timing_source",
        "latency_counts",
        "latency_ms",
        "flash_bytes",
        "ram_bytes",
        "model_ram_bytes",
        "static_ram_bytes",
        "arena_bytes",
        "stack_bytes",
        "macs",
        "params",
        "outputs_exact_rate",
        "max_abs_diff",
        "layers",
        "reference",
        "check",
        "check_note",
        "reference_checks",
        "backend",
        "backend_version",
        "backend_flags",
        "numerics",
    }
)

#: `Report.check`: the device's outputs agree with every reference that checked them ...
CHECK_PASSED = "passed"
#: ... differ from one by more than 1 LSB ...
CHECK_FAILED = "failed"
#: ... or were not compared, because no reference asked for could run the model (see the note).
CHECK_NOT_DONE = "not done"


@dataclass(frozen=True)
class ReferenceCheck:
    """One reference interpreter's verdict on the device's outputs.

    `reference` is "litert" or "tflm"; `version` the package that ran (e.g.
    "ai-edge-litert==2.3.0"); figures are None when it could not run (`note` says why).
    """

    reference: str
    version: str
    status: str
    exact_rate: float | None
    max_abs_diff: float | None
    note: str = ""


@dataclass(frozen=True)
class LayerReport:
    """One layer: its op, output shape, MACs and the counts it took in the last measured run.

    `counts` is in the report's latency unit (instructions, cycles or ticks). `kernel` is the
    function that ran it; `note` says why the backend fell back to another kernel than its own.
    """

    index: int
    op: str
    shape: tuple[int, ...]
    macs: int
    counts: int
    kernel: str = ""
    note: str = ""


@dataclass(frozen=True)
class TensorDiff:
    """One operator output read back from the device and compared with the reference's."""

    layer: int
    op: str
    tensor: int
    name: str
    max_abs_diff: float
    exact_rate: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= MAX_LSB_DIFF


@dataclass(frozen=True)
class LayersDiff:
    """`--layers-diff`: every operator's output against the reference interpreter's
    intermediate tensors; `first_bad_layer` is the first layer more than 1 LSB off (None: all
    agree). `note` says why the comparison could not be made, when it could not."""

    reference: str
    tensors: list[TensorDiff] = field(default_factory=list)
    note: str = ""

    @property
    def first_bad(self) -> TensorDiff | None:
        return next((t for t in self.tensors if not t.ok), None)

    @property
    def first_bad_layer(self) -> int | None:
        bad = self.first_bad
        return bad.layer if bad else None


@dataclass(frozen=True)
class Budgets:
    """Limits a user sets (CI guard). None means no limit; KiB are 1024 bytes."""

    max_latency_ms: float | None = None
    max_ram_kb: float | None = None
    max_flash_kb: float | None = None

    @classmethod
    def coerce(cls, value: Budgets | Mapping[str, float | None] | None) -> Budgets:
        """Accept a Budgets, a dict with the same keys, or None (no limits)."""
        if value is None:
            return cls()
        if isinstance(value, Budgets):
            return value
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown budget(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(value))

    def verdicts(self, latency_ms: float, ram_bytes: int, flash_bytes: int) -> list[BudgetVerdict]:
        """One verdict per limit that is set."""
        checks = [
            ("latency", self.max_latency_ms, latency_ms, "ms"),
            ("ram", self.max_ram_kb, ram_bytes / KIB, "KiB"),
            ("flash", self.max_flash_kb, flash_bytes / KIB, "KiB"),
        ]
        return [
            BudgetVerdict(name, float(limit), float(measured), unit, measured <= limit)
            for name, limit, measured, unit in checks
            if limit is not None
        ]


@dataclass(frozen=True)
class BudgetVerdict:
    name: str
    limit: float
    measured: float
    unit: str
    ok: bool


@dataclass
class Report:
    """Everything one `hil.profile` call measured (definitions in DESIGN.md)."""

    board: str
    model: str
    timing_source: str
    timing_note: str
    latency_counts: int
    latency_ms: float
    runs: int
    warmup: int
    flash_bytes: int
    ram_bytes: int
    static_ram_bytes: int
    arena_bytes: int
    stack_bytes: int
    macs: int
    params: int
    outputs_exact_rate: float
    max_abs_diff: float
    layers: list[LayerReport] = field(default_factory=list)
    budgets: list[BudgetVerdict] = field(default_factory=list)
    latency_counts_per_run: list[int] = field(default_factory=list)
    build_seconds: float = 0.0
    cached: bool = False
    model_id: int = 0
    board_flash_bytes: int = 0
    board_ram_bytes: int = 0
    #: Provenance (docs/measurement.md): what was measured, with what, so reports can be traced
    #: and compared. SHA-256 of the .tflite (hex, full); bench version (+ git describe);
    #: the compiler's version line; its flags for the model's sources; the runner's version.
    model_sha256: str = ""
    bench_version: str = ""
    compiler_version: str = ""
    build_flags: list[str] = field(default_factory=list)
    target_version: str = ""
    #: Version of the JSON layout `to_dict` writes (first key); bumped when keys change meaning.
    schema_version: ClassVar[int] = SCHEMA_VERSION
    #: Which reference(s) checked the outputs ("litert", "tflm", "litert+tflm"; "" if none).
    reference: str = "litert"
    #: CHECK_PASSED, CHECK_FAILED or CHECK_NOT_DONE; "" derives it from max_abs_diff.
    check: str = ""
    #: Why the check is not done, or why another reference than LiteRT checked.
    check_note: str = ""
    reference_checks: list[ReferenceCheck] = field(default_factory=list)
    #: Which backend ran the model ("own", "cmsis-nn", "tflm"), the version of its library (the
    #: user's checkout: git describe or a tree hash), the flags that decide its code, and the
    #: settings that decide rounding (e.g. {"rounding": "double"}).
    backend: str = "own"
    backend_version: str = ""
    backend_flags: list[str] = field(default_factory=list)
    numerics: dict[str, str] = field(default_factory=dict)
    #: Part of the arena a run needed, when the backend measured it (TFLM); None: all of it.
    arena_used_bytes: int | None = None
    #: Scratch buffers the backend's kernels asked for (inside the arena).
    scratch_bytes: int = 0
    #: What a deployment of the model needs of `ram_bytes`: the model's statics (arena with
    #: scratch, the generated file's, the kernels' and any backend library's) and its stack
    #: below the runtime's frames; the rest is the bench runtime's (protocol buffers, layer
    #: counts, its stack). RAM budgets use this part. 0 in reports made before it existed.
    model_ram_bytes: int = 0
    #: `hil profile --layers-diff`: each intermediate tensor against the reference's.
    layers_diff: LayersDiff | None = None
    #: The board's CPU clock (latency_ms is at this clock), the serial number of the board
    #: instance measured (physical boards: the probe's id, which the hardware map ties to the
    #: board), and facts about it: instance, probe, port, where code, weights and activations
    #: live, cache settings.
    clock_hz: int = 0
    board_serial: str = ""
    board_details: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.check:
            self.check = CHECK_PASSED if self.max_abs_diff <= MAX_LSB_DIFF else CHECK_FAILED

    @property
    def outputs_match(self) -> bool:
        """Device outputs were checked and are within 1 LSB of the reference(s) everywhere."""
        return self.check == CHECK_PASSED

    @property
    def within_budget(self) -> bool:
        return all(v.ok for v in self.budgets)

    @property
    def counts_per_mac(self) -> float | None:
        return self.latency_counts / self.macs if self.macs else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: every field, plus the derived verdicts."""
        d = {"schema_version": self.schema_version, **asdict(self)}
        d["layers"] = [{**asdict(layer), "shape": list(layer.shape)} for layer in self.layers]
        d["outputs_match"] = self.outputs_match
        d["within_budget"] = self.within_budget
        d["counts_per_mac"] = self.counts_per_mac
        for key in ("max_abs_diff", "outputs_exact_rate"):
            if not math.isfinite(d[key]):
                d[key] = None  # NaN/inf output, or no check: JSON has no spelling for it
        for c in d["reference_checks"]:
            if c["max_abs_diff"] is not None and not math.isfinite(c["max_abs_diff"]):
                c["max_abs_diff"] = None
        if self.layers_diff is not None:
            d["layers_diff"]["first_bad_layer"] = self.layers_diff.first_bad_layer
            for t in d["layers_diff"]["tensors"]:
                if not math.isfinite(t["max_abs_diff"]):
                    t["max_abs_diff"] = None
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def render(self) -> Group:
        """Summary table and per-layer breakdown, as one rich renderable."""
        unit = _count_unit(self.timing_source)
        summary = Table(title=f"{self.model} on {self.board}", show_header=False, box=None)
        summary.add_column(style="bold")
        summary.add_column()
        latency = (
            f"{self.latency_ms:.3f} ms  ({self.latency_counts:,} {unit}, median of {self.runs})"
        )
        summary.add_row("latency", latency)
        if self.counts_per_mac is not None:
            summary.add_row(f"{unit} per MAC", f"{self.counts_per_mac:.2f}")
        summary.add_row("flash", _bytes_of(self.flash_bytes, self.board_flash_bytes))
        summary.add_row(
            "RAM",
            _bytes_of(self.ram_bytes, self.board_ram_bytes)
            + f"  (static {self.static_ram_bytes:,} incl. arena {self.arena_bytes:,};"
            f" stack {self.stack_bytes:,}; the model's part {self.model_ram_bytes:,})",
        )
        summary.add_row("MACs / params", f"{self.macs:,} / {self.params:,}")
        backend = f"{self.backend} {self.backend_version}".strip()
        if self.backend_flags:
            backend += f" ({' '.join(self.backend_flags)})"
        if self.numerics:
            backend += "; " + ", ".join(f"{k}: {v}" for k, v in self.numerics.items())
        summary.add_row("backend", Text(backend))
        if self.check == CHECK_NOT_DONE:
            summary.add_row("outputs", Text(f"NOT CHECKED: {self.check_note}", style="yellow"))
        else:
            ok = "[green]match[/]" if self.outputs_match else "[red]MISMATCH[/]"
            summary.add_row(
                "outputs",
                f"{ok}: {self.outputs_exact_rate:.2%} exact, max diff {self.max_abs_diff:g} LSB"
                f" (reference: {self.reference})",
            )
            if self.check_note:
                summary.add_row("", Text(self.check_note, style="dim"))
        for v in self.budgets:
            verdict = "[green]ok[/]" if v.ok else "[red]OVER[/]"
            summary.add_row(
                f"budget {v.name}", f"{verdict} {v.measured:.3f} / {v.limit:g} {v.unit}"
            )
        build = "cached" if self.cached else f"{self.build_seconds:.1f} s"
        summary.add_row("build", build)
        summary.add_row("provenance", Text(self._provenance_text(), style="dim"))
        summary.add_row("timing", Text(self.timing_note, style="dim"))
        if self.board_serial or self.board_details:
            facts = [f"serial {self.board_serial}"] if self.board_serial else []
            if self.clock_hz:
                facts.append(f"{self.clock_hz / 1e6:g} MHz")
            facts += [f"{k}: {v}" for k, v in self.board_details.items()]
            summary.add_row("board", Text("; ".join(facts), style="dim"))
        parts: list[Any] = [summary, self._layer_table(unit)]
        if self.layers_diff is not None:
            parts.append(self._diff_table())
        return Group(*parts)

    def _diff_table(self) -> Table | Text:
        diff = self.layers_diff
        assert diff is not None
        if diff.note and not diff.tensors:
            return Text(f"layers diff not done: {diff.note}", style="yellow")
        bad = diff.first_bad
        title = (
            f"intermediate tensors vs {diff.reference}: all within 1 LSB"
            if bad is None
            else f"intermediate tensors vs {diff.reference}: first layer off by more than 1 LSB: "
            f"{bad.layer} ({bad.op})"
        )
        table = Table(title=title)
        for name in ("#", "op", "tensor", "max diff", "exact"):
            table.add_column(name, justify="left" if name in ("op", "tensor") else "right")
        for t in diff.tensors:
            style = None if t.ok else "red"
            table.add_row(str(t.layer), t.op, t.name, f"{t.max_abs_diff:g}", f"{t.exact_rate:.1%}",
                          style=style)
        return table

    def _provenance_text(self) -> str:
        parts = [f"model sha256 {self.model_sha256[:16]}" if self.model_sha256 else ""]
        parts += [f"bench {self.bench_version}" if self.bench_version else ""]
        parts += [self.compiler_version, " ".join(self.build_flags), self.target_version]
        return "; ".join(p for p in parts if p) or "-"

    def _layer_table(self, unit: str) -> Table:
        table = Table(title="per layer (last measured run)")
        for name in ("#", "op", "output", "MACs", unit, "share", f"{unit}/MAC", "kernel"):
            table.add_column(
                name, justify="left" if name in ("op", "output", "kernel") else "right"
            )
        total = sum(layer.counts for layer in self.layers) or 1
        for layer in self.layers:
            per_mac = f"{layer.counts / layer.macs:.2f}" if layer.macs else "-"
            table.add_row(
                str(layer.index),
                layer.op,
                shape_text(layer.shape),
                f"{layer.macs:,}",
                f"{layer.counts:,}",
                f"{layer.counts / total:.1%}",
                per_mac,
                layer.kernel + (f" ({layer.note})" if layer.note else ""),
            )
        return table

    def print(self, console: Console | None = None) -> None:
        (console or Console()).print(self.render())


def _count_unit(timing_source: str) -> str:
    units = {"qemu-icount": "instructions", "dwt-cyccnt": "cycles", "systick-cycles": "cycles"}
    return units.get(timing_source, "ticks")


def _bytes_of(used: int, available: int) -> str:
    text = f"{used:,} B"
    if available:
        text += f" of {available:,} ({used / available:.1%})"
    return text
