"""The `own` backend: the project's own portable int8 kernels (firmware/kernels/)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from hil import codegen
from hil.lowering import lower, supported_ops
from hil.lowering.fuse import fuse_pads

if TYPE_CHECKING:
    from hil.boards import Board
    from hil.codegen import GeneratedProject, LowerFn
    from hil.graph import Graph, Operator
    from hil.lowering.base import LowerContext, LoweredOp

#: The own kernels requantize like TFLite's reference kernels (docs/measurement.md).
NUMERICS = {"rounding": "double (TFLite reference: rounding doubling high multiply, then "
            "rounding right shift)"}


class OwnBackend:
    """The own kernels: every op through hil.lowering, the arena planned by hil.planner."""

    name = "own"
    title = "own kernels"
    env_var: str | None = None

    def unavailable(self) -> str | None:
        return None

    def version(self) -> str:
        from hil import __version__

        return __version__

    def flags(self, board: Board) -> tuple[str, ...]:
        return ()

    def numerics(self, board: Board) -> dict[str, str]:
        return dict(NUMERICS)

    def supported_ops(self) -> list[str]:
        return supported_ops()

    def generate(
        self,
        graph: Graph,
        out_dir: Path,
        *,
        board: Board,
        model_name: str,
        preserve_all: bool = False,
    ) -> GeneratedProject:
        if not preserve_all:  # --layers-diff reads every tensor, the padded ones too
            graph = fuse_pads(graph)
        return codegen.generate(
            graph,
            None,
            out_dir,
            model_name=model_name,
            lower_fn=specialised_lowering(kernel_arch(board)),
            preserve_all=preserve_all,
            backend=self.name,
            backend_version=self.version(),
            numerics=self.numerics(board),
        )


def kernel_arch(board: Board) -> str:
    """The own kernels' path on `board`: "dsp" where the CPU flags give the DSP extension
    (Cortex-M4/M7/M33 and later), else "scalar" (Cortex-M0/M0+/M3)."""
    from hil.backends.base import BackendUnavailable
    from hil.backends.cmsis_nn import core_class

    try:
        return core_class(board)
    except BackendUnavailable:  # MVE cores (Cortex-M55/M85) have the DSP extension too
        return "dsp"


def specialised_lowering(arch: str) -> LowerFn:
    """hil.lowering.lower with the core class in the context, so the conv-family calls are
    specialised for the board (docs/kernels.md)."""

    def lower_fn(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
        return lower(graph, op, replace(ctx, arch=arch))

    return lower_fn
