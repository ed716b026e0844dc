"""Read a .tflite flatbuffer into a `Graph`, refusing what the bench cannot run.

The file is untrusted input: every structural problem (wrong identifier, truncation, offsets
out of range) becomes a `ModelError` that says what is wrong, never a flatbuffer traceback.
The checks on ops and types happen here, at import, so a user learns at once that a model
cannot run instead of meeting a failure deep in code generation.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import tflite

from hil.errors import ModelError, UnsupportedOpError
from hil.graph import Graph, Operator, Quantization, Tensor
from hil.importer import validate

#: Flatbuffers cannot address more than 2 GiB; anything bigger is not a TFLite model.
MAX_MODEL_BYTES = 2**31 - 1
#: Root offset (4 bytes) + file identifier (4 bytes) + the smallest table.
MIN_MODEL_BYTES = 16
FILE_IDENTIFIER = b"TFL3"

_TENSOR_TYPES: dict[int, str] = {
    tflite.TensorType.INT8: "int8",
    tflite.TensorType.UINT8: "uint8",
    tflite.TensorType.INT16: "int16",
    tflite.TensorType.INT32: "int32",
    tflite.TensorType.FLOAT32: "float32",
    # Read so that check_supported can refuse it with a reason (16x8 models' biases are int64);
    # no kernel takes it.
    tflite.TensorType.INT64: "int64",
}
_NUMPY_DTYPES = {
    "int8": "<i1",
    "uint8": "<u1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
    "float32": "<f4",
}


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_")}


_TENSOR_TYPE_NAMES = _enum_names(tflite.TensorType)
_OPTIONS_CLASSES = _enum_names(tflite.BuiltinOptions)
#: Option fields whose integer value is an enum; the graph stores the enum's name.
_ENUM_FIELDS: dict[str, dict[int, str]] = {
    "padding": _enum_names(tflite.Padding),
    "fused_activation_function": _enum_names(tflite.ActivationFunctionType),
    "weights_format": _enum_names(tflite.FullyConnectedOptionsWeightsFormat),
    "mode": _enum_names(tflite.MirrorPadMode),
    "quantized_bias_type": _TENSOR_TYPE_NAMES,
    "in_data_type": _TENSOR_TYPE_NAMES,
    "out_data_type": _TENSOR_TYPE_NAMES,
    "output_type": _TENSOR_TYPE_NAMES,
}
_ACCESSOR_SUFFIXES = ("Length", "IsNone", "AsNumpy", "BufferHasIdentifier")
_CORRUPTION_ERRORS = (IndexError, struct.error, ValueError, TypeError, OverflowError)

_FULL_INT8_HINT = (
    "convert it with full-integer post-training quantization: "
    "converter.optimizations = [tf.lite.Optimize.DEFAULT]; "
    "converter.representative_dataset = <a generator of sample inputs>; "
    "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]; "
    "converter.inference_input_type = converter.inference_output_type = tf.int8"
)


def load_tflite(path: str | Path, *, check_support: bool = True) -> Graph:
    """Import a .tflite file; the graph is named after the file stem.

    With `check_support` (the default) the model must use only ops the bench can lower and
    int8 activations; without it the graph is returned as long as the file itself is sound
    (useful to inspect a model the bench cannot run yet).
    """
    p = Path(path)
    if not p.is_file():
        what = "is a directory, not" if p.is_dir() else "does not exist; expected"
        raise ModelError(f"model file {p} {what} a .tflite file")
    _check_size(p.stat().st_size, str(p))
    return load_tflite_bytes(
        p.read_bytes(), name=p.stem, check_support=check_support, source=str(p)
    )


def load_tflite_bytes(
    data: bytes, name: str = "model", *, check_support: bool = True, source: str | None = None
) -> Graph:
    """Import a model held in memory (same checks as `load_tflite`).

    `source` is what error messages call the model (`load_tflite` passes the file path, so a
    user with several models of the same stem knows which one is broken); default `name`.
    """
    where = source or name
    _check_size(len(data), where)
    if data[4:8] != FILE_IDENTIFIER:
        raise ModelError(
            f"{where} is not a TFLite model: file identifier is {bytes(data[4:8])!r}, "
            f"expected {FILE_IDENTIFIER!r}; pass a .tflite flatbuffer from the TFLite converter"
        )
    try:
        graph = _Reader(bytes(data), name, where).graph()
    except ModelError:
        raise
    except _CORRUPTION_ERRORS as e:
        raise ModelError(
            f"{where} is corrupt or truncated ({type(e).__name__}: {e}); "
            "re-export it from the TFLite converter"
        ) from e
    if check_support:
        check_supported(graph)
    return graph


def _check_size(size: int, where: str) -> None:
    if size < MIN_MODEL_BYTES:
        raise ModelError(f"{where} is {size} bytes: too small to be a TFLite model (truncated?)")
    if size > MAX_MODEL_BYTES:
        raise ModelError(f"{where} is {size} bytes: larger than any TFLite flatbuffer can be")


def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", camel).lower()


def _options_dict(table: Any, options_type: int) -> dict[str, Any]:
    """Every scalar and vector field of a builtin-options table, by TFLite field name.

    Generic over the generated accessor classes, so a new TFLite schema field shows up without
    code here. Nested tables (only StableHLO ops have them) are left out.
    """
    class_name = _OPTIONS_CLASSES.get(options_type)
    if table is None or class_name is None or class_name == "NONE":
        return {}
    opts = getattr(tflite, class_name)()
    opts.Init(table.Bytes, table.Pos)
    out: dict[str, Any] = {}
    for attr, fn in vars(type(opts)).items():
        if (
            not callable(fn)
            or attr.startswith(("_", "GetRootAs", "Init"))
            or attr.endswith(_ACCESSOR_SUFFIXES)
        ):
            continue
        key = _snake(attr)
        if fn.__code__.co_argcount == 1:
            value = fn(opts)
        elif hasattr(opts, attr + "AsNumpy"):
            arr = getattr(opts, attr + "AsNumpy")()
            value = [] if isinstance(arr, int) else arr.tolist()
        else:
            continue
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        elif not isinstance(value, bool | int | float | list):
            continue
        if key in _ENUM_FIELDS and isinstance(value, int):
            value = _ENUM_FIELDS[key].get(value, value)  # an unknown value stays an int
        out[key] = value
    return out


class _Reader:
    """One pass over the flatbuffer; any accessor may raise on a damaged file."""

    def __init__(self, data: bytes, name: str, where: str) -> None:
        self.data = data
        self.name = name  # the graph's name
        self.where = where  # what messages call the model: its path when it has one
        self.model = tflite.Model.GetRootAs(data, 0)

    def _count(self, n: int, what: str) -> int:
        # A vector of tables needs at least 4 bytes per entry: a larger count is a bad offset,
        # and iterating it would take forever.
        if n < 0 or n * 4 > len(self.data):
            raise ModelError(f"{self.where} is corrupt: {what} count {n} exceeds the file size")
        return n

    def graph(self) -> Graph:
        m = self.model
        n_sub = self._count(m.SubgraphsLength(), "subgraph")
        if n_sub != 1:
            raise UnsupportedOpError(
                f"{self.where} has {n_sub} subgraphs; the bench runs single-subgraph models only "
                "(no control flow such as IF/WHILE/CALL_ONCE)"
            )
        sg = m.Subgraphs(0)
        tensors = [
            self._tensor(sg.Tensors(i), i) for i in range(self._count(sg.TensorsLength(), "tensor"))
        ]
        op_names = [
            self._op_name(m.OperatorCodes(i), i)
            for i in range(self._count(m.OperatorCodesLength(), "operator code"))
        ]
        operators = []
        for i in range(self._count(sg.OperatorsLength(), "operator")):
            top = sg.Operators(i)
            idx = top.OpcodeIndex()
            if idx >= len(op_names):
                raise ModelError(f"{self.where} is corrupt: operator {i} has opcode index {idx}")
            table, options_type = top.BuiltinOptions(), top.BuiltinOptionsType()
            validate.check_options_type(
                i, op_names[idx], options_type, table is not None, self.where
            )
            op = Operator(
                index=i,
                op=op_names[idx],
                inputs=self._indices(top.InputsAsNumpy(), len(tensors), f"operator {i}", True),
                outputs=self._indices(top.OutputsAsNumpy(), len(tensors), f"operator {i}"),
                options=_options_dict(table, options_type),
            )
            for key, value in op.options.items():
                if key in _ENUM_FIELDS and not isinstance(value, str):
                    raise ModelError(
                        f"{self.where} is corrupt: operator {i} ({op.op}) has {key} = {value}, "
                        "which no TFLite schema defines; re-export the model"
                    )
            validate.check_option_values(op, self.where)
            operators.append(op)
        graph = Graph(
            name=self.name,
            tensors=tensors,
            operators=operators,
            inputs=self._indices(sg.InputsAsNumpy(), len(tensors), "graph inputs"),
            outputs=self._indices(sg.OutputsAsNumpy(), len(tensors), "graph outputs"),
            flatbuffer=self.data,
        )
        validate.check_quantization(graph, self.where)
        return graph

    def _indices(self, arr: Any, n: int, what: str, optional: bool = False) -> list[int]:
        values = [] if isinstance(arr, int) else [int(v) for v in arr]
        lo = -1 if optional else 0
        for v in values:
            if not lo <= v < n:
                raise ModelError(f"{self.where} is corrupt: {what} refers to tensor {v} of {n}")
        return values

    def _op_name(self, code: Any, i: int) -> str:
        # Since schema 3a the real code lives in builtin_code and deprecated_builtin_code holds
        # at most 127; older files only set the deprecated field. The larger one is right.
        value = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = tflite.utils.BUILTIN_OPCODE2NAME.get(value)
        if name == "CUSTOM":
            custom = (code.CustomCode() or b"?").decode("utf-8", errors="replace")
            raise UnsupportedOpError(
                f"{self.where} uses the custom operator {custom!r}; the bench runs builtin "
                "TFLite operators only: re-export without custom ops"
            )
        if name is None:
            raise ModelError(
                f"{self.where}: operator code {i} has unknown builtin code {value} "
                "(corrupt file, or a newer TFLite schema than the bench knows)"
            )
        return name

    def _tensor(self, t: Any, index: int) -> Tensor:
        raw_name = t.Name() or b""
        try:
            name = raw_name.decode("utf-8") or f"tensor{index}"
        except UnicodeDecodeError as e:
            # Flatbuffer strings are UTF-8 by definition: a name that is not is a damaged (or
            # hand-made) file, and TFLite's own Python API fails on it.
            shown = raw_name.decode("utf-8", errors="backslashreplace")
            raise ModelError(
                f"{self.where} is corrupt: the name of tensor {index} is not valid UTF-8 "
                f"(byte {raw_name[e.start]:#04x} at {e.start} in {shown[:80]!r}); "
                "re-export the model from the TFLite converter"
            ) from None
        type_code = t.Type()
        dtype = _TENSOR_TYPES.get(type_code)
        if dtype is None:
            type_name = _TENSOR_TYPE_NAMES.get(type_code, str(type_code))
            raise UnsupportedOpError(
                f"tensor {index} ({name!r}) has type {type_name}; the bench runs int8 "
                f"activations with int8 weights and int32 biases: {_FULL_INT8_HINT}"
            )
        if t.Sparsity() is not None:
            raise UnsupportedOpError(
                f"tensor {index} ({name!r}) is sparse; the bench supports dense tensors only"
            )
        if t.IsVariable():
            raise UnsupportedOpError(
                f"tensor {index} ({name!r}) is a variable (stateful model); not supported"
            )
        shape_arr = t.ShapeAsNumpy()
        shape = () if isinstance(shape_arr, int) else tuple(int(d) for d in shape_arr)
        if any(d < 0 for d in shape):
            raise ModelError(f"{self.where} is corrupt: tensor {index} ({name!r}) shape {shape}")
        tensor = Tensor(index, name, shape, dtype, self._quant(t.Quantization(), index, name), None)
        tensor.data = self._data(t.Buffer(), tensor)
        return tensor

    def _quant(self, q: Any, index: int, name: str) -> Quantization | None:
        if q is None or q.ScaleLength() == 0:
            return None
        scale = tuple(float(s) for s in q.ScaleAsNumpy())
        zp_arr = q.ZeroPointAsNumpy()
        zero_point = () if isinstance(zp_arr, int) else tuple(int(z) for z in zp_arr)
        if len(zero_point) != len(scale):
            # TFLite refuses this too (one zero point per scale); reading missing ones as 0
            # would make the bench and the reference disagree about the tensor.
            raise ModelError(
                f"{self.where}: tensor {index} ({name!r}) has {len(scale)} scales and "
                f"{len(zero_point)} zero points (one per scale expected); the file is corrupt "
                "or was quantized wrongly: re-convert it with the TFLite converter"
            )
        return Quantization(scale, zero_point, int(q.QuantizedDimension()))

    def _data(self, buffer_index: int, tensor: Tensor) -> np.ndarray | None:
        if buffer_index == 0:  # buffer 0 is TFLite's "no data" sentinel
            return None
        n_buf = self.model.BuffersLength()
        if buffer_index >= n_buf:
            raise ModelError(
                f"{self.where} is corrupt: tensor {tensor.index} refers to buffer {buffer_index} "
                f"of {n_buf}"
            )
        buf = self.model.Buffers(buffer_index)
        offset, size = buf.Offset(), buf.Size()
        if offset > 1:  # models over 2 GiB keep buffers after the flatbuffer
            if offset + size > len(self.data):
                raise ModelError(f"{self.where} is truncated: buffer {buffer_index} ends past EOF")
            raw = self.data[offset : offset + size]
        else:
            arr = buf.DataAsNumpy()
            if isinstance(arr, int):
                return None
            raw = arr.tobytes()
        if not raw:
            return None
        expected = tensor.size * np.dtype(_NUMPY_DTYPES[tensor.dtype]).itemsize
        if len(raw) != expected:
            raise ModelError(
                f"{self.where} is corrupt: tensor {tensor.index} ({tensor.name!r}) of shape "
                f"{tensor.shape} {tensor.dtype} needs {expected} bytes, its buffer has {len(raw)}"
            )
        return (
            np.frombuffer(raw, dtype=_NUMPY_DTYPES[tensor.dtype])
            .astype(tensor.dtype)
            .reshape(tensor.shape)
        )


def check_supported(graph: Graph) -> None:
    """Raise if the graph needs an op or tensor type the bench has no kernel for."""
    from hil.lowering import supported_ops  # the lowering registry is the single source

    if not any(t.dtype == "int8" for t in graph.tensors):
        raise ModelError(
            f"{graph.name} is a float model (no int8 tensors); the bench runs int8 models: "
            + _FULL_INT8_HINT
        )
    supported = set(supported_ops())
    missing = [op for op in graph.operators if op.op not in supported]
    if missing:
        listed = ", ".join(f"{op.op} (operator {op.index})" for op in missing)
        raise UnsupportedOpError(
            f"{graph.name} uses operators the bench has no kernel for: {listed}. "
            f"Supported: {', '.join(sorted(supported))}"
        )
    producers = {t: op for op in graph.operators for t in op.outputs}
    consumers: dict[int, list[Operator]] = {}
    for op in graph.operators:
        for t in op.inputs:
            consumers.setdefault(t, []).append(op)
    # Activations first: their type says what kind of model this is (e.g. 16x8), which is a
    # better message than the int64 bias that comes with it.
    for t in sorted(graph.tensors, key=lambda t: t.is_constant):
        _check_tensor_type(graph, t, producers.get(t.index), consumers.get(t.index, []))


def _check_tensor_type(
    graph: Graph, t: Tensor, producer: Operator | None, consumers: list[Operator]
) -> None:
    where = f"tensor {t.index} ({t.name!r})"
    users = ", ".join(f"{op.op} (operator {op.index})" for op in consumers) or "no operator"
    if t.is_constant:
        if t.dtype in ("int8", "int32"):
            return
        kind = "float weights" if t.dtype == "float32" else f"{t.dtype} constants"
        raise UnsupportedOpError(
            f"{where}, used by {users}, holds {kind}; the bench needs int8 weights and int32 "
            f"biases: {_FULL_INT8_HINT}"
        )
    if t.dtype == "int8":
        if t.quant is None:
            raise ModelError(f"{where} is int8 without quantization parameters")
        if t.quant.per_channel:
            raise UnsupportedOpError(f"{where} is an activation with per-channel quantization")
        return
    # Float (or uint8) is fine only where the model converts at its edges.
    edge_in = t.index in graph.inputs and consumers and all(op.op == "QUANTIZE" for op in consumers)
    edge_out = (
        t.index in graph.outputs
        and producer is not None
        and (producer.op == ("DEQUANTIZE" if t.dtype == "float32" else "QUANTIZE"))
    )
    if t.dtype in ("float32", "uint8") and (edge_in or edge_out):
        return
    if t.dtype == "int16":
        hint = "int16 activations (16x8 quantization) are not supported: quantize to int8 ("
        raise UnsupportedOpError(f"{where}, used by {users}: {hint}{_FULL_INT8_HINT})")
    raise UnsupportedOpError(
        f"{where}, used by {users}, is a {t.dtype} activation; the bench runs int8 activations, "
        "with float or uint8 allowed only at the model's edges (QUANTIZE after an input, "
        f"DEQUANTIZE before an output): {_FULL_INT8_HINT}"
    )
