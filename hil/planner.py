"""Static activation arena: every activation tensor gets a fixed byte offset in one buffer.

The device has no allocator, so the whole memory plan is made here, offline. Two tensors may
share bytes when their lifetimes (`Graph.lifetimes()`, inclusive operator ranges) do not
overlap. Because an operator's inputs and outputs are all live at that operator's index, an
output never shares bytes with its own inputs; the one exception is a pure reshape whose input
dies there, which is aliased onto its input so the shape lowering sees equal pointers and
emits no copy.

Graph inputs stay live to the end of the inference, not just to their last reader: the
device runs the model many times on one set of inputs (warm-up, then N timed runs), so
nothing may overwrite them.

Placement is greedy: buffers sorted by size (largest first), each put at the lowest aligned
offset that clears every already placed buffer it is live together with (first fit on the
timeline). Large tensors dominate the arena, so placing them first keeps the peak low.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hil.graph import Graph

#: Byte alignment of every arena offset: enough for word loads and for 16-byte vector accesses.
ARENA_ALIGNMENT = 16

#: Operators that only reinterpret their input's shape: the bytes are identical.
RESHAPE_OPS = frozenset({"RESHAPE", "EXPAND_DIMS", "SQUEEZE"})


@dataclass(frozen=True)
class ArenaPlan:
    """Where each activation tensor lives in the arena.

    `offsets` maps tensor index to byte offset; `sizes` gives each tensor's byte count and
    `lifetimes` its inclusive operator range, so a plan can be checked on its own
    (`conflicts()`). `aliases` maps a reshape output to the tensor it shares bytes with.
    """

    offsets: dict[int, int]
    arena_bytes: int
    alignment: int
    sizes: dict[int, int] = field(default_factory=dict)
    lifetimes: dict[int, tuple[int, int]] = field(default_factory=dict)
    aliases: dict[int, int] = field(default_factory=dict)

    @property
    def tensor_bytes(self) -> int:
        """Sum of all activation sizes: the arena a plan without any reuse would need."""
        return sum(self.sizes[t] for t in self.sizes if t not in self.aliases)

    def conflicts(self) -> list[tuple[int, int]]:
        """Pairs of distinct, non-aliased tensors that are live together and overlap in bytes.

        An empty list means the plan is sound; the tests and the code generator rely on it.
        """
        bad: list[tuple[int, int]] = []
        items = sorted(self.offsets)
        for n, a in enumerate(items):
            for b in items[n + 1 :]:
                if _alias_root(self.aliases, a) == _alias_root(self.aliases, b):
                    continue
                if _live_together(self.lifetimes[a], self.lifetimes[b]) and _bytes_overlap(
                    self.offsets[a], self.sizes[a], self.offsets[b], self.sizes[b]
                ):
                    bad.append((a, b))
        return bad


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
        if op.op not in RESHAPE_OPS or not op.inputs or len(op.outputs) != 1:
            continue
        src, dst = op.inputs[0], op.outputs[0]
        if src < 0 or src not in life or dst not in life or src == dst:
            continue
        if life[src][1] != op.index or life[dst][0] != op.index:
            continue
        if graph.tensor(src).nbytes != graph.tensor(dst).nbytes:
            continue
        aliases[dst] = src
    return aliases


def plan(graph: Graph, alignment: int = ARENA_ALIGNMENT) -> ArenaPlan:
    """Assign arena offsets to all activation tensors of `graph` (see the module docstring)."""
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"arena alignment must be a power of two, got {alignment}")
    life = graph.lifetimes()
    end = len(graph.operators)
    for t in graph.inputs:
        life[t] = (life[t][0], end)  # repeated runs read the inputs again
    sizes = {t: graph.tensor(t).nbytes for t in life}
    aliases = _reshape_aliases(graph, life)

    # Alias chains (reshape of a reshape) collapse onto one root buffer whose lifetime spans
    # every member's.
    span: dict[int, tuple[int, int]] = {}
    for t, (first, last) in life.items():
        r = _alias_root(aliases, t)
        lo, hi = span.get(r, (first, last))
        span[r] = (min(lo, first), max(hi, last))

    order = sorted(span, key=lambda r: (-sizes[r], span[r][0], r))
    placed: list[tuple[int, int, tuple[int, int]]] = []  # (offset, size, lifetime)
    root_offset: dict[int, int] = {}
    for r in order:
        size = _align(sizes[r], alignment)
        busy = sorted((off, sz) for off, sz, lt in placed if sz and _live_together(lt, span[r]))
        offset = 0
        for off, sz in busy:
            if offset + size <= off:
                break
            offset = max(offset, _align(off + sz, alignment))
        root_offset[r] = offset
        placed.append((offset, size, span[r]))

    offsets = {t: root_offset[_alias_root(aliases, t)] for t in sorted(life)}
    arena = max((off + sz for off, sz, _ in placed), default=0)
    return ArenaPlan(
        offsets=offsets,
        arena_bytes=arena,
        alignment=alignment,
        sizes=dict(sorted(sizes.items())),
        lifetimes=dict(sorted(life.items())),
        aliases=aliases,
    )
