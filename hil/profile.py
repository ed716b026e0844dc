"""`hil.profile`: the one entry point that turns a .tflite and a board into a `Report`.

import -> plan -> fit check -> generate -> build (cached) -> run on the target -> compare with
the reference interpreter(s), run in a child process -> Report. The CLI, CI guards and the
optimizer all come through here.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hil.errors import HilError, ModelTooLargeError, TargetError
from hil.report import Budgets, LayerReport, LayersDiff, Report, TensorDiff

if TYPE_CHECKING:
    from rich.console import Console

    from hil.boards import Board
    from hil.codegen import GeneratedProject
    from hil.graph import Graph
    from hil.link import RunResult
    from hil.planner import ArenaPlan
    from hil.targets import Target

ModelSource = str | Path | bytes

#: Timing sources that count CPU cycles: the device's counts per second must be the clock.
_CYCLE_SOURCES = ("dwt-cyccnt", "systick-cycles")
#: How far a board's reported counter frequency may be from its board.toml clock.
_CLOCK_TOLERANCE = 0.01


def profile(
    model: ModelSource,
    board: str | Board = "qemu-m4",
    *,
    runs: int = 10,
    warmup: int = 1,
    inputs: list[np.ndarray] | None = None,
    seed: int = 0,
    budgets: Budgets | Mapping[str, float | None] | None = None,
    progress: bool = True,
    reference: str = "auto",
    on_step: Callable[[str], None] | None = None,
    backend: str = "own",
    layers_diff: bool = False,
    probe: str | None = None,
    port: str | None = None,
    hardware_map: str | Path | None = None,
    unlock: bool = False,
    uf2: bool = False,
) -> Report:
    """Measure `model` on `board`: latency, flash, RAM and correctness against a reference.

    `inputs` (one array per model input) default to seeded random data over each input's
    range. `budgets` (Budgets or a dict of max_latency_ms / max_ram_kb / max_flash_kb) only
    produce verdicts in the report; raising or exiting on them is the caller's choice.
    `reference` picks the interpreter(s) the outputs are checked against: "auto" (LiteRT, or
    TFLM where LiteRT cannot run the model), "litert", "tflm" or "both" (see
    `hil.reference.check`). When none can run the model the report's `check` is "not done"
    with the reason in `check_note`; the other figures are measured all the same.
    `on_step(name)` is called as each step starts ("import", "build for qemu-m4", "run on
    qemu-m4", ...), for callers that show progress themselves (`hil search`).
    `backend` picks what runs the model: "own" (the bench's kernels), "cmsis-nn" or "tflm"
    (from the user's checkout, `CMSIS_NN_ROOT` / `TFLM_ROOT`; see `hil.backends`).
    `layers_diff` builds an image that keeps every intermediate tensor, reads each back and
    compares it with the reference interpreter's (`Report.layers_diff`); its latency and RAM
    are those of that image, not of a deployment.
    On a physical board, `probe` (pyOCD unique id) and `port` (serial device) pick the board
    instance, else the hardware map (`hardware_map`, $HIL_HARDWARE_MAP or ./hardware-map.toml)
    or discovery does; `unlock` allows mass-erasing a locked nRF52; `uf2` loads a Pico by UF2
    copy instead of its probe (docs/bench-setup.md).
    Raises a HilError subclass for anything that stops the measurement.
    """
    from hil.backends import get_backend, project_dir_name, require_available
    from hil.boards import load_board
    from hil.build import build, cache_errors, prepare_cache_dir
    from hil.importer import load_tflite, load_tflite_bytes
    from hil.measure import (
        compare_outputs,
        convert_counts,
        elf_sizes,
        latency,
        model_static_ram,
    )
    from hil.reference import check as reference_check
    from hil.reference import check_inputs, input_specs, random_inputs
    from hil.targets import TargetOptions, open_target
    from hil.tools import bench_version

    if runs < 1:
        raise HilError(f"runs must be at least 1, got {runs}")
    if warmup < 0:
        raise HilError(f"warmup must be 0 or more, got {warmup}")
    if reference not in reference_check.CHOICES:
        raise HilError(
            f"unknown reference {reference!r}: choose one of {', '.join(reference_check.CHOICES)}"
        )
    limits = _budgets(budgets)
    steps = _Steps(progress, on_step)
    runner = get_backend(backend)
    require_available(runner)  # a missing checkout is reported now, not after the import
    target_board = board if not isinstance(board, str) else load_board(board)
    options = TargetOptions(probe=probe, port=port, unlock=unlock, uf2=uf2,
                            hardware_map=Path(hardware_map) if hardware_map else None)  # fmt: skip
    target = open_target(target_board, options)
    target.check_tools()  # a missing emulator is reported now, not after a build

    with steps("import"):
        if isinstance(model, bytes | bytearray):
            model_bytes = bytes(model)
            graph = load_tflite_bytes(model_bytes, name="model")
        else:
            graph = load_tflite(model)
            model_bytes = Path(model).read_bytes()
        if inputs is None:
            inputs = random_inputs(graph, seed)
        else:
            inputs = check_inputs(input_specs(graph), list(inputs))

    model_sha256 = hashlib.sha256(model_bytes).hexdigest()
    with steps("generate" if backend == "own" else f"generate ({backend})"):
        projects = prepare_cache_dir() / "projects"
        name = project_dir_name(runner, model_sha256, target_board, layers_diff=layers_diff)
        with cache_errors():
            project = runner.generate(
                graph, projects / name, board=target_board, model_name=graph.name,
                preserve_all=layers_diff,
            )  # fmt: skip
        check_fit(graph, project.arena_bytes, target_board, layers_diff=layers_diff)
    with steps(f"build for {target_board.name}"):
        built = build(
            project.out_dir, target_board, model_name=graph.name, libraries=project.libraries
        )
    sizes = elf_sizes(built.elf)

    with steps(f"run on {target_board.name}"):
        device = _run_on_target(target_board, target, built.elf, project, inputs, runs, warmup)
    board_facts = {**target_board.memory, **target.provenance()}
    lsbs = _output_lsbs(graph)

    def compare(expected: list[np.ndarray]) -> tuple[float, float]:
        comparison = compare_outputs(device.outputs, expected, lsbs)
        return comparison.exact_rate, comparison.max_abs_diff

    with steps(f"check against the reference ({reference})"):
        checked = reference_check.check_outputs(model_bytes, inputs, compare, reference)
    diff = None
    if layers_diff:
        with steps("compare intermediate tensors with the reference"):
            diff = _layers_diff(graph, project, model_bytes, inputs, device, reference)

    lat = latency(
        device.result.counts,
        target_board.timing_source,
        device.counts_per_second,
        target_board.clock_hz,
        target_board.stands_in_for or target_board.name,
    )
    # Converted as running totals, so rounding never makes the layers add up to more than the
    # inference (qemu-m0 counts 62.5 instructions per tick).
    ends = [
        convert_counts(
            c, target_board.timing_source, device.counts_per_second, target_board.clock_hz
        )[0]
        for c in itertools.accumulate(device.result.layer_counts)
    ]
    layer_counts = [b - a for a, b in zip([0, *ends], ends, strict=False)]
    layers = [
        LayerReport(info.index, info.op, info.output_shape, info.macs, counts, info.kernel,
                    info.note)
        for info, counts in zip(project.layers, layer_counts, strict=True)
    ]
    ram = sizes.static_ram_bytes + device.result.stack_bytes
    # The model's part (docs/measurement.md): its statics and its stack below the runtime's
    # frames; budgets use it.
    model_static = model_static_ram(built.elf.with_name("model.map"))
    model_ram = (sizes.static_ram_bytes if model_static is None else model_static) + max(
        0, device.result.stack_bytes - device.result.runtime_stack_bytes
    )
    return Report(
        board=target_board.name,
        model=graph.name,
        timing_source=target_board.timing_source,
        timing_note=lat.note,
        latency_counts=lat.counts,
        latency_ms=lat.ms,
        runs=runs,
        warmup=warmup,
        flash_bytes=sizes.flash_bytes,
        ram_bytes=ram,
        model_ram_bytes=model_ram,
        static_ram_bytes=sizes.static_ram_bytes,
        arena_bytes=project.arena_bytes,
        stack_bytes=device.result.stack_bytes,
        macs=project.macs,
        params=project.params,
        outputs_exact_rate=checked.exact_rate,
        max_abs_diff=checked.max_abs_diff,
        layers=layers,
        budgets=limits.verdicts(lat.ms, model_ram, sizes.flash_bytes),
        latency_counts_per_run=lat.per_run,
        build_seconds=built.seconds,
        cached=built.cached,
        model_id=project.model_id,
        board_flash_bytes=target_board.flash_bytes,
        board_ram_bytes=target_board.ram_bytes,
        model_sha256=model_sha256,
        bench_version=bench_version(),
        compiler_version=built.compiler,
        build_flags=list(built.compile_flags),
        target_version=target.version(),
        reference=checked.reference,
        check=checked.status,
        check_note=checked.note,
        reference_checks=checked.checks,
        backend=project.backend,
        backend_version=project.backend_version,
        backend_flags=list(project.backend_flags),
        numerics=dict(project.numerics),
        arena_used_bytes=project.arena_used_bytes,
        scratch_bytes=project.scratch_bytes,
        layers_diff=diff,
        clock_hz=target_board.clock_hz,
        board_serial=board_facts.pop("serial", ""),
        board_details=board_facts,
    )


def check_fit(
    graph: Graph, arena: ArenaPlan | int, board: Board, *, layers_diff: bool = False
) -> None:
    """Refuse, before any build, a model whose weights or activations alone exceed the board.

    `arena` is the plan or its size in bytes. This is a lower bound (runtime code, stack and
    kernel buffers come on top); the linker catches the rest with the exact figure.
    """
    arena_bytes = arena if isinstance(arena, int) else arena.arena_bytes
    weights = sum(t.nbytes for t in graph.tensors if t.is_constant)
    problems = []
    if weights > board.flash_bytes:
        problems.append(
            f"{weights / 1024:,.1f} KiB of weights but {board.name} has "
            f"{board.flash_bytes / 1024:,.0f} KiB of flash"
        )
    if arena_bytes > board.ram_bytes:
        problems.append(
            f"a {arena_bytes / 1024:,.1f} KiB activation arena but {board.name} has "
            f"{board.ram_bytes / 1024:,.0f} KiB of RAM"
        )
    if problems:
        hint = "Choose a larger board (`hil boards`) or a smaller model."
        if layers_diff and arena_bytes > board.ram_bytes:
            hint = (
                "--layers-diff keeps every intermediate tensor, so its arena is the sum of all "
                "of them: run it on a board with more RAM, or profile without --layers-diff."
            )
        raise ModelTooLargeError(
            f"model {graph.name!r} does not fit: it needs {' and '.join(problems)}. {hint}"
        )


def _budgets(value: Budgets | Mapping[str, float | None] | None) -> Budgets:
    try:
        return Budgets.coerce(value)
    except (TypeError, ValueError) as exc:
        raise HilError(f"bad budgets: {exc}") from exc


def _output_lsbs(graph: Graph) -> list[float | None]:
    """Per graph output, the step that one LSB stands for in a float output (else None).

    A float32 output is the DEQUANTIZE of an int8 tensor; its difference is counted in steps
    of that tensor's scale, so "1 LSB" means the same for int8 and float outputs.
    """
    producer = {t: op for op in graph.operators for t in op.outputs}
    lsbs: list[float | None] = []
    for t in graph.outputs:
        tensor = graph.tensor(t)
        op = producer.get(t)
        if tensor.dtype == "float32" and op is not None and op.op == "DEQUANTIZE":
            q = graph.tensor(op.inputs[0]).quant
            lsbs.append(float(q.scale[0]) if q is not None else None)
        else:
            lsbs.append(None)
    return lsbs


@dataclass(frozen=True)
class _DeviceRun:
    """What one session on the target gave back."""

    result: RunResult
    outputs: list[np.ndarray]
    counts_per_second: int
    #: --layers-diff: the intermediate tensors read back (project.debug_tensors order).
    debug: list[np.ndarray]


def _run_on_target(
    board: Board,
    target: Target,
    elf: Path,
    project: GeneratedProject,
    inputs: list[np.ndarray],
    runs: int,
    warmup: int,
) -> _DeviceRun:
    """Start the target with `elf`, check it runs this model, feed inputs, run, read outputs."""
    from hil.link import DeviceLink

    # The link's timeout bounds one inference (and every other request); each target kind
    # knows how slow it can be (QEMU on a loaded host, a board at its own clock).
    timeout = target.link_timeout(project.macs)
    with (
        target.session(elf) as url,
        DeviceLink(url, timeout=timeout, baudrate=board.serial.baudrate, exclusive=True) as link,
    ):
        info = link.expect_model(project.model_id)
        _check_clock(board, info.counts_per_second)
        for i, x in enumerate(inputs):
            link.write_input(i, np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<")).tobytes())
        result = link.run(runs, warmup)
        if not result.inputs_intact:
            raise TargetError(
                "the model overwrote its own inputs while running on the target, so repeated "
                "runs did not see the same data: an arena planning or kernel bug"
            )
        outputs = [
            np.frombuffer(link.read_output(i), np.dtype(io.dtype).newbyteorder("<")).reshape(
                io.shape
            )
            for i, io in enumerate([*project.outputs, *project.debug_tensors])
        ]
    n = len(project.outputs)
    return _DeviceRun(result, outputs[:n], info.counts_per_second, outputs[n:])


def _check_clock(board: Board, counts_per_second: int) -> None:
    """A board that counts cycles reports its clock as the counter's frequency (the Pico's
    port measures it against its 1 MHz TIMER): a clock other than board.toml's means the
    PLL or clock set-up failed, and every latency in ms would be wrong."""
    if board.timing_source not in _CYCLE_SOURCES:
        return
    if abs(counts_per_second - board.clock_hz) > _CLOCK_TOLERANCE * board.clock_hz:
        raise TargetError(
            f"{board.name} runs its CPU at {counts_per_second / 1e6:.3f} MHz, not the "
            f"{board.clock_hz / 1e6:g} MHz of its board.toml: the clock set-up in its port "
            "failed (crystal, PLL); the latencies would be wrong, so nothing was measured"
        )


def _layers_diff(
    graph: Graph,
    project: GeneratedProject,
    model_bytes: bytes,
    inputs: list[np.ndarray],
    device: _DeviceRun,
    reference: str,
) -> LayersDiff:
    """Every operator output the device kept, against the reference's intermediate tensors
    (LiteRT keeps them all with experimental_preserve_all_tensors), in operator order."""
    from hil.errors import ReferenceUnavailable
    from hil.measure import compare_outputs
    from hil.reference import reference_tensors

    name = "litert" if reference in ("auto", "litert", "both") else reference
    got = {io.tensor: x for io, x in zip(project.debug_tensors, device.debug, strict=True)}
    got.update(zip(graph.outputs, device.outputs, strict=True))
    producer = {t: op for op in graph.operators for t in op.outputs}
    wanted = sorted((t for t in got if t in producer), key=lambda t: (producer[t].index, t))
    try:
        expected = reference_tensors(model_bytes, inputs, wanted, name)
    except ReferenceUnavailable as exc:
        return LayersDiff(name, [], str(exc))
    tensors: list[TensorDiff] = []
    for t in wanted:
        if t not in expected:
            continue
        op = producer[t]
        lsb = _tensor_lsb(graph, t)
        cmp = compare_outputs([got[t]], [expected[t]], [lsb])
        tensors.append(
            TensorDiff(op.index, op.op, t, graph.tensor(t).name, cmp.max_abs_diff, cmp.exact_rate)
        )
    return LayersDiff(name, tensors)


def _tensor_lsb(graph: Graph, t: int) -> float | None:
    """One LSB of a float tensor is its producer's int8 input scale (DEQUANTIZE), else None."""
    tensor = graph.tensor(t)
    if tensor.dtype != "float32":
        return None
    for op in graph.operators:
        if t in op.outputs and op.op == "DEQUANTIZE":
            q = graph.tensor(op.inputs[0]).quant
            return float(q.scale[0]) if q is not None else None
    return None


class _Steps:
    """Progress for the slow steps: a spinner while one runs, a line with its time after."""

    def __init__(self, enabled: bool, on_step: Callable[[str], None] | None = None) -> None:
        self._on_step = on_step
        self._console: Console | None = None
        if enabled:
            from rich.console import Console

            self._console = Console(stderr=True)

    @contextlib.contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        if self._on_step is not None:
            self._on_step(what)
        if self._console is None:
            yield
            return
        start = time.perf_counter()
        with self._console.status(f"{what} ..."):
            yield
        self._console.print(f"[dim]{what}: {time.perf_counter() - start:.1f} s[/]")
