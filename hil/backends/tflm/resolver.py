"""Which `MicroMutableOpResolver::AddX()` registers which builtin op, read from the checkout.

The table comes from the user's `micro_mutable_op_resolver.h` (each `AddX` method whose body
calls `AddBuiltin(BuiltinOperator_Y, ...)`), so it always matches the checkout. The generated
resolver registers exactly the ops of the graph: the list is computed from `graph.operators`
(`resolver_calls`), so an op the model has cannot be left out, and an op the checkout has no
method for is an UnsupportedOpError before anything is built.
"""

from __future__ import annotations

import re
from pathlib import Path

from hil.errors import UnsupportedOpError
from hil.graph import Graph

HEADER = "tensorflow/lite/micro/micro_mutable_op_resolver.h"

_METHOD = re.compile(r"\bTfLiteStatus\s+(Add\w+)\s*\(")
_BUILTIN = re.compile(r"\bAddBuiltin\s*\(\s*(?:tflite::)?BuiltinOperator_(\w+)\s*,")


def parse_resolver(text: str) -> dict[str, str]:
    """{TFLite op name: AddX method} from the text of micro_mutable_op_resolver.h.

    Each method's body runs to the next method; the first `AddBuiltin(BuiltinOperator_Y` in
    it names the op. `AddBuiltin` itself (the generic one) and custom-op methods (`AddCustom`
    bodies) register no builtin and are left out.
    """
    methods = list(_METHOD.finditer(text))
    table: dict[str, str] = {}
    for i, m in enumerate(methods):
        name = m.group(1)
        if name in ("AddBuiltin", "AddCustom"):
            continue
        end = methods[i + 1].start() if i + 1 < len(methods) else len(text)
        op = _BUILTIN.search(text, m.end(), end)
        if op is not None:
            table.setdefault(op.group(1), name)
    return table


def resolver_table(root: Path) -> dict[str, str]:
    """`parse_resolver` of the checkout at `root`."""
    return parse_resolver((root / HEADER).read_text(errors="replace"))


def model_ops(graph: Graph) -> list[str]:
    """The distinct ops of the graph, in the order they first appear."""
    return list(dict.fromkeys(op.op for op in graph.operators))


def resolver_calls(graph: Graph, table: dict[str, str], *, checkout: str = "") -> list[str]:
    """The AddX methods that register every op of `graph`, one per distinct op, in the order
    the ops first appear. UnsupportedOpError names the ops the checkout cannot register."""
    missing = [op for op in model_ops(graph) if op not in table]
    if missing:
        where = f" at {checkout}" if checkout else ""
        raise UnsupportedOpError(
            f"model {graph.name!r} uses {', '.join(missing)}, which the TFLM checkout{where} "
            f"cannot register (no MicroMutableOpResolver method in {HEADER}); use another "
            "backend, or a TFLM version that has the op"
        )
    return [table[op] for op in model_ops(graph)]
