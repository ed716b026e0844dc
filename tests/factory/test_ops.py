"""The factory refuses a candidate by the bench's own list of ops, never by a copy of it."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")

from hil.lowering import supported_ops
from optimizer.factory.quantization import unsupported_ops


def test_the_factory_accepts_exactly_the_ops_the_bench_lowers() -> None:
    bench = supported_ops()
    # These two were missing from the factory's old private copy of the list.
    assert {"PADV2", "RELU_N1_TO_1"} <= set(bench)
    assert unsupported_ops(bench) == []
    assert unsupported_ops(["CONV_2D", "LSTM", "GATHER", "LSTM"]) == ["GATHER", "LSTM"]
