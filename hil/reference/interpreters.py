"""The reference interpreters the bench checks outputs against, behind one small protocol.

- `litert`: LiteRT (ai-edge-litert) with `OpResolverType.BUILTIN_REF`, TFLite's *reference*
  kernels (not the optimized XNNPACK/ruy paths, which may round differently); the bench's
  kernels aim to match these bit for bit.
- `tflm`: TensorFlow Lite Micro's own interpreter on the host (the `tflite-micro` package),
  i.e. TFLM's reference kernels. It runs models LiteRT refuses, e.g. per-tensor weights whose
  `quantized_dimension` is out of range for the tensor (TFLM ignores it for one scale).

`run` is only ever called in the worker child (`python -m hil.reference.worker`): interpreters
abort their process on some models and inputs. Importing this module imports neither package.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Protocol

import numpy as np


class Refused(Exception):
    """The interpreter cannot run this model (or is not installed): a clean, explained no."""


class ReferenceInterpreter(Protocol):
    """One reference: a name for `--reference`, a title for people, and a way to run a model."""

    name: str
    title: str
    package: str

    def run(self, model: bytes, inputs: list[np.ndarray], arena_bytes: int) -> list[np.ndarray]:
        """Outputs for `inputs`, in the model's output order; raises `Refused`."""
        ...


def package_version(package: str) -> str:
    """`package==version` as installed, or `package (not installed)`."""
    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return f"{package} (not installed)"


def _check_io(what: str, inputs: list[np.ndarray], details: list[tuple[tuple, np.dtype]]) -> None:
    """The bench checked inputs against its own import; refuse when the interpreter disagrees."""
    if len(inputs) != len(details):
        raise Refused(f"{what} sees {len(details)} model input(s), the bench gave {len(inputs)}")
    for i, (x, (shape, dtype)) in enumerate(zip(inputs, details, strict=True)):
        if tuple(x.shape) != tuple(shape) or x.dtype != dtype:
            raise Refused(
                f"{what} expects input {i} as {np.dtype(dtype).name}{list(shape)}, "
                f"the bench's import of the model says {x.dtype.name}{list(x.shape)}"
            )


class LiteRT:
    name = "litert"
    title = "LiteRT (BUILTIN_REF kernels)"
    package = "ai-edge-litert"

    @staticmethod
    def _interpreter(model: bytes, preserve_all: bool = False) -> Any:
        """A single-threaded interpreter on TFLite's reference kernels, tensors allocated."""
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError as exc:
            raise Refused(f"ai-edge-litert is not installed ({exc}): pip install it") from exc
        try:
            interp = Interpreter(
                model_content=model,
                num_threads=1,
                experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                experimental_preserve_all_tensors=preserve_all,
            )
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise Refused(f"LiteRT cannot load the model: {_one_line(exc)}") from exc
        return interp

    def run(self, model: bytes, inputs: list[np.ndarray], arena_bytes: int) -> list[np.ndarray]:
        interp = self._interpreter(model)
        in_details = interp.get_input_details()
        _check_io("LiteRT", inputs, [(tuple(d["shape"]), d["dtype"]) for d in in_details])
        try:
            for d, x in zip(in_details, inputs, strict=True):
                interp.set_tensor(d["index"], x)
            interp.invoke()
        except (ValueError, RuntimeError) as exc:
            raise Refused(f"LiteRT failed to run the model: {_one_line(exc)}") from exc
        return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]

    def run_tensors(
        self, model: bytes, inputs: list[np.ndarray], tensors: list[int]
    ) -> dict[int, np.ndarray]:
        """The given tensors (model file indices) after one run, intermediate ones included
        (`experimental_preserve_all_tensors`: nothing is overwritten): for --layers-diff."""
        interp = self._interpreter(model, preserve_all=True)
        try:
            for d, x in zip(interp.get_input_details(), inputs, strict=True):
                interp.set_tensor(d["index"], x)
            interp.invoke()
            return {t: interp.get_tensor(t).copy() for t in tensors}
        except (ValueError, RuntimeError) as exc:
            raise Refused(f"LiteRT failed to keep the model's tensors: {_one_line(exc)}") from exc


class TFLM:
    name = "tflm"
    title = "TFLM (reference kernels)"
    package = "tflite-micro"

    def run(self, model: bytes, inputs: list[np.ndarray], arena_bytes: int) -> list[np.ndarray]:
        try:
            from tflite_micro import runtime
        except ImportError as exc:
            raise Refused(f"tflite-micro is not installed ({exc}): pip install it") from exc
        try:
            interp = runtime.Interpreter.from_bytes(model, arena_size=arena_bytes)
        except (ValueError, RuntimeError) as exc:
            raise Refused(f"TFLM cannot load the model: {_one_line(exc)}") from exc
        details = []
        for i in range(len(inputs)):
            try:
                d = interp.get_input_details(i)
            except (ValueError, RuntimeError, IndexError) as exc:
                raise Refused(f"TFLM has no model input {i}: {_one_line(exc)}") from exc
            details.append((tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"])))
        _check_io("TFLM", inputs, details)
        try:
            for i, x in enumerate(inputs):
                interp.set_input(x, i)
            interp.invoke()
        except (ValueError, RuntimeError) as exc:
            raise Refused(f"TFLM failed to run the model: {_one_line(exc)}") from exc
        outputs = []
        while True:  # TFLM's Python API does not say how many outputs there are
            try:
                outputs.append(np.array(interp.get_output(len(outputs)), copy=True))
            except (ValueError, RuntimeError, IndexError):
                break
        return outputs


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """The interpreter's message on one line; LiteRT repeats one complaint per tensor, so a
    repetition is cut to its first instance and a count."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    head = text[:40]
    again = text.find(head, 1) if len(head) == 40 else -1
    if again > 0:
        text = f"{text[:again].rstrip()} (and {text.count(head) - 1} more like it)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: Every reference the bench knows, by the name `--reference` uses.
INTERPRETERS: dict[str, ReferenceInterpreter] = {i.name: i for i in (LiteRT(), TFLM())}
