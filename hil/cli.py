"""The `hil` command line: profile a model on a board, list boards, plus plug-in subcommands.

Exit codes (stable, for CI):
  0  profiled; outputs match the reference(s) and every budget holds
  1  an error stopped the run (bad model, build or target failure, ...): message on stderr
  2  bad command line (argparse)
  3  a budget (--max-latency-ms, --max-ram-kb, --max-flash-kb) is exceeded
  4  the device's outputs differ from the reference by more than 1 LSB
  5  the model does not fit the board's flash or RAM
  6  profiled, but the outputs were NOT checked: no reference interpreter asked for
     (--reference) could run the model; the report and stderr say why
  130 interrupted (Ctrl-C)
When outputs disagree and a budget is exceeded too, 4 wins: a wrong model is worse than a slow one;
likewise 6 wins over 3: an unchecked model is not known to be right.

Heavy modules (numpy, TensorFlow's interpreter, the build) are imported only by the subcommand
that needs them, so `hil boards` and `hil --help` start instantly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from hil.argtypes import non_negative_int, positive_float, positive_int
from hil.errors import HilError, ModelTooLargeError

if TYPE_CHECKING:
    from rich.console import Console

    from hil.report import Report

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BUDGET = 3
EXIT_MISMATCH = 4
EXIT_TOO_LARGE = 5
EXIT_UNCHECKED = 6
EXIT_INTERRUPTED = 130

_EPILOG = """exit codes: 0 ok, 1 error, 2 usage, 3 budget exceeded, 4 outputs differ from the
reference by more than 1 LSB, 5 model does not fit the board, 6 outputs not checked (no
reference could run the model), 130 interrupted"""


def _stdout_console() -> Console:
    """A terminal keeps its width; a pipe or file gets wide lines instead of rich's 80 columns."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def _cmd_profile(args: argparse.Namespace) -> int:
    from rich.console import Console

    from hil.profile import profile
    from hil.reference import load_npy_inputs
    from hil.report import CHECK_FAILED, CHECK_NOT_DONE

    inputs = load_npy_inputs(args.input, args.model) if args.input else None
    budgets = {
        "max_latency_ms": args.max_latency_ms,
        "max_ram_kb": args.max_ram_kb,
        "max_flash_kb": args.max_flash_kb,
    }
    if args.backend == "all":
        return _profile_all_backends(args, inputs, budgets)
    report = profile(
        args.model,
        args.board,
        runs=args.runs,
        warmup=args.warmup,
        inputs=inputs,
        seed=args.seed,
        budgets=budgets,
        progress=not args.quiet,
        reference=args.reference,
        backend=args.backend,
        layers_diff=args.layers_diff,
        **_board_options(args),
    )
    if args.json == "-":
        sys.stdout.write(report.to_json() + "\n")
    elif args.json:
        try:
            Path(args.json).write_text(report.to_json() + "\n")
        except OSError as exc:
            raise HilError(f"cannot write the JSON report to {args.json}: {exc}") from exc
    if not args.quiet and args.json != "-":
        report.print(_stdout_console())
    err = Console(stderr=True)
    if report.check == CHECK_FAILED:
        err.print(
            f"[red]outputs differ from the reference ({report.reference}) by up to "
            f"{report.max_abs_diff:g} LSB (limit 1): the generated model is wrong[/]"
        )
        if report.check_note:
            err.print(report.check_note, style="red", markup=False)
        _print_first_bad_layer(err, report)
        return EXIT_MISMATCH
    over = [v for v in report.budgets if not v.ok]
    for v in over:
        err.print(f"[red]over budget: {v.name} {v.measured:.3f} {v.unit} > {v.limit:g} {v.unit}[/]")
    if report.check == CHECK_NOT_DONE:
        err.print(f"outputs NOT checked: {report.check_note}", style="yellow", markup=False)
        return EXIT_UNCHECKED
    if _print_first_bad_layer(err, report):
        return EXIT_MISMATCH
    return EXIT_BUDGET if over else EXIT_OK


def _print_first_bad_layer(err: Console, report: Report) -> bool:
    """--layers-diff: name the first layer more than 1 LSB off; whether there was one."""
    bad = report.layers_diff.first_bad if report.layers_diff is not None else None
    if bad is not None:
        err.print(
            f"[red]layer {bad.layer} ({bad.op}) is the first whose output differs from the "
            f"reference by more than 1 LSB ({bad.max_abs_diff:g})[/]"
        )
    return bad is not None


def _profile_all_backends(
    args: argparse.Namespace, inputs: object, budgets: dict[str, float | None]
) -> int:
    """--backend all: one run per available backend, one table; the worst exit code wins."""
    from rich.console import Console

    from hil.backends.compare import compare_backends
    from hil.report import CHECK_FAILED, CHECK_NOT_DONE

    result = compare_backends(
        args.model,
        args.board,
        runs=args.runs,
        warmup=args.warmup,
        inputs=inputs,
        seed=args.seed,
        budgets=budgets,
        progress=not args.quiet,
        reference=args.reference,
        layers_diff=args.layers_diff,
        **_board_options(args),
    )
    if args.json:
        import json

        text = json.dumps(result.to_dict(), indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            try:
                Path(args.json).write_text(text)
            except OSError as exc:
                raise HilError(f"cannot write the JSON report to {args.json}: {exc}") from exc
    if not args.quiet and args.json != "-":
        _stdout_console().print(result.render())
    err = Console(stderr=True)
    reports = result.reports.values()
    if not result.reports:
        err.print("no backend ran: " + "; ".join(f"{k}: {v}" for k, v in
                                                  {**result.skipped, **result.failed}.items()),
                  style="red", markup=False)
        return EXIT_ERROR
    if any(r.check == CHECK_FAILED for r in reports):
        bad = [name for name, r in result.reports.items() if r.check == CHECK_FAILED]
        err.print(f"[red]outputs differ from the reference with: {', '.join(bad)}[/]")
        return EXIT_MISMATCH
    if result.failed:
        return EXIT_ERROR
    if any(r.check == CHECK_NOT_DONE for r in reports):
        return EXIT_UNCHECKED
    return EXIT_BUDGET if any(not r.within_budget for r in reports) else EXIT_OK


def _board_options(args: argparse.Namespace) -> dict[str, object]:
    """--probe/--port/--hardware-map/--unlock/--uf2 as hil.profile keywords."""
    return {
        "probe": args.probe,
        "port": args.port,
        "hardware_map": args.hardware_map,
        "unlock": args.unlock,
        "uf2": args.uf2,
    }


def _add_board_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("physical boards (docs/bench-setup.md)")
    g.add_argument("--probe", metavar="ID", help="pyOCD unique id of the debug probe to use")
    g.add_argument("--port", metavar="DEV", help="serial port of the board (e.g. /dev/ttyACM0)")
    g.add_argument(
        "--hardware-map",
        metavar="PATH",
        help="hardware map: probe and port per board instance (default $HIL_HARDWARE_MAP or "
        "./hardware-map.toml; `hil doctor --write-map` writes one)",
    )
    g.add_argument(
        "--unlock",
        action="store_true",
        help="allow mass-erasing a locked nRF52 (erases the whole chip, bootloader included)",
    )
    g.add_argument(
        "--uf2",
        action="store_true",
        help="load a Pico by UF2 copy to its mounted RPI-RP2 drive instead of a probe",
    )


def _cmd_doctor(args: argparse.Namespace) -> int:
    from hil.doctor import PLACEHOLDER_TYPE, diagnose, render, write_map

    found = diagnose(Path(args.hardware_map) if args.hardware_map else None)
    print(render(found))
    if args.write_map:
        entries = write_map(found, Path(args.write_map), force=args.force)
        todo = sum(e.type == PLACEHOLDER_TYPE for e in entries)
        note = f"; set the board type of {todo} entr{'y' if todo == 1 else 'ies'}" if todo else ""
        print(f"wrote {args.write_map} with {len(entries)} board(s){note}")
    return EXIT_OK


def _cmd_build(args: argparse.Namespace) -> int:
    from hil.image_build import build_images

    files = build_images(args.model, args.board, args.out, backend=args.backend)
    for f in files:
        where = f" at 0x{f.address:08x}" if f.address is not None else ""
        print(f"{f.path}  {f.size:,} bytes{where}")
    return EXIT_OK


def _cmd_boards(args: argparse.Namespace) -> int:
    from rich.table import Table

    from hil.boards import list_boards

    table = Table(title="boards")
    for name in ("name", "core", "clock", "flash", "RAM", "runs on", "timing", "stands in for"):
        table.add_column(name, justify="right" if name in ("clock", "flash", "RAM") else "left")
    for b in list_boards():
        where = f"{b.run.kind} {b.run.machine or b.run.settings.get('target', '')}".strip()
        table.add_row(
            b.name,
            b.core,
            f"{b.clock_hz / 1e6:g} MHz",
            f"{b.flash_bytes // 1024:,} KiB",
            f"{b.ram_bytes // 1024:,} KiB",
            where,
            b.timing_source,
            b.stands_in_for or "-",
        )
    _stdout_console().print(table)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The full parser, plug-in subcommands from the `hil.commands` entry points included."""
    parser = argparse.ArgumentParser(
        prog="hil",
        description="Profile int8 TFLite models on Cortex-M boards or their QEMU stand-ins.",
        epilog=_EPILOG,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "profile",
        help="measure latency, RAM, flash and correctness of a .tflite on a board",
        description="Import, plan, generate C, build, run on the board (or QEMU) and compare "
        "its outputs with a reference interpreter (LiteRT or TFLM, in a child process).",
        epilog=_EPILOG,
    )
    p.add_argument("model", metavar="MODEL.tflite", help="int8 TFLite model")
    p.add_argument("--board", default="qemu-m4", help="board name (see `hil boards`)")
    p.add_argument("--runs", type=positive_int, default=10, help="measured runs (median)")
    p.add_argument("--warmup", type=non_negative_int, default=1, help="unmeasured runs first")
    p.add_argument(
        "--input",
        action="append",
        metavar="X.npy",
        help="input array, one per model input in order (default: seeded random inputs)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON ('-': stdout)")
    p.add_argument("--max-latency-ms", type=positive_float, metavar="X", help="latency budget")
    p.add_argument("--max-ram-kb", type=positive_float, metavar="Y", help="RAM budget in KiB")
    p.add_argument("--max-flash-kb", type=positive_float, metavar="Z", help="flash budget, KiB")
    p.add_argument(
        "--reference",
        choices=["auto", "litert", "tflm", "both"],
        default="auto",
        help="interpreter the outputs are checked against (default auto: LiteRT, or TFLM when "
        "LiteRT cannot run the model; both: check against both and report each)",
    )
    p.add_argument(
        "--backend",
        choices=["own", "cmsis-nn", "tflm", "all"],
        default="own",
        help="what runs the model: the bench's own kernels (default), CMSIS-NN or TFLM from "
        "your checkout (CMSIS_NN_ROOT, TFLM_ROOT), or all available ones side by side",
    )
    p.add_argument(
        "--layers-diff",
        action="store_true",
        help="also read every intermediate tensor back and compare it with the reference's; "
        "reports the first layer that differs (an image without tensor reuse: more RAM)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress and no table")
    p.set_defaults(func=_cmd_profile)

    _add_board_options(p)

    bd = sub.add_parser(
        "build",
        help="write a board's firmware for a model (ELF, .bin, .uf2 or .hex) without running it",
        description="Build MODEL for --board and write the ELF and the board's image files "
        "(a .bin; a .uf2 for the Pico; an Intel .hex at 0x10000 for the Nano) into --out.",
    )
    bd.add_argument("model", metavar="MODEL.tflite", help="int8 TFLite model")
    bd.add_argument("--board", required=True, help="board name (see `hil boards`)")
    bd.add_argument("--out", required=True, metavar="DIR", help="folder for the files")
    bd.add_argument("--backend", default="own", choices=["own", "cmsis-nn", "tflm"],
                    help="what runs the model (default: the bench's own kernels)")  # fmt: skip
    bd.set_defaults(func=_cmd_build)

    dr = sub.add_parser(
        "doctor",
        help="list toolchain, QEMU, debug probes and serial ports, and which board each is",
    )
    dr.add_argument("--hardware-map", metavar="PATH", help="hardware map to pair devices with")
    dr.add_argument("--write-map", metavar="PATH", help="write a starting hardware map there")
    dr.add_argument("--force", action="store_true", help="let --write-map overwrite a file")
    dr.set_defaults(func=_cmd_doctor)

    b = sub.add_parser("boards", help="list the boards the bench knows")
    b.set_defaults(func=_cmd_boards)

    from hil.check.cli import register as register_check  # `hil check` (its own exit codes)

    register_check(sub)

    for ep in entry_points(group="hil.commands"):
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken plug-in must not take the built-in commands down
            print(f"warning: skipping plug-in command {ep.name!r}: {exc}", file=sys.stderr)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ModelTooLargeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TOO_LARGE
    except HilError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
