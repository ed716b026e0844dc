"""The bench's own model representation: what the importer produces and everything after consumes.

A `Graph` is a topologically ordered list of `Operator`s over `Tensor`s. It is deliberately
close to TFLite's semantics (int8 tensors, affine quantization, per-channel weights) but owns no
flatbuffer objects, so the planner, lowering and codegen never touch the file format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Tensor element types the bench understands, with their size in bytes.
DTYPE_SIZES: dict[str, int] = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4}


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point).

    Per-tensor when `scale` has one element; per-channel along `axis` otherwise (TFLite uses
    per-channel only for weights and biases).
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass
class Tensor:
    """One tensor. `data` is set for constants (weights, biases, shape operands), else None."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quantization | None = None
    data: np.ndarray | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * DTYPE_SIZES[self.dtype]


@dataclass
class Operator:
    """One operator: builtin op name as TFLite spells it (e.g. "CONV_2D"), tensor indices, options.

    `options` holds the op's builtin options with TFLite's field names in snake_case
    (e.g. stride_w, padding="SAME"/"VALID", fused_activation_function="RELU6", depth_multiplier).
    An optional input that the model leaves out (index -1 in TFLite) is stored as -1.
    """

    index: int
    op: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """A whole model: tensors, operators in execution order, graph inputs and outputs."""

    name: str
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    #: The .tflite flatbuffer the graph was read from (the importer sets it), for backends
    #: that run the model file itself (TFLM); None for a graph built in code.
    flatbuffer: bytes | None = field(default=None, repr=False, compare=False)

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def activations(self) -> list[Tensor]:
        """Non-constant tensors: those that need RAM at run time."""
        return [t for t in self.tensors if not t.is_constant]

    def lifetimes(self) -> dict[int, tuple[int, int]]:
        """First and last operator index at which each activation tensor is live.

        Graph inputs are live from before the first operator (-1); graph outputs stay live to the
        end (len(operators)), so the host can read them after inference.
        """
        end = len(self.operators)
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for t in self.inputs:
            first[t] = -1
            last[t] = -1
        for op in self.operators:
            for t in op.outputs:
                first.setdefault(t, op.index)
                last[t] = max(last.get(t, op.index), op.index)
            for t in op.inputs:
                if t < 0 or self.tensors[t].is_constant:
                    continue
                first.setdefault(t, op.index)
                last[t] = max(last.get(t, op.index), op.index)
        for t in self.outputs:
            last[t] = end
        return {t: (first[t], last[t]) for t in first}


def shape_text(shape: tuple[int, ...]) -> str:
    """A shape as people write it (`1x8x8x4`): one spelling for generated C comments and
    report tables, so the two can be compared by eye; a 0-d tensor is `scalar`."""
    return "x".join(map(str, shape)) or "scalar"
