"""hil_requantize (firmware/kernels/hil_quant.h) against the host's model of TFLite's arithmetic.

Compiled natively with UndefinedBehaviorSanitizer set to abort, so an int32 overflow in the
helper fails the test instead of passing by luck of the host's wrap-around.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.native import KERNELS

from hil.lowering.quant import multiply_by_quantized_multiplier

_HARNESS = """
#include "hil_quant.h"
int32_t requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    return hil_requantize(x, multiplier, shift);
}
"""
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@pytest.fixture(scope="module")
def requantize(tmp_path_factory: pytest.TempPathFactory) -> ctypes._CFuncPtr:
    if shutil.which("gcc") is None:
        pytest.skip("needs the host gcc")
    build = tmp_path_factory.mktemp("requantize")
    src, lib = build / "harness.c", build / "harness.so"
    src.write_text(_HARNESS)
    flags = ["-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", f"-I{KERNELS}"]
    ubsan = ["-fsanitize=undefined", "-fno-sanitize-recover=all", "-static-libubsan"]
    proc = subprocess.run(["gcc", *flags, *ubsan, str(src), "-o", str(lib)], capture_output=True)
    if proc.returncode != 0:  # a toolchain without libubsan: still check the values
        subprocess.run(["gcc", *flags, str(src), "-o", str(lib)], check=True)
    fn = ctypes.CDLL(str(Path(lib))).requantize
    fn.argtypes = [ctypes.c_int32] * 3
    fn.restype = ctypes.c_int32
    return fn


def test_matches_tflite_arithmetic_where_the_shifted_value_fits(
    requantize: ctypes._CFuncPtr,
) -> None:
    rng = np.random.default_rng(0)
    for _ in range(2000):
        shift = int(rng.integers(-31, 31))
        multiplier = int(rng.integers(1 << 30, INT32_MAX, endpoint=True))
        bound = INT32_MAX >> max(shift, 0)
        x = int(rng.integers(-bound - 1, bound, endpoint=True))
        expected = int(multiply_by_quantized_multiplier(np.array([x]), multiplier, shift)[0])
        assert requantize(x, multiplier, shift) == expected, (x, multiplier, shift)


@pytest.mark.parametrize("shift", [1, 7, 30])
def test_a_left_shift_that_overflows_saturates_with_the_right_sign(
    requantize: ctypes._CFuncPtr, shift: int
) -> None:
    multiplier = 1 << 30  # 0.5
    limit = INT32_MAX >> shift
    # Just past the edge the product leaves int32: it must saturate, not wrap to the other sign.
    assert requantize(limit + 1, multiplier, shift) == (INT32_MAX + 1) // 2
    assert requantize(INT32_MAX, multiplier, shift) == (INT32_MAX + 1) // 2
    assert requantize(-limit - 2, multiplier, shift) == INT32_MIN // 2
    assert requantize(INT32_MIN, multiplier, shift) == INT32_MIN // 2
    # At the edge it is still exact.
    assert requantize(limit, multiplier, shift) == (limit << shift) // 2


_FAST_HARNESS = """
#include "hil_kernels_path.h"
int32_t fast(int32_t x, int32_t multiplier, int32_t shift)
{
    return hil_requantize_q31(x, multiplier, shift);
}
int32_t fast_single(int32_t x, int32_t multiplier, int32_t shift)
{
    return hil_requantize_single_q31(x, multiplier, shift);
}
int32_t single(int32_t x, int32_t multiplier, int32_t shift)
{
    return hil_requantize_single_round(x, multiplier, shift);
}
"""


@pytest.fixture(scope="module", params=["64-bit", "mul32"])
def fast_lib(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The kernels' one-step requantizations, with 64-bit products and with the 16-bit
    products of cores without SMULL (HIL_KERNELS_MUL32)."""
    if shutil.which("gcc") is None:
        pytest.skip("needs the host gcc")
    build = tmp_path_factory.mktemp("fast-requantize")
    src, lib = build / "harness.c", build / "harness.so"
    src.write_text(_FAST_HARNESS)
    flags = ["-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", f"-I{KERNELS}"]
    if request.param == "mul32":
        flags.append("-DHIL_KERNELS_MUL32")
    ubsan = ["-fsanitize=undefined", "-fno-sanitize-recover=all", "-static-libubsan"]
    proc = subprocess.run(["gcc", *flags, *ubsan, str(src), "-o", str(lib)], capture_output=True)
    if proc.returncode != 0:
        subprocess.run(["gcc", *flags, str(src), "-o", str(lib)], check=True)
    dll = ctypes.CDLL(str(lib))
    for name in ("fast", "fast_single", "single"):
        getattr(dll, name).argtypes = [ctypes.c_int32] * 3
        getattr(dll, name).restype = ctypes.c_int32
    return dll


def _samples(rng: np.random.Generator, n: int) -> Iterator[tuple[int, int, int]]:
    """(x, multiplier, shift) over the whole int32 range of x, rounding ties included."""
    edges = [0, 1, -1, 2, -2, (1 << 15) - 1, -(1 << 15), 1 << 16, INT32_MAX, INT32_MIN,
             INT32_MAX - 1, INT32_MIN + 1]  # fmt: skip
    for i in range(n):
        shift = int(rng.integers(-31, 3))
        multiplier = int(rng.integers(1 << 30, INT32_MAX, endpoint=True))
        if i % 7 == 0:
            multiplier = 1 << 30  # 0.5: products land on ties
        if i < len(edges) * 4:
            x = edges[i % len(edges)]
        elif i % 3 == 0:
            x = int(rng.integers(-(1 << 20), 1 << 20))
        else:
            x = int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True))
        if shift > 0:  # where x * 2^shift fits (the saturating case has its own test)
            x = max(min(x, INT32_MAX >> shift), -(INT32_MAX >> shift) - 1)
        yield x, multiplier, shift


def test_one_step_requantization_equals_the_two_roundings(fast_lib: Any) -> None:
    rng = np.random.default_rng(1)
    for x, multiplier, shift in _samples(rng, 20000):
        expected = int(multiply_by_quantized_multiplier(np.array([x]), multiplier, shift)[0])
        assert fast_lib.fast(x, multiplier, shift) == expected, (x, multiplier, shift)


def test_one_step_single_rounding_equals_fully_connected_arithmetic(fast_lib: Any) -> None:
    rng = np.random.default_rng(2)
    for x, multiplier, shift in _samples(rng, 20000):
        total = 31 - shift
        expected = (x * multiplier + (1 << (total - 1))) >> total  # Python ints: exact floor
        assert fast_lib.single(x, multiplier, shift) == expected, (x, multiplier, shift)
        assert fast_lib.fast_single(x, multiplier, shift) == expected, (x, multiplier, shift)
