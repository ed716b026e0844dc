"""Static activation arena: every activation tensor gets a fixed byte offset in one buffer.

The device has no allocator, so the whole memory plan is made here, offline. Two tensors may
share bytes when their lifetimes (`Graph.lifetimes()`, inclusive operator ranges) do not
overlap. Because an operator's inputs and outputs are all live at that operator's index, an
output never shares bytes with its own inputs; the exceptions are a pure reshape whose input
dies there, which is aliased onto its input so the shape lowering sees equal pointers and
emits no copy, and an int8 table-lookup op (IN_PLACE_OPS: activations, int8 requantize) whose
input dies there, which the lookup kernel then runs in place.

Graph inputs stay live to the end of the inference, not just to their last reader: the
device runs the model many times on one set of inputs (warm-up, then N timed runs), so
nothing may overwrite them.

Scratch buffers (working memory a kernel asks for, e.g. CMSIS-NN's im2col buffer) are planned
like tensors that live only for their operator: the lowering runs first and asks for them, then
the plan places them among the activations, so a scratch buffer reuses bytes of tensors that
are dead at that operator.

`preserve_all=True` gives every activation its own bytes for the rest of the inference (no
reuse, no aliases), so each intermediate tensor can be read back after a run (`hil profile
--layers-diff`); the arena is then the sum of all activations.

Placement is greedy: buffers sorted by size (largest first), each put at the lowest aligned
offset that clears every already placed buffer it is live together with (first fit on the
timeline). Large tensors dominate the arena, so placing them first keeps the peak low. The
same first fit also runs in a few other orders (by first use, by lifetime, by lifetime times
size) and the smallest arena wins; ties keep the size order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hil.graph import Graph

#: Byte alignment of every arena offset: enough for word loads and for 16-byte vector accesses.
ARENA_ALIGNMENT = 16

#: Operators that only reinterpret their input's shape: the bytes are identical.
RESHAPE_OPS = frozenset({"RESHAPE", "EXPAND_DIMS", "SQUEEZE"})
#: int8 -> int8 operators lowered to one table lookup per element (hil_lookup_table_s8, which
#: allows in == out), for every backend: their output may take the bytes of a dying input.
IN_PLACE_OPS = frozenset({"LOGISTIC", "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1", "QUANTIZE"})


@dataclass(frozen=True)
class ArenaPlan:
    """Where each activation tensor lives in the arena.

    `offsets` maps tensor index to byte offset; `sizes` gives each tensor's byte count and
    `lifetimes` its inclusive operator range, so a plan can be checked on its own
    (`conflicts()`). `aliases` maps a reshape output to the tensor it shares bytes with.
    `scratch_offsets` / `scratch_sizes` map an operator index to its scratch buffer (live at
    that operator only).
    """

    offsets: dict[int, int]
    arena_bytes: int
    alignment: int
    sizes: dict[int, int] = field(default_factory=dict)
    lifetimes: dict[int, tuple[int, int]] = field(default_factory=dict)
    aliases: dict[int, int] = field(default_factory=dict)
    scratch_offsets: dict[int, int] = field(default_factory=dict)
    scratch_sizes: dict[int, int] = field(default_factory=dict)

    @property
    def tensor_bytes(self) -> int:
        """Sum of all activation sizes: the arena a plan without any reuse would need."""
        return sum(self.sizes[t] for t in self.sizes if t not in self.aliases)

    @property
    def scratch_bytes(self) -> int:
        """Sum of all scratch buffers (each lives for one operator only)."""
        return sum(self.scratch_sizes.values())

    def conflicts(self) -> list[tuple[int, int]]:
        """Pairs of distinct, non-aliased buffers that are live together and overlap in bytes.

        Tensors are named by their index, the scratch buffer of operator k by -(k + 1). An
        empty list means the plan is sound; the tests and the code generator rely on it.
        """
        buffers = {t: (self.offsets[t], self.sizes[t], self.lifetimes[t]) for t in self.offsets}
        for k, off in self.scratch_offsets.items():
            buffers[_scratch_key(k)] = (off, self.scratch_sizes[k], (k, k))
        bad: list[tuple[int, int]] = []
        items = sorted(buffers)
        for n, a in enumerate(items):
            off_a, size_a, life_a = buffers[a]
            for b in items[n + 1 :]:
                if a >= 0 and _alias_root(self.aliases, a) == _alias_root(self.aliases, b):
                    continue
                off_b, size_b, life_b = buffers[b]
                if _live_together(life_a, life_b) and _bytes_overlap(off_a, size_a, off_b, size_b):
                    bad.append((a, b))
        return bad


def _first_fit(
    order: list[int], sizes: Mapping[int, int], span: Mapping[int, tuple[int, int]],
    alignment: int,
) -> dict[int, int]:
    """Offsets of the buffers placed in `order`, each at the lowest aligned offset that clears
    every buffer placed before it that is live at the same time."""
    placed: list[tuple[int, int, tuple[int, int]]] = []  # (offset, size, lifetime)
    offsets: dict[int, int] = {}
    for r in order:
        size = _align(sizes[r], alignment)
        busy = sorted((off, sz) for off, sz, lt in placed if sz and _live_together(lt, span[r]))
        offset = 0
        for off, sz in busy:
            if offset + size <= off:
                break
            offset = max(offset, _align(off + sz, alignment))
        offsets[r] = offset
        placed.append((offset, size, span[r]))
    return offsets


def _scratch_key(op_index: int) -> int:
    return -(op_index + 1)


def _alias_root(aliases: dict[int, int], t: int) -> int:
    """The tensor whose bytes `t` uses: itself, or the end of its chain of reshape aliases."""
    while t in aliases:
        t = aliases[t]
    return t


def _live_together(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _bytes_overlap(off_a: int, size_a: int, off_b: int, size_b: int) -> bool:
    if size_a == 0 or size_b == 0:
        return False
    return off_a < off_b + size_b and off_b < off_a + size_a


def _align(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def _reshape_aliases(graph: Graph, life: dict[int, tuple[int, int]]) -> dict[int, int]:
    """Reshape outputs that can share their input's bytes: output index -> input index.

    Only when the input is an activation that dies at the reshape (nobody reads the old shape
    afterwards) and both hold the same number of bytes.
    """
    aliases: dict[int, int] = {}
    for op in graph.operators:
        in_place = op.op in IN_PLACE_OPS
        if not (in_place or op.op in RESHAPE_OPS) or not op.inputs or len(op.outputs) != 1:
            continue
        src, dst = op.inputs[0], op.outputs[0]
        if src < 0 or src not in life or dst not in life or src == dst:
            continue
        if life[src][1] != op.index or life[dst][0] != op.index:
            continue
        if graph.tensor(src).nbytes != graph.tensor(dst).nbytes:
            continue
        if in_place and not graph.tensor(src).dtype == graph.tensor(dst).dtype == "int8":
            continue
        aliases[dst] = src
    return aliases


def activation_lifetimes(graph: Graph, *, preserve_all: bool = False) -> dict[int, tuple[int, int]]:
    """Each activation's inclusive operator range as the plan uses it: graph inputs live to the
    end (repeated runs read them again), and with `preserve_all` every activation does."""
    life = graph.lifetimes()
    end = len(graph.operators)
    for t in life if preserve_all else graph.inputs:
        life[t] = (life[t][0], end)
    return life


def aliases_for(graph: Graph, *, preserve_all: bool = False) -> dict[int, int]:
    """The reshape aliases `plan` will make (output -> input), known before any sizes are: a
    code generator can name each tensor's buffer before the plan exists."""
    if preserve_all:
        return {}
    return _reshape_aliases(graph, activation_lifetimes(graph))


def alias_root(aliases: Mapping[int, int], t: int) -> int:
    """The tensor whose bytes `t` uses: itself, or the end of its chain of reshape aliases."""
    return _alias_root(dict(aliases), t)


def plan(
    graph: Graph,
    alignment: int = ARENA_ALIGNMENT,
    *,
    scratch: Mapping[int, int] | None = None,
    preserve_all: bool = False,
) -> ArenaPlan:
    """Assign arena offsets to all activation tensors of `graph` and to the scratch buffers
    (`scratch`: operator index -> bytes) its kernels asked for (see the module docstring)."""
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"arena alignment must be a power of two, got {alignment}")
    life = activation_lifetimes(graph, preserve_all=preserve_all)
    sizes = {t: graph.tensor(t).nbytes for t in life}
    aliases = aliases_for(graph, preserve_all=preserve_all)
    scratch_sizes = {int(k): int(v) for k, v in sorted((scratch or {}).items()) if int(v) > 0}
    for k in scratch_sizes:
        if not 0 <= k < len(graph.operators):
            raise ValueError(f"scratch requested for operator {k}, which the graph does not have")

    # Alias chains (reshape of a reshape) collapse onto one root buffer whose lifetime spans
    # every member's.
    span: dict[int, tuple[int, int]] = {}
    for t, (first, last) in life.items():
        r = _alias_root(aliases, t)
        lo, hi = span.get(r, (first, last))
        span[r] = (min(lo, first), max(hi, last))
    for k, nbytes in scratch_sizes.items():  # negative keys: never a tensor index
        span[_scratch_key(k)] = (k, k)
        sizes[_scratch_key(k)] = nbytes

    def length(r: int) -> int:
        return span[r][1] - span[r][0] + 1

    orders = [
        sorted(span, key=lambda r: (-sizes[r], span[r][0], r)),
        sorted(span, key=lambda r: (span[r][0], -sizes[r], r)),
        sorted(span, key=lambda r: (-length(r), -sizes[r], r)),
        sorted(span, key=lambda r: (-length(r) * sizes[r], r)),
    ]
    best: tuple[int, dict[int, int]] | None = None
    for order in orders:
        placed = _first_fit(order, sizes, span, alignment)
        arena = max((off + _align(sizes[r], alignment) for r, off in placed.items()), default=0)
        if best is None or arena < best[0]:
            best = (arena, placed)
    assert best is not None or not span
    arena, root_offset = best if best is not None else (0, {})

    offsets = {t: root_offset[_alias_root(aliases, t)] for t in sorted(life)}
    return ArenaPlan(
        offsets=offsets,
        arena_bytes=arena,
        alignment=alignment,
        sizes={t: sizes[t] for t in sorted(life)},
        lifetimes=dict(sorted(life.items())),
        aliases=aliases,
        scratch_offsets={k: root_offset[_scratch_key(k)] for k in scratch_sizes},
        scratch_sizes=scratch_sizes,
    )
