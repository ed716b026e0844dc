"""Fuzz the bench with thousands of mutated models and print what happened to them.

Mutants (seeded; tests/support/tflite_mutate.py) of every .tflite in examples/models/ and
../shared/models/: byte flips and zeroed regions in the flatbuffer's structure, truncations,
corrupt offsets, options types and values, quantization scales, zero points, vector lengths and
quantized dimensions, tensor names. Each is imported in this process
(`hil.importer.load_tflite_bytes`); a sample of those the importer accepts is profiled with
`hil profile` under QEMU (seconds each, so only `--profile-sample` of them). The tables count
outcomes: accepted or refused (by HilError class) at import; profiled, profiled without a
reference check, refused (by the stage that refused), outputs differ, traceback, signal, hang or
QEMU left behind at the command line. Anything but a report or a one-line error is listed with
the mutant that caused it (saved with --save DIR).

    .venv/bin/python benchmarks/fuzz_models.py --count 4000 --profile-sample 40 [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.model_fuzz import Outcome, import_outcome, model_paths, profile_outcome  # noqa: E402
from support.tflite_mutate import STRATEGIES, Mutant, mutants  # noqa: E402

#: Column order: clean outcomes first, then the failures.
_ORDER = {k: i for i, k in enumerate(
    ["accepted", "profiled", "profiled-unchecked", "over-budget"]
)}


def _table(title: str, counts: Counter[tuple[str, str]], strategies: list[str]) -> Table:
    """One row per mutation strategy, one column per outcome, with totals."""
    outcomes = sorted({row for row, _ in counts}, key=lambda r: (_ORDER.get(r, len(_ORDER)), r))
    table = Table(title=title)
    table.add_column("mutation")
    for o in outcomes:
        table.add_column(o.replace(" (", "\n("), justify="right")
    table.add_column("total", justify="right")
    for s in strategies:
        cells = [counts[(o, s)] for o in outcomes]
        table.add_row(s.replace("_", " "), *(str(c) if c else "." for c in cells), str(sum(cells)))
    totals = [sum(counts[(o, s)] for s in strategies) for o in outcomes]
    table.add_row("[b]all[/]", *map(str, totals), f"[b]{sum(totals)}[/]")
    return table


def _spread(survivors: list[Mutant], n: int) -> list[Mutant]:
    """`n` survivors taken in turn from each (model, strategy) group, so the sample is not
    dominated by the mutations the importer accepts most often."""
    groups: dict[tuple[str, str], list[Mutant]] = {}
    for m in survivors:
        groups.setdefault((m.source, m.strategy), []).append(m)
    queues = list(groups.values())
    sample: list[Mutant] = []
    depth = 0
    while len(sample) < n and any(depth < len(q) for q in queues):
        sample += [q[depth] for q in queues if depth < len(q)][: n - len(sample)]
        depth += 1
    return sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="import-level mutants in all")
    parser.add_argument(
        "--profile-sample", type=int, default=20,
        help="mutants the importer accepts to profile with `hil profile` (QEMU; seconds each)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--board", default="qemu-m4")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per profile run")
    parser.add_argument("--save", type=Path, help="write every mutant that was not clean here")
    args = parser.parse_args(argv)

    console = Console(width=160)
    bundled, shared = model_paths()
    models = bundled + shared
    if not shared:
        console.print("[yellow]no models in ../shared/models: fuzzing the bundled ones only[/]")
    per_model = -(-args.count // len(models))
    import_counts: Counter[tuple[str, str]] = Counter()
    profile_counts: Counter[tuple[str, str]] = Counter()
    bad: list[tuple[str, Mutant, Outcome]] = []
    survivors: list[Mutant] = []

    started = time.monotonic()
    for k, model in enumerate(models):
        for m in mutants(model.name, model.read_bytes(), args.seed * 1000 + k, per_model):
            outcome = import_outcome(m.data)
            import_counts[(outcome.row(), m.strategy)] += 1
            if not outcome.clean:
                bad.append(("import", m, outcome))
            elif outcome.kind == "accepted":
                survivors.append(m)
    import_s = time.monotonic() - started

    sample = _spread(survivors, args.profile_sample)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hil-fuzz-") as tmp:
        cache = Path(tmp) / "cache"
        for i, m in enumerate(sample):
            path = Path(tmp) / f"mutant{i}.tflite"
            path.write_bytes(m.data)
            outcome = profile_outcome(path, cache, args.timeout, args.board)
            profile_counts[(outcome.row(), m.strategy)] += 1
            if not outcome.clean:
                bad.append(("profile", m, outcome))
            console.print(f"[dim]{i + 1}/{len(sample)} {outcome.row()}: {m.label()}[/]",
                          overflow="ellipsis", no_wrap=True)
    profile_s = time.monotonic() - started

    strategies = [s for s in STRATEGIES if any(k[1] == s for k in import_counts)]
    n_import = sum(import_counts.values())
    console.print(_table(
        f"import: {n_import} mutants of {len(models)} models, seed {args.seed} "
        f"({import_s:.0f} s, {1000 * import_s / max(n_import, 1):.1f} ms each)",
        import_counts, strategies,
    ))
    if sample:
        console.print(_table(
            f"hil profile --board {args.board}: {len(sample)} mutants the importer accepted "
            f"({profile_s:.0f} s, {profile_s / len(sample):.1f} s each)",
            profile_counts, [s for s in strategies if any(k[1] == s for k in profile_counts)],
        ))
    for level, m, outcome in bad:
        console.print(f"[red]{level}: {outcome.kind}[/] {outcome.detail}\n    {m.label()}",
                      overflow="fold")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"{level}-{len(list(args.save.iterdir()))}.tflite").write_bytes(m.data)
    console.print(f"{len(bad)} not clean (traceback, signal, hang, QEMU left, outputs differ, "
                  "bad exit)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
