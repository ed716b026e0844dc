"""Graph IR: lifetimes drive the arena planner, so they must cover every use of a tensor."""

import numpy as np

from hil.graph import Graph, Operator, Quantization, Tensor


def _t(i: int, const: bool = False) -> Tensor:
    q = Quantization((0.1,), (0,))
    return Tensor(i, f"t{i}", (1, 4), "int8", q, np.zeros((1, 4), np.int8) if const else None)


def test_lifetimes_span_first_write_to_last_read_and_keep_outputs_to_the_end() -> None:
    tensors = [_t(0), _t(1, const=True), _t(2), _t(3), _t(4)]
    ops = [
        Operator(0, "FULLY_CONNECTED", [0, 1, -1], [2]),
        Operator(1, "RELU", [2], [3]),
        Operator(2, "ADD", [3, 2], [4]),
    ]
    g = Graph("m", tensors, ops, inputs=[0], outputs=[4])
    life = g.lifetimes()
    assert life[0] == (-1, 0)
    assert life[2] == (0, 2)
    assert life[3] == (1, 2)
    assert life[4] == (2, 3)
    assert 1 not in life  # constants need no arena
    assert [t.index for t in g.activations()] == [0, 2, 3, 4]
