"""Corrupt .tflite flatbuffers on purpose: targeted edits for refusal tests, seeded mutants for
the model fuzzer (tests/fuzz/test_model_fuzz.py, benchmarks/fuzz_models.py).

Every edit is in place (same length, same layout) except truncation, so a targeted edit changes
exactly one thing: an operator's options type, a tensor's scale, zero point, quantized dimension
or name, the length of a vector, or one offset. `Layout` finds where those fields live by
walking the model with the `tflite` package's own accessors (a field's vtable slot is 4 + 2 *
its index in TFLite's schema).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import tflite

# vtable slots (4 + 2 * field index in schema.fbs) of the fields the mutations touch.
_MODEL_OPCODES, _MODEL_SUBGRAPHS, _MODEL_BUFFERS = 6, 8, 12
_SG_TENSORS, _SG_INPUTS, _SG_OUTPUTS, _SG_OPERATORS = 4, 6, 8, 10
_T_SHAPE, _T_TYPE, _T_BUFFER, _T_NAME, _T_QUANT = 4, 6, 8, 10, 12
_Q_SCALE, _Q_ZERO_POINT, _Q_DIM = 8, 10, 16
_OP_OPCODE, _OP_INPUTS, _OP_OUTPUTS, _OP_OPTIONS_TYPE, _OP_OPTIONS = 4, 6, 8, 10, 12
_BUF_DATA = 4


def _u32(data: bytes | bytearray, pos: int) -> int:
    return int(struct.unpack_from("<I", data, pos)[0])


def _field(tab: object, slot: int) -> int | None:
    """Absolute position of a table field, or None when the file leaves it out (default)."""
    o = tab.Offset(slot)  # type: ignore[attr-defined]
    return tab.Pos + o if o else None  # type: ignore[attr-defined]


def _vector(data: bytes, tab: object, slot: int) -> tuple[int, int] | None:
    """(position of the length prefix, element count) of a vector or string field."""
    pos = _field(tab, slot)
    if pos is None:
        return None
    start = pos + _u32(data, pos)
    return start, _u32(data, start)


@dataclass
class TensorFields:
    index: int
    name: str
    dtype: int
    is_constant: bool
    name_vec: tuple[int, int] | None = None
    scale_vec: tuple[int, int] | None = None
    zero_point_vec: tuple[int, int] | None = None
    quantized_dimension: int | None = None


@dataclass
class OperatorFields:
    index: int
    op: str
    inputs: list[int]
    options_type: int | None  # position of the builtin_options_type byte
    options_table: int | None  # position of the options table
    options_fields: list[tuple[int, int]] = field(default_factory=list)  # (position, size)


@dataclass
class Layout:
    """Where the interesting fields of a sound model are (positions into its bytes)."""

    data: bytes
    tensors: list[TensorFields]
    operators: list[OperatorFields]
    offsets: list[int]  # uoffset/soffset fields: corrupting one breaks the structure
    buffer_data: list[tuple[int, int]]  # (start, end) of constant data: flips there are benign

    @classmethod
    def of(cls, data: bytes) -> Layout:
        model = tflite.Model.GetRootAs(data, 0)
        offsets = [0]
        buffer_data: list[tuple[int, int]] = []

        def table(obj: object, *slots: int) -> None:
            offsets.append(obj._tab.Pos)  # type: ignore[attr-defined]  # soffset to vtable
            offsets.extend(p for s in slots if (p := _field(obj._tab, s)) is not None)  # type: ignore[attr-defined]

        def table_vector(obj: object, slot: int) -> None:
            vec = _vector(data, obj._tab, slot)  # type: ignore[attr-defined]
            if vec:
                offsets.extend(vec[0] + 4 + 4 * j for j in range(vec[1]))

        table(model, _MODEL_OPCODES, _MODEL_SUBGRAPHS, _MODEL_BUFFERS)
        for slot in (_MODEL_OPCODES, _MODEL_SUBGRAPHS, _MODEL_BUFFERS):
            table_vector(model, slot)
        for b in range(model.BuffersLength()):
            buf = model.Buffers(b)
            table(buf, _BUF_DATA)
            vec = _vector(data, buf._tab, _BUF_DATA)
            if vec and vec[1]:
                buffer_data.append((vec[0] + 4, vec[0] + 4 + vec[1]))
        names = tflite.utils.BUILTIN_OPCODE2NAME
        op_names = []
        for c in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(c)
            table(code)
            op_names.append(names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?"))
        sg = model.Subgraphs(0)
        table(sg, _SG_TENSORS, _SG_INPUTS, _SG_OUTPUTS, _SG_OPERATORS)
        table_vector(sg, _SG_TENSORS)
        table_vector(sg, _SG_OPERATORS)
        tensors = []
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            table(t, _T_SHAPE, _T_NAME, _T_QUANT)
            tf = TensorFields(
                i,
                (t.Name() or b"").decode("utf-8", "replace"),
                t.Type(),
                t.Buffer() != 0 and model.Buffers(t.Buffer()).DataLength() > 0,
                name_vec=_vector(data, t._tab, _T_NAME),
            )
            q = t.Quantization()
            if q is not None:
                table(q, _Q_SCALE, _Q_ZERO_POINT)
                tf.scale_vec = _vector(data, q._tab, _Q_SCALE)
                tf.zero_point_vec = _vector(data, q._tab, _Q_ZERO_POINT)
                tf.quantized_dimension = _field(q._tab, _Q_DIM)
            tensors.append(tf)
        operators = []
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            table(op, _OP_INPUTS, _OP_OUTPUTS, _OP_OPTIONS)
            opts = op.BuiltinOptions()
            of = OperatorFields(
                i,
                op_names[op.OpcodeIndex()],
                [int(x) for x in op.InputsAsNumpy()],
                _field(op._tab, _OP_OPTIONS_TYPE),
                opts.Pos if opts is not None else None,
            )
            if opts is not None:
                offsets.append(opts.Pos)
                vtable = opts.Pos - struct.unpack_from("<i", data, opts.Pos)[0]
                vt_size = struct.unpack_from("<H", data, vtable)[0]
                for slot in range(4, vt_size, 2):
                    o = struct.unpack_from("<H", data, vtable + slot)[0]
                    if o:
                        of.options_fields.append((opts.Pos + o, 4 if o % 4 == 0 else 1))
            operators.append(of)
        return cls(data, tensors, operators, sorted(set(offsets)), buffer_data)

    def quantized(self) -> list[TensorFields]:
        return [t for t in self.tensors if t.scale_vec and t.scale_vec[1]]

    def weights(self) -> list[TensorFields]:
        """Constant int8 filters of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED."""
        weighted = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
        ids = {op.inputs[1] for op in self.operators if op.op in weighted and len(op.inputs) > 1}
        return [
            t
            for t in self.quantized()
            if t.index in ids and t.is_constant and t.dtype == tflite.TensorType.INT8
        ]

    def tensor(self, name_or_index: str | int) -> TensorFields:
        for t in self.tensors:
            if name_or_index in (t.index, t.name):
                return t
        raise KeyError(name_or_index)


# --- targeted edits (same length) -----------------------------------------------------------


def set_scale(data: bytes, tensor: int, value: float, channel: int = 0) -> bytes:
    """Tensor `tensor`'s scale[channel] := value (float32)."""
    t = Layout.of(data).tensor(tensor)
    assert t.scale_vec and channel < t.scale_vec[1], f"tensor {tensor} has no scale {channel}"
    out = bytearray(data)
    struct.pack_into("<f", out, t.scale_vec[0] + 4 + 4 * channel, value)
    return bytes(out)


def set_zero_point(data: bytes, tensor: int, value: int, channel: int = 0) -> bytes:
    """Tensor `tensor`'s zero_point[channel] := value (int64)."""
    t = Layout.of(data).tensor(tensor)
    assert t.zero_point_vec and channel < t.zero_point_vec[1], f"tensor {tensor}: no zp"
    out = bytearray(data)
    struct.pack_into("<q", out, t.zero_point_vec[0] + 4 + 8 * channel, value)
    return bytes(out)


def set_vector_length(data: bytes, tensor: int, which: str, length: int) -> bytes:
    """Shorten tensor `tensor`'s "scale" or "zero_point" vector to `length` entries."""
    t = Layout.of(data).tensor(tensor)
    vec = t.scale_vec if which == "scale" else t.zero_point_vec
    assert vec and length <= vec[1], f"tensor {tensor}: {which} has fewer than {length} entries"
    out = bytearray(data)
    struct.pack_into("<I", out, vec[0], length)
    return bytes(out)


def set_options_type(data: bytes, operator: int, value: int) -> bytes:
    """Operator `operator`'s builtin_options_type byte := value."""
    op = Layout.of(data).operators[operator]
    assert op.options_type is not None, f"operator {operator} stores no options type"
    out = bytearray(data)
    out[op.options_type] = value & 0xFF
    return bytes(out)


def set_option_field(data: bytes, operator: int, slot: int, fmt: str, value: int) -> bytes:
    """Field `slot` (4 + 2 * schema index) of operator `operator`'s options table := value,
    packed as struct format `fmt`; the field must be stored in the file (not defaulted)."""
    op = Layout.of(data).operators[operator]
    assert op.options_table is not None, f"operator {operator} has no options table"
    tab = tflite.Conv2DOptions()  # any table class: only the generic accessors are used
    tab.Init(data, op.options_table)
    pos = _field(tab._tab, slot)
    assert pos is not None, f"operator {operator}'s options do not store slot {slot}"
    out = bytearray(data)
    struct.pack_into(fmt, out, pos, value)
    return bytes(out)


def set_name_bytes(data: bytes, tensor: int, raw: bytes) -> bytes:
    """Overwrite the start of tensor `tensor`'s name with `raw` (at most the name's length)."""
    t = Layout.of(data).tensor(tensor)
    assert t.name_vec and len(raw) <= t.name_vec[1], f"tensor {tensor}'s name is too short"
    out = bytearray(data)
    out[t.name_vec[0] + 4 : t.name_vec[0] + 4 + len(raw)] = raw
    return bytes(out)


# --- seeded mutants -------------------------------------------------------------------------

#: Scales a corrupt (or hostile) file may carry.
BAD_SCALES = (0.0, -0.5, float("nan"), float("inf"), float("-inf"), 1e-45, 1e-38, 1e-30, 1e30)
#: Zero points outside int8 (and some outside any type).
BAD_ZERO_POINTS = (-129, 128, 255, 256, -32769, 2**31, 2**40, -(2**63), 2**63 - 1)
#: The mutation strategies, each a function (layout, rng) -> (detail, bytes) or None.
STRATEGIES = (
    "byte_flip",
    "truncate",
    "zero_region",
    "offset",
    "options_type",
    "options_value",
    "scale",
    "zero_point",
    "quant_length",
    "quantized_dimension",
    "name",
)


@dataclass(frozen=True)
class Mutant:
    source: str  # model file name
    strategy: str
    detail: str
    data: bytes

    def label(self) -> str:
        return f"{self.source} {self.strategy}: {self.detail}"


def _structure_position(layout: Layout, rng: np.random.Generator) -> int:
    """A byte position outside constant data (where flips change the structure)."""
    n = len(layout.data)
    for _ in range(64):
        p = int(rng.integers(8, n))
        if not any(a <= p < b for a, b in layout.buffer_data):
            return p
    return int(rng.integers(8, n))


def _mutate(layout: Layout, strategy: str, rng: np.random.Generator) -> tuple[str, bytes] | None:
    data = layout.data
    out = bytearray(data)
    if strategy == "byte_flip":
        k = int(rng.integers(1, 9))
        where = [_structure_position(layout, rng) for _ in range(k)]
        for p in where:
            out[p] ^= int(rng.integers(1, 256))
        return f"flipped bytes at {where}", bytes(out)
    if strategy == "truncate":
        cut = int(rng.integers(0, len(data)))
        return f"cut to {cut} of {len(data)} bytes", bytes(data[:cut])
    if strategy == "zero_region":
        p = _structure_position(layout, rng)
        k = int(rng.integers(1, 65))
        out[p : p + k] = bytes(len(out[p : p + k]))
        return f"zeroed {k} bytes at {p}", bytes(out)
    if strategy == "offset":
        p = layout.offsets[int(rng.integers(len(layout.offsets)))]
        old = _u32(data, p)
        choice = int(rng.integers(5))
        new = [
            old + int(rng.choice([-8, -4, -2, -1, 1, 2, 4, 8])),
            0,
            int(rng.integers(0, 2**32)),
            len(data) - p + int(rng.integers(-16, 16)),
            old ^ (1 << int(rng.integers(32))),
        ][choice] % 2**32
        struct.pack_into("<I", out, p, new)
        return f"offset at {p}: {old} -> {new}", bytes(out)
    if strategy == "options_type":
        ops = [op for op in layout.operators if op.options_type is not None]
        if not ops:
            return None
        op = ops[int(rng.integers(len(ops)))]
        old = data[op.options_type]
        new = int(rng.integers(0, 256)) if rng.random() < 0.3 else int(rng.integers(0, 130))
        if new == old:
            new = (old + 1) % 256
        out[op.options_type] = new
        return f"operator {op.index} ({op.op}) options type {old} -> {new}", bytes(out)
    if strategy == "options_value":
        fields = [(op, f) for op in layout.operators for f in op.options_fields]
        if not fields:
            return None
        op, (p, size) = fields[int(rng.integers(len(fields)))]
        if size == 4:
            new = int(rng.choice([0, -1, 2**31 - 1, -(2**31), int(rng.integers(-4, 64))]))
            struct.pack_into("<i", out, p, new)
        else:
            new = int(rng.integers(0, 256))
            out[p] = new
        return f"operator {op.index} ({op.op}) options field at {p} := {new}", bytes(out)
    quantized = layout.quantized()
    if strategy == "scale" and quantized:
        t = quantized[int(rng.integers(len(quantized)))]
        assert t.scale_vec is not None
        c = int(rng.integers(t.scale_vec[1]))
        value = float(rng.choice(BAD_SCALES)) if rng.random() < 0.8 else float(
            np.frombuffer(rng.bytes(4), "<f4")[0]
        )
        struct.pack_into("<f", out, t.scale_vec[0] + 4 + 4 * c, value)
        return f"tensor {t.index} ({t.name}) scale[{c}] := {value!r}", bytes(out)
    if strategy == "zero_point":
        with_zp = [t for t in quantized if t.zero_point_vec and t.zero_point_vec[1]]
        if not with_zp:
            return None
        weights = layout.weights()
        pool = weights if weights and rng.random() < 0.3 else with_zp
        t = pool[int(rng.integers(len(pool)))]
        assert t.zero_point_vec is not None
        c = int(rng.integers(t.zero_point_vec[1]))
        value = int(rng.choice(BAD_ZERO_POINTS)) if t not in weights else int(rng.integers(-3, 4))
        struct.pack_into("<q", out, t.zero_point_vec[0] + 4 + 8 * c, value)
        return f"tensor {t.index} ({t.name}) zero_point[{c}] := {value}", bytes(out)
    if strategy == "quant_length" and quantized:
        t = quantized[int(rng.integers(len(quantized)))]
        which = "scale" if rng.random() < 0.5 or not t.zero_point_vec else "zero_point"
        vec = t.scale_vec if which == "scale" else t.zero_point_vec
        assert vec is not None
        if vec[1] == 0:
            return None
        new = int(rng.integers(0, vec[1]))
        struct.pack_into("<I", out, vec[0], new)
        return f"tensor {t.index} ({t.name}) {which} length {vec[1]} -> {new}", bytes(out)
    if strategy == "quantized_dimension":
        with_dim = [t for t in quantized if t.quantized_dimension is not None]
        if not with_dim:
            return None
        t = with_dim[int(rng.integers(len(with_dim)))]
        assert t.quantized_dimension is not None
        new = int(rng.choice([0, 1, 2, 3, 4, 7, -1, 2**31 - 1]))
        struct.pack_into("<i", out, t.quantized_dimension, new)
        return f"tensor {t.index} ({t.name}) quantized_dimension := {new}", bytes(out)
    if strategy == "name":
        named = [t for t in layout.tensors if t.name_vec and t.name_vec[1]]
        if not named:
            return None
        t = named[int(rng.integers(len(named)))]
        assert t.name_vec is not None
        start, length = t.name_vec
        k = int(rng.integers(1, min(length, 4) + 1))
        p = start + 4 + int(rng.integers(0, length - k + 1))
        raw = bytes(rng.choice([0x80, 0xC0, 0xFE, 0xFF, 0x00, 0x1B, 0xED], size=k).tolist())
        out[p : p + k] = raw
        return f"tensor {t.index} name bytes at {p} := {raw!r}", bytes(out)
    return None


def mutants(
    source: str, data: bytes, seed: int, count: int, strategies: tuple[str, ...] = STRATEGIES
) -> Iterator[Mutant]:
    """`count` seeded mutants of `data`, cycling through `strategies` (same seed, same mutants).

    A strategy that does not apply to this model (e.g. no stored quantized dimension) is
    replaced by a byte flip.
    """
    layout = Layout.of(data)
    rng = np.random.default_rng(seed)
    for i in range(count):
        strategy = strategies[i % len(strategies)]
        made = _mutate(layout, strategy, rng)
        if made is None:
            strategy = "byte_flip"
            made = _mutate(layout, strategy, rng)
            assert made is not None
        yield Mutant(source, strategy, *made)
