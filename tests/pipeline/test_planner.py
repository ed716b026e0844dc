"""Arena planner: sound (no live overlap), economical (reuse), and alias-aware for reshapes."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hil.graph import Graph, Operator, Quantization, Tensor
from hil.planner import plan

Q = Quantization((0.05,), (0,))


def _act(i: int, shape: tuple[int, ...], dtype: str = "int8") -> Tensor:
    return Tensor(i, f"t{i}", shape, dtype, Q if dtype != "float32" else None)


def _random_graph(rng: random.Random) -> Graph:
    """A random DAG of 1-2 input ops over activations of random sizes, with some reshapes."""
    tensors = [_act(0, (1, rng.randint(1, 300)))]
    ops: list[Operator] = []
    for k in range(rng.randint(1, 25)):
        kind = rng.random()
        if kind < 0.2:
            src = rng.randrange(len(tensors))
            out = _act(len(tensors), (tensors[src].size,))
            ops.append(Operator(k, "RESHAPE", [src], [out.index]))
        else:
            srcs = rng.sample(range(len(tensors)), min(len(tensors), rng.randint(1, 2)))
            out = _act(len(tensors), (1, rng.randint(1, 500)))
            ops.append(Operator(k, "ADD" if len(srcs) == 2 else "RELU", srcs, [out.index]))
        tensors.append(out)
    outputs = sorted({len(tensors) - 1, *rng.sample(range(len(tensors)), 1)})
    return Graph("random", tensors, ops, inputs=[0], outputs=outputs)


@pytest.mark.parametrize("seed", range(200))
def test_no_two_live_tensors_overlap_and_offsets_are_aligned(seed: int) -> None:
    g = _random_graph(random.Random(seed))
    p = plan(g)
    assert p.conflicts() == []
    life = g.lifetimes()
    assert set(p.offsets) == set(life)
    for t in g.inputs:  # never overwritten: the device runs the model repeatedly on them
        assert p.lifetimes[t][1] == len(g.operators)
    for t, off in p.offsets.items():
        assert off % p.alignment == 0
        assert off + g.tensor(t).nbytes <= p.arena_bytes
    # Independent check, not via ArenaPlan.conflicts(): an op never writes over its own inputs
    # except a reshape that aliases its dying input exactly.
    for op in g.operators:
        for o in op.outputs:
            for i in op.inputs:
                if p.aliases.get(o) == i:
                    assert p.offsets[o] == p.offsets[i]
                    continue
                a, b = p.offsets[o], p.offsets[i]
                na, nb = g.tensor(o).nbytes, g.tensor(i).nbytes
                assert a + na <= b or b + nb <= a, (op, p.offsets)


def test_a_chain_reuses_memory_so_the_arena_is_smaller_than_the_sum() -> None:
    sizes = [1000, 800, 1000, 800, 1000, 800]
    tensors = [_act(i, (1, s)) for i, s in enumerate(sizes)]
    ops = [Operator(i, "RELU", [i], [i + 1]) for i in range(len(sizes) - 1)]
    p = plan(Graph("chain", tensors, ops, inputs=[0], outputs=[len(sizes) - 1]))
    assert p.tensor_bytes == sum(sizes)
    # The input stays (repeated runs read it); the rest ping-pongs between two buffers.
    assert p.arena_bytes == 1008 + 1008 + 800
    assert p.conflicts() == []


def test_a_reshape_whose_input_dies_aliases_it_and_others_get_a_copy() -> None:
    tensors = [
        _act(0, (1, 32)),
        _act(1, (1, 4, 4, 2)),
        _act(2, (1, 32)),
        _act(3, (1, 32)),
        _act(4, (1, 32)),
    ]
    ops = [
        Operator(0, "RELU", [0], [1]),
        Operator(1, "RESHAPE", [1], [2]),  # tensor 1 dies here -> alias
        Operator(2, "SQUEEZE", [2], [3]),  # chain of aliases
        Operator(3, "SOFTMAX", [3], [4]),  # not in place
    ]
    p = plan(Graph("alias", tensors, ops, inputs=[0], outputs=[4]))
    assert p.aliases == {2: 1, 3: 2}
    assert p.offsets[1] == p.offsets[2] == p.offsets[3]
    assert len({p.offsets[0], p.offsets[3], p.offsets[4]}) == 3
    assert p.conflicts() == []

    # A reshape of a tensor that is read again later, or of a graph input (kept for the next
    # run), gets a copy.
    ops2 = [
        Operator(0, "RELU", [0], [1]),
        Operator(1, "RESHAPE", [1], [2]),
        Operator(2, "ADD", [2, 1], [3]),
    ]
    p2 = plan(Graph("noalias", tensors[:4], ops2, inputs=[0], outputs=[3]))
    assert p2.aliases == {}
    assert p2.offsets[1] != p2.offsets[2]
    p3 = plan(Graph("input", tensors[:2], [Operator(0, "RESHAPE", [0], [1])], [0], [1]))
    assert p3.aliases == {} and p3.offsets[0] != p3.offsets[1]


def test_float_edges_and_constants() -> None:
    tensors = [
        _act(0, (1, 10), "float32"),
        _act(1, (1, 10)),
        Tensor(2, "w", (10, 10), "int8", Q, np.zeros((10, 10), np.int8)),
        _act(3, (1, 10)),
        _act(4, (1, 10), "float32"),
    ]
    ops = [
        Operator(0, "QUANTIZE", [0], [1]),
        Operator(1, "FULLY_CONNECTED", [1, 2, -1], [3]),
        Operator(2, "DEQUANTIZE", [3], [4]),
    ]
    p = plan(Graph("float_edges", tensors, ops, inputs=[0], outputs=[4]))
    assert 2 not in p.offsets  # constants live in flash, not in the arena
    assert p.sizes[0] == p.sizes[4] == 40
    assert all(p.offsets[t] % 4 == 0 for t in (0, 4))
    assert p.conflicts() == []


def test_bad_alignment_is_rejected() -> None:
    g = Graph("g", [_act(0, (1, 4))], [], inputs=[0], outputs=[0])
    with pytest.raises(ValueError, match="power of two"):
        plan(g, alignment=12)
    assert plan(g, alignment=4).arena_bytes == 4


def test_a_table_lookup_whose_input_dies_runs_in_place() -> None:
    """int8 activations are one table lookup per element (in == out allowed): the output takes
    the bytes of an input that dies there, never of a graph input or of a tensor read later."""
    tensors = [_act(i, (1, 64)) for i in range(5)]
    ops = [
        Operator(0, "RELU", [0], [1]),  # graph input: kept for the next run
        Operator(1, "HARD_SWISH", [1], [2]),  # 1 dies here: in place
        Operator(2, "LOGISTIC", [2], [3]),  # 2 is read again below: a copy
        Operator(3, "ADD", [2, 3], [4]),
    ]
    p = plan(Graph("in_place", tensors, ops, inputs=[0], outputs=[4]))
    assert p.aliases == {2: 1}
    assert p.offsets[1] == p.offsets[2] != p.offsets[3]
    assert p.conflicts() == []


def test_the_smallest_of_several_placement_orders_wins() -> None:
    """Largest first puts the 64-byte tensor at 0 and the 80-byte output above both live
    48-byte ones (192 bytes); placing by first use fits everything in 160."""
    tensors = [_act(i, (1, n)) for i, n in enumerate([48, 64, 48, 16, 80])]
    ops = [
        Operator(0, "SOFTMAX", [0], [1]),
        Operator(1, "SOFTMAX", [1], [2]),
        Operator(2, "SOFTMAX", [2], [3]),
        Operator(3, "ADD", [3, 0], [4]),
    ]
    p = plan(Graph("orders", tensors, ops, inputs=[0], outputs=[4]))
    assert p.arena_bytes == 160
    assert p.conflicts() == []
