"""Which op names the bench can lower, and the dispatch from an Operator to its lowering."""

from __future__ import annotations

from collections.abc import Callable

from hil.errors import UnsupportedOpError
from hil.graph import Graph, Operator
from hil.lowering.base import LowerContext, LoweredOp

LowerFn = Callable[[Graph, Operator, LowerContext], LoweredOp]

_LOWERINGS: dict[str, LowerFn] = {}


def register(*ops: str) -> Callable[[LowerFn], LowerFn]:
    """Decorator: this function lowers the given TFLite op names."""

    def deco(fn: LowerFn) -> LowerFn:
        for name in ops:
            _LOWERINGS[name] = fn
        return fn

    return deco


def supported_ops() -> list[str]:
    return sorted(_LOWERINGS)


def lower(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    fn = _LOWERINGS.get(op.op)
    if fn is None:
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}) has no kernel; supported: {', '.join(supported_ops())}"
        )
    return fn(graph, op, ctx)
