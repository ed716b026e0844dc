"""Graph rewrites the own backend applies before lowering (docs/kernels.md).

PAD into the next convolution: a PAD (or PADV2 with the zero point as its value) that pads
only height and width and whose output only one CONV_2D or DEPTHWISE_CONV_2D reads is dropped;
the convolution reads the PAD's input instead, with the padding added to its own
(`Operator.options["hil_fused_pad"]` = rows before, columns before, rows after, columns
after). The own conv kernels treat every tap outside the input as the zero point, which is
what the PAD wrote, so the results are the same, without the padded copy in the arena and
without the time to write it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hil.graph import Graph, Operator

#: Where a conv's lowering finds the padding of a PAD fused into it.
FUSED_PAD = "hil_fused_pad"
_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _fusable_pad(graph: Graph, op: Operator) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) when `op` is a PAD the next conv can absorb, else None."""
    if op.op not in ("PAD", "PADV2") or len(op.inputs) < 2 or len(op.outputs) != 1:
        return None
    src, dst = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    pads_t = graph.tensor(op.inputs[1]) if op.inputs[1] >= 0 else None
    if pads_t is None or pads_t.data is None or src.dtype != "int8" or dst.dtype != "int8":
        return None
    if src.quant is None or dst.quant is None or src.quant != dst.quant or len(src.shape) != 4:
        return None
    pads = np.asarray(pads_t.data, np.int64).reshape(-1, 2)
    if pads.shape != (4, 2) or pads[0].any() or pads[3].any() or (pads < 0).any():
        return None  # batch or channel padding: not a conv's
    if op.op == "PADV2":
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            return None
        value = graph.tensor(op.inputs[2]).data
        if value is None or int(np.asarray(value).ravel()[0]) != dst.quant.zero_point[0]:
            return None
    return int(pads[1][0]), int(pads[2][0]), int(pads[1][1]), int(pads[2][1])


def fuse_pads(graph: Graph) -> Graph:
    """`graph` with every fusable PAD dropped into its convolution (operators renumbered);
    the graph itself when there is none."""
    readers: dict[int, list[Operator]] = {}
    for op in graph.operators:
        for t in op.inputs:
            if t >= 0:
                readers.setdefault(t, []).append(op)
    fused: dict[int, tuple[int, int, int, int]] = {}  # conv index -> its fused pad
    dropped: set[int] = set()
    rewired: dict[int, int] = {}  # conv index -> the PAD's input
    for op in graph.operators:
        pad = _fusable_pad(graph, op)
        if pad is None:
            continue
        out = op.outputs[0]
        users = readers.get(out, [])
        if out in graph.outputs or len(users) != 1:
            continue
        conv = users[0]
        if conv.op not in _CONVS or conv.inputs[0] != out or conv.index in fused:
            continue
        fused[conv.index] = pad
        rewired[conv.index] = op.inputs[0]
        dropped.add(op.index)
    if not fused:
        return graph
    operators: list[Operator] = []
    for op in graph.operators:
        if op.index in dropped:
            continue
        new = replace(op, index=len(operators), inputs=list(op.inputs),
                      options=dict(op.options))  # fmt: skip
        if op.index in fused:
            new.inputs[0] = rewired[op.index]
            new.options[FUSED_PAD] = fused[op.index]
        operators.append(new)
    return replace(graph, operators=operators)
