"""The inputs of a profiling run: seeded random data or the user's .npy files, checked against
the model's input tensors.

The input tensors come from the bench's own import of the model (`hil.graph.Graph`), never from
a reference interpreter: a model that LiteRT refuses, or one that would abort an interpreter,
still gets inputs, and no interpreter runs in the bench's process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hil.errors import InputError, ModelError

if TYPE_CHECKING:
    from hil.graph import Graph

ModelSource = str | Path | bytes


@dataclass(frozen=True)
class TensorSpec:
    """What one graph input or output expects: name, shape, element type and quantization.

    `scale`/`zero_point` are the tensor's own quantization for int8 tensors; for a float32 input
    they are those of the QUANTIZE that consumes it (the range the model was calibrated for),
    and None when there is none.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None = None
    zero_point: int | None = None

    def describe(self) -> str:
        return f"{self.name!r} {self.dtype.name}{list(self.shape)}"


def model_graph(model: ModelSource | Graph) -> Graph:
    """The bench's own import of `model` (any op; the support check is `hil.profile`'s job)."""
    from hil.graph import Graph
    from hil.importer import load_tflite, load_tflite_bytes

    if isinstance(model, Graph):
        return model
    if isinstance(model, bytes | bytearray):
        return load_tflite_bytes(bytes(model), check_support=False)
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist: check the path")
    return load_tflite(path, check_support=False)


def _spec(graph: Graph, index: int) -> TensorSpec:
    tensor = graph.tensor(index)
    scale = zero_point = None
    quant = tensor.quant
    if quant is None and tensor.dtype == "float32":
        # A float input's range is that of the QUANTIZE that consumes it.
        for op in graph.operators:
            if op.op == "QUANTIZE" and op.inputs and op.inputs[0] == index:
                quant = graph.tensor(op.outputs[0]).quant
                break
    if quant is not None and len(quant.scale) == 1:
        scale, zero_point = float(quant.scale[0]), int(quant.zero_point[0])
    return TensorSpec(tensor.name, tuple(tensor.shape), np.dtype(tensor.dtype), scale, zero_point)


def input_specs(model: ModelSource | Graph) -> list[TensorSpec]:
    """The model's graph inputs in order, from the bench's own import of it."""
    graph = model_graph(model)
    return [_spec(graph, t) for t in graph.inputs]


def output_specs(model: ModelSource | Graph) -> list[TensorSpec]:
    """The model's graph outputs in order, from the bench's own import of it."""
    graph = model_graph(model)
    return [_spec(graph, t) for t in graph.outputs]


def check_inputs(
    specs: list[TensorSpec], inputs: list[np.ndarray], sources: list[str] | None = None
) -> list[np.ndarray]:
    """Inputs converted to exactly what the model takes, or a InputError saying what differs.

    Lenient only where nothing can be lost: a missing leading batch dimension of 1 is added,
    any float array becomes float32, and an integer array becomes the input's integer type when
    every value fits (np.save of a Python list gives int64). `sources` names each input in
    messages (e.g. the .npy path).
    """
    names = sources or [f"input {i}" for i in range(len(inputs))]
    if len(inputs) != len(specs):
        expected = ", ".join(s.describe() for s in specs)
        raise InputError(
            f"the model has {len(specs)} input(s) ({expected}) but {len(inputs)} were given: "
            "give one array per model input, in order"
        )
    checked = []
    for spec, x, name in zip(specs, inputs, names, strict=True):
        x = np.asarray(x)
        got = f"{x.dtype.name}{list(x.shape)}"
        if x.shape != spec.shape:
            if (1, *x.shape) == spec.shape:
                x = x.reshape(spec.shape)
            else:
                raise InputError(
                    f"{name}: shape {list(x.shape)} does not fit model input {spec.describe()} "
                    f"(got {got}): save an array of shape {list(spec.shape)}"
                )
        if x.dtype != spec.dtype:
            x = _convert(x, spec, name, got)
        checked.append(np.ascontiguousarray(x))
    return checked


def _convert(x: np.ndarray, spec: TensorSpec, name: str, got: str) -> np.ndarray:
    if np.issubdtype(spec.dtype, np.floating) and np.issubdtype(x.dtype, np.floating):
        return x.astype(spec.dtype)
    if np.issubdtype(spec.dtype, np.integer) and np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(spec.dtype)
        if x.size == 0 or (x.min() >= info.min and x.max() <= info.max):
            return x.astype(spec.dtype)
        raise InputError(
            f"{name}: values {x.min()}..{x.max()} do not fit model input {spec.describe()} "
            f"(range {info.min}..{info.max}): quantize the data first"
        )
    raise InputError(
        f"{name}: element type {x.dtype.name} does not fit model input {spec.describe()} "
        f"(got {got}): save it with x.astype(np.{spec.dtype.name})"
    )


def load_npy_inputs(paths: list[str | Path], model: ModelSource | Graph) -> list[np.ndarray]:
    """Read one .npy per model input and check it against the model (see `check_inputs`)."""
    arrays = []
    for p in paths:
        path = Path(p)
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except FileNotFoundError:
            raise InputError(f"input file {path} does not exist: check the path") from None
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(
                f"input file {path} is not a readable .npy array ({exc}): write it with np.save"
            ) from exc
    return check_inputs(input_specs(model), arrays, [str(p) for p in paths])


def random_inputs(model: ModelSource | Graph, seed: int = 0) -> list[np.ndarray]:
    """One seeded random array per model input, covering the input's whole quantized range.

    Integer inputs are uniform over their type's full range. Float inputs are uniform over the
    real interval their QUANTIZE maps onto [-128, 127] (so every int8 code is exercised, none
    saturates by much); without a QUANTIZE consumer, uniform in [-1, 1].
    """
    rng = np.random.default_rng(seed)
    out = []
    for spec in input_specs(model):
        if np.issubdtype(spec.dtype, np.integer):
            info = np.iinfo(spec.dtype)
            x = rng.integers(info.min, info.max, size=spec.shape, endpoint=True)
        elif spec.scale is not None and spec.zero_point is not None:
            lo = spec.scale * (-128 - spec.zero_point)
            hi = spec.scale * (127 - spec.zero_point)
            x = rng.uniform(lo, hi, size=spec.shape)
        else:
            x = rng.uniform(-1.0, 1.0, size=spec.shape)
        out.append(x.astype(spec.dtype))
    return out
