"""The reference side of the correctness check: TFLite's own reference kernels on the host.

The bench's kernels aim to match TFLite's *reference* kernels bit for bit (not the optimized
XNNPACK/ruy paths, which may round differently), so every comparison runs ai-edge-litert with
`OpResolverType.BUILTIN_REF`. This module also makes the inputs of a profiling run (seeded
random, or the user's .npy files checked against the model's input tensors).

ai-edge-litert is imported inside the functions: `import hil` must stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hil.errors import InputError, ModelError

if TYPE_CHECKING:
    from ai_edge_litert.interpreter import Interpreter

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


def _interpreter(model: ModelSource) -> Interpreter:
    """A single-threaded interpreter with TFLite's reference kernels, tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs: dict[str, object] = {
        "num_threads": 1,
        "experimental_op_resolver_type": OpResolverType.BUILTIN_REF,
    }
    if isinstance(model, bytes):
        kwargs["model_content"] = model
        where = "the model bytes"
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist: check the path")
        kwargs["model_path"] = str(path)
        where = str(path)
    try:
        interp = Interpreter(**kwargs)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(
            f"the TFLite reference interpreter cannot load {where}: {exc}. "
            "Is it a valid .tflite flatbuffer?"
        ) from exc
    return interp


def _specs(interp: Interpreter, details: list[dict]) -> list[TensorSpec]:
    """TensorSpecs of the tensors in `details`; a float input's range comes from its QUANTIZE.

    ai-edge-litert offers the graph's operators only through `_get_ops_details()`.
    """
    consumers: dict[int, list[dict]] = {}
    for op in interp._get_ops_details():
        for t in op["inputs"]:
            consumers.setdefault(int(t), []).append(op)
    tensors = {d["index"]: d for d in interp.get_tensor_details()}
    specs = []
    for d in details:
        q = d["quantization_parameters"]
        scale = zero_point = None
        if len(q["scales"]) == 1:
            scale, zero_point = float(q["scales"][0]), int(q["zero_points"][0])
        elif np.issubdtype(d["dtype"], np.floating):
            quantizers = [op for op in consumers.get(d["index"], []) if op["op_name"] == "QUANTIZE"]
            if quantizers:
                qq = tensors[int(quantizers[0]["outputs"][0])]["quantization_parameters"]
                scale, zero_point = float(qq["scales"][0]), int(qq["zero_points"][0])
        specs.append(
            TensorSpec(
                d["name"],
                tuple(int(s) for s in d["shape"]),
                np.dtype(d["dtype"]),
                scale,
                zero_point,
            )
        )
    return specs


def input_specs(model: ModelSource) -> list[TensorSpec]:
    """The model's graph inputs in order, as the interpreter sees them."""
    interp = _interpreter(model)
    return _specs(interp, interp.get_input_details())


def output_specs(model: ModelSource) -> list[TensorSpec]:
    """The model's graph outputs in order, as the interpreter sees them."""
    interp = _interpreter(model)
    return _specs(interp, interp.get_output_details())


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


def load_npy_inputs(paths: list[str | Path], model: ModelSource) -> list[np.ndarray]:
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


def random_inputs(model: ModelSource, seed: int = 0) -> list[np.ndarray]:
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
        elif spec.scale is not None:
            lo = spec.scale * (-128 - spec.zero_point)
            hi = spec.scale * (127 - spec.zero_point)
            x = rng.uniform(lo, hi, size=spec.shape)
        else:
            x = rng.uniform(-1.0, 1.0, size=spec.shape)
        out.append(x.astype(spec.dtype))
    return out


def reference_outputs(model: ModelSource, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of TFLite's reference kernels for `inputs` (checked as in `check_inputs`).

    The interpreter runs in a child process: some reference kernels abort the whole process on
    inputs they do not expect (SOFTMAX with 512 or more equal maxima in a row, seen with
    ai-edge-litert 2.3.0), and that must become an error report, not a dead bench.
    """
    import concurrent.futures
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    source = model if isinstance(model, bytes) else str(model)
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        try:
            return pool.submit(_reference_outputs_here, source, list(inputs)).result()
        except BrokenProcessPool as exc:
            raise ModelError(
                "the TFLite reference interpreter crashed on this model and these inputs, so "
                "the outputs cannot be checked; try other inputs (--input or --seed)"
            ) from exc


def _reference_outputs_here(model: ModelSource, inputs: list[np.ndarray]) -> list[np.ndarray]:
    interp = _interpreter(model)
    in_details = interp.get_input_details()
    inputs = check_inputs(_specs(interp, in_details), inputs)
    for d, x in zip(in_details, inputs, strict=True):
        interp.set_tensor(d["index"], x)
    try:
        interp.invoke()
    except RuntimeError as exc:
        raise ModelError(f"the TFLite reference interpreter failed on the model: {exc}") from exc
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]
