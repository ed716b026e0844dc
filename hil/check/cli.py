"""`hil check CHECKS.toml`: run model regression guards and write CI reports.

Registered by `hil.cli.build_parser`. Imports stay light until the command runs.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hil.argtypes import positive_int
from hil.errors import HilError

if TYPE_CHECKING:
    from hil.check.result import CaseResult

EPILOG = """exit codes (the most serious case wins, in this order):
  1  a case could not be measured (build, target or model error; a target that timed out
     twice), or the checks file or baseline is unusable
  4  a model's outputs differ from the reference by more than its max_lsb_diff
  5  a model does not fit its board
  6  correctness was not checked (no reference interpreter could run a model)
  3  a budget (max_latency_ms, max_latency_counts, max_ram_kb, max_flash_kb) is exceeded
  7  a figure regressed beyond its tolerance over the baseline
  0  every case passed (flaky passes included: they are reported as flaky, not hidden)
  2  bad command line;  130  interrupted"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `check` subcommand to the `hil` parser."""
    p = sub.add_parser(
        "check",
        help="run the model checks of a TOML file (CI guard): table, JUnit XML, JSON, markdown",
        description="Profile every model x board of CHECKS.toml in parallel (each with its own "
        "QEMU), judge budgets, correctness and regressions against a baseline, print one table "
        "and write CI reports. See docs/ci.md.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checks", metavar="CHECKS.toml", help="the checks file (see docs/ci.md)")
    p.add_argument("--junit", metavar="PATH", help="write JUnit XML (Jenkins, GitLab, GitHub)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON (baseline format)")
    p.add_argument("--markdown", metavar="PATH", help="write a markdown summary (PR comment)")
    p.add_argument(
        "--baseline",
        metavar="OLD.json",
        help="compare with this earlier --json file (default: the checks file's 'baseline', "
        "when that file exists)",
    )
    p.add_argument(
        "--update-baseline",
        action="store_true",
        help="write this run's figures as the new baseline (to --baseline or the checks file's "
        "'baseline'); nothing is compared with the old one",
    )
    p.add_argument(
        "--jobs", type=positive_int, metavar="N", help="cases run at once (default: cores)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines and no table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The command: returns the exit code documented in EPILOG."""
    from rich.console import Console

    from hil.check import junit, markdown, table
    from hil.check.baseline import load_baseline
    from hil.check.config import load_checks
    from hil.check.result import apply_baseline, exit_code, results_document
    from hil.check.runner import run_checks

    checks = load_checks(args.checks)
    err = Console(stderr=True, soft_wrap=True)
    baseline_path = Path(args.baseline) if args.baseline else checks.baseline
    if args.update_baseline and baseline_path is None:
        raise HilError(
            "--update-baseline needs a file to write: pass --baseline PATH or set "
            f'baseline = "..." in {args.checks}'
        )
    baseline = None
    if not args.update_baseline and baseline_path is not None:
        if args.baseline or baseline_path.is_file():
            baseline = load_baseline(baseline_path)
        else:
            err.print(
                f"[yellow]no baseline at {_shown(baseline_path)} yet: nothing to compare with "
                "(write one with --update-baseline)[/]"
            )
            baseline_path = None

    def progress(result: CaseResult, n: int, total: int) -> None:
        if not args.quiet:
            err.print(f"[{n}/{total}] {result.case.id}: {result.status} ({result.seconds:.1f} s)")

    started = datetime.now().astimezone()
    t0 = time.monotonic()
    results = run_checks(checks.cases, jobs=args.jobs or checks.jobs, on_done=progress)
    seconds = time.monotonic() - t0
    if baseline is not None:
        apply_baseline(results, baseline)
    shown_baseline = _shown(baseline_path) if baseline is not None else None

    document = results_document(
        results,
        checks_file=str(args.checks),
        started=started,
        seconds=seconds,
        baseline=shown_baseline,
    )
    text = json.dumps(document, indent=2) + "\n"
    if args.json:
        _write(args.json, text, "the JSON results")
    if args.junit:
        try:
            junit.write(args.junit, results, started=started, seconds=seconds)
        except OSError as exc:
            raise HilError(f"cannot write the JUnit XML to {args.junit}: {exc}") from exc
    if args.markdown:
        tolerances = checks.tolerances if baseline is not None else None
        summary = markdown.render(results, baseline=shown_baseline, tolerances=tolerances)
        _write(args.markdown, summary, "the markdown summary")
    if not args.quiet:
        from hil.cli import _stdout_console

        title = f"hil check {args.checks}"
        _stdout_console().print(table.render(results, title=title, baseline=baseline is not None))

    code = exit_code(results)
    if args.update_baseline and baseline_path is not None:
        unmeasured = [r.case.id for r in results if not r.measured]
        if unmeasured:
            err.print(
                f"[red]baseline {_shown(baseline_path)} not written: {', '.join(unmeasured)} "
                "gave no figures (fix them first; the old baseline is kept)[/]"
            )
        else:
            _write(str(baseline_path), text, "the baseline")
            err.print(f"wrote the baseline {_shown(baseline_path)}")
    return code


def _write(path: str, text: str, what: str) -> None:
    try:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise HilError(f"cannot write {what} to {path}: {exc}") from exc


def _shown(path: Path | None) -> str:
    """A path as messages and reports show it: relative to the working directory if inside."""
    if path is None:
        return ""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
