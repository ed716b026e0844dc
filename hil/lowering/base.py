"""What a per-op lowering gives the code generator: C statements, constant arrays, MACs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class CArray:
    """A constant array the generated C file defines `static const` (so it lands in flash)."""

    name: str
    ctype: str  # "int8_t", "int32_t", "int16_t", "uint8_t", "float"
    data: np.ndarray


@dataclass
class LoweredOp:
    """One operator as C: the statements that run it and the constants they use.

    `kernel` names the function that does the work (for the report; derived from `call` when
    empty); `note` says why a backend used it instead of its own kernel (a fallback).
    """

    call: str
    constants: list[CArray] = field(default_factory=list)
    macs: int = 0
    kernel: str = ""
    note: str = ""


def _no_scratch(nbytes: int) -> str:
    raise ValueError("this code generator plans no scratch buffers (the plan was given)")


@dataclass
class LowerContext:
    """How a lowering refers to tensors and names its constants without knowing the layout.

    `tensor_ref(i)` returns a C pointer expression for tensor i (arena offset for activations,
    the array name for constants); `prefix` is unique per operator (e.g. "l3") so constant names
    never collide. `scratch(nbytes)` asks for a scratch buffer of the operator's own, live only
    while it runs, and returns a `void *` C expression for it (`(void *)0` for 0 bytes); the
    planner places it after every operator is lowered. `arch` is the core class the own
    kernels are generated for ("dsp" or "scalar", hil.backends.own): when set, the conv-family
    lowerings specialise the call for it (docs/kernels.md); empty, they emit the plain call
    whose constants other backends reuse.
    """

    tensor_ref: Callable[[int], str]
    prefix: str
    scratch: Callable[[int], str] = _no_scratch
    arch: str = ""
