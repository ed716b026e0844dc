"""The `own` backend: the project's own portable int8 kernels (firmware/kernels/)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hil import codegen
from hil.lowering import supported_ops

if TYPE_CHECKING:
    from hil.boards import Board
    from hil.codegen import GeneratedProject
    from hil.graph import Graph

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
        return codegen.generate(
            graph,
            None,
            out_dir,
            model_name=model_name,
            preserve_all=preserve_all,
            backend=self.name,
            backend_version=self.version(),
            numerics=self.numerics(board),
        )
