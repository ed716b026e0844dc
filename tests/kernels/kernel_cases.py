"""Seeded conv-family kernel cases, a numpy model of TFLite's arithmetic, and their C harness.

Each case is one call of hil_conv2d_s8, hil_depthwise_conv2d_s8 or hil_fully_connected_s8
with random geometry (odd channel counts, taps that do not fill groups of four, strides,
dilations, SAME/VALID padding, batches, no bias, left shifts), its operands and the output
TFLite's reference kernels give, computed here in numpy (independent of the C). `c_source`
renders cases as one C file that runs each and counts the output bytes that differ from the
expectation, and the bytes written past the output (a canary): the same file runs natively in
every build variant of the kernel library (test_kernel_paths.py) and on the QEMU boards as a
firmware image (test_kernels_qemu.py), where the fast paths of each core run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hil.lowering.base import CArray
from hil.lowering.quant import multiply_by_quantized_multiplier

#: The optional fields of the conv-family parameters (HIL_PRECOMPUTED_FIELDS), as the C
#: harness sets them: the scratch buffer is the harness's own, guarded like the output.
PRECOMPUTED = ("bias_folded", "per_tensor", "scratch_bytes")
CONV_FIELDS = (
    "batches", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h", "k_w",
    "stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_left",
    "depth_multiplier", "in_zp", "out_zp", "act_min", "act_max",
)  # fmt: skip
FC_FIELDS = ("batches", "in_n", "out_n", "in_zp", "out_zp", "act_min", "act_max")
#: Bytes after each output that must keep the canary value.
GUARD = 16
CANARY = 0x5A


@dataclass
class Case:
    """One kernel call: `call` (C statements using the names in `arrays`, the input as
    `<name>_in`, the output buffer as `out` and, if `scratch` > 0, `scratch_buf` with that many
    bytes) and the output it must produce."""

    name: str
    call: str
    expected: np.ndarray
    arrays: list[CArray] = field(default_factory=list)
    macs: int = 0
    scratch: int = 0


# --- numpy model of the reference kernels ------------------------------------------------------


def requantize(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, single: bool) -> np.ndarray:
    """Per output channel (last axis): double rounding (conv) or single rounding (FC)."""
    out = np.empty(acc.shape, dtype=np.int64)
    for c in range(acc.shape[-1]):
        m, s = int(mult[c]), int(shift[c])
        if single:
            total = 31 - s
            out[..., c] = (acc[..., c].astype(np.int64) * m + (1 << (total - 1))) >> total
        else:
            out[..., c] = multiply_by_quantized_multiplier(acc[..., c], m, s)
    return out


def reference_conv(p: dict[str, int], x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                   mult: np.ndarray, shift: np.ndarray, depthwise: bool) -> np.ndarray:
    """TFLite's CONV_2D / DEPTHWISE_CONV_2D on int8 NHWC, padding as the zero point."""
    b, oh, ow, oc = p["batches"], p["out_h"], p["out_w"], p["out_c"]
    sh, sw, dh, dw = p["stride_h"], p["stride_w"], p["dilation_h"], p["dilation_w"]
    kh, kw = p["k_h"], p["k_w"]
    big_h = p["pad_top"] + (oh - 1) * sh + (kh - 1) * dh + 1
    big_w = p["pad_left"] + (ow - 1) * sw + (kw - 1) * dw + 1
    xp = np.zeros((b, max(big_h, p["pad_top"] + p["in_h"]), max(big_w, p["pad_left"] + p["in_w"]),
                   p["in_c"]), dtype=np.int64)
    xp[:, p["pad_top"]:p["pad_top"] + p["in_h"], p["pad_left"]:p["pad_left"] + p["in_w"]] = (
        x.astype(np.int64) - p["in_zp"]
    )
    acc = np.zeros((b, oh, ow, oc), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, ky * dh:ky * dh + (oh - 1) * sh + 1:sh,
                       kx * dw:kx * dw + (ow - 1) * sw + 1:sw]  # fmt: skip
            if depthwise:
                acc += np.repeat(patch, p["depth_multiplier"], axis=-1) * w[0, ky, kx].astype(
                    np.int64
                )
            else:
                acc += np.einsum("bhwi,oi->bhwo", patch, w[:, ky, kx].astype(np.int64))
    if bias is not None:
        acc += bias.astype(np.int64)
    out = requantize(acc, mult, shift, single=False) + p["out_zp"]
    return np.clip(out, p["act_min"], p["act_max"]).astype(np.int8)


def reference_fc(p: dict[str, int], x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                 mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    acc = (x.astype(np.int64) - p["in_zp"]) @ w.astype(np.int64).T
    if bias is not None:
        acc += bias.astype(np.int64)
    out = requantize(acc, mult, shift, single=True) + p["out_zp"]
    return np.clip(out, p["act_min"], p["act_max"]).astype(np.int8)


# --- random cases ------------------------------------------------------------------------------


def _out_and_pad(size: int, k: int, stride: int, dilation: int, same: bool) -> tuple[int, int]:
    eff = (k - 1) * dilation + 1
    if same:
        out = -(-size // stride)
        return out, max(0, (out - 1) * stride + eff - size) // 2
    return (size - eff + stride) // stride, 0


def _quant(rng: np.random.Generator, channels: int, taps: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel multipliers and shifts that keep typical outputs inside int8, sometimes a
    left shift (shift > 0) as large real multipliers give."""
    mult = rng.integers(1 << 30, (1 << 31) - 1, channels, endpoint=True).astype(np.int32)
    base = -round(7 + 0.5 * math.log2(max(taps, 1)))
    shift = (base + rng.integers(-2, 3, channels)).astype(np.int32)
    if rng.random() < 0.1:
        shift[:] = rng.integers(0, 2, channels)
    return mult, shift


def _activation(rng: np.random.Generator, out_zp: int) -> tuple[int, int]:
    r = rng.random()
    if r < 0.5:
        return -128, 127
    if r < 0.8:
        return max(-128, out_zp), 127  # RELU
    return max(-128, out_zp), min(127, out_zp + int(rng.integers(10, 80)))  # RELU6-like


def _operands(rng: np.random.Generator, shape: tuple[int, ...], wshape: tuple[int, ...],
              channels: int, taps: int) -> dict[str, Any]:
    w = rng.integers(-127, 128, wshape, dtype=np.int8)
    if rng.random() < 0.2:
        w.flat[rng.integers(0, w.size, max(1, w.size // 50))] = -128
    bias = None if rng.random() < 0.15 else rng.integers(-20000, 20000, channels).astype(np.int32)
    mult, shift = _quant(rng, channels, taps)
    return {
        "x": rng.integers(-128, 128, shape, dtype=np.int8),
        "w": w,
        "bias": bias,
        "mult": mult,
        "shift": shift,
        "in_zp": int(rng.integers(-128, 128)),
        "out_zp": int(rng.integers(-128, 128)),
    }


def _arrays(name: str, ops: dict[str, Any], pre: dict[str, int],
            channel_sums: np.ndarray) -> tuple[list[CArray], str]:
    """The operands as C arrays, laid out as the precomputed fields say (one multiplier for a
    per-tensor layer, the bias with the zero point folded in), and the bias argument."""
    per_tensor = pre["per_tensor"]
    arrays = [
        CArray(f"{name}_in", "int8_t", ops["x"]),
        CArray(f"{name}_w", "int8_t", ops["w"]),
        CArray(f"{name}_m", "int32_t", ops["mult"][:1] if per_tensor else ops["mult"]),
        CArray(f"{name}_s", "int32_t", ops["shift"][:1] if per_tensor else ops["shift"]),
    ]
    bias = ops["bias"]
    if pre["bias_folded"]:
        base = np.zeros(channel_sums.size, np.int64) if bias is None else bias.astype(np.int64)
        bias = (base - ops["in_zp"] * channel_sums).astype(np.int32)
    if bias is None:
        return arrays, "(const int32_t *)0"
    arrays.append(CArray(f"{name}_b", "int32_t", bias))
    return arrays, f"{name}_b"


def _precomputed(rng: np.random.Generator, fold: bool, need: int) -> dict[str, int]:
    """Random precomputed fields: one multiplier for all channels, the zero point folded into
    the bias (kernels that read it), and a scratch buffer that may be too small to use."""
    scratch = 0 if rng.random() < 0.3 else int(rng.choice([need // 3, need, 2 * need]))
    return {
        "bias_folded": int(fold and rng.random() < 0.6),
        "per_tensor": int(rng.random() < 0.3),
        "scratch_bytes": scratch,
    }


def _struct(ctype: str, name: str, fields: tuple[str, ...], values: dict[str, int]) -> str:
    body = ", ".join(f".{k} = {int(values[k])}" for k in fields)
    if values.get("scratch_bytes"):
        body += ", .scratch = scratch_buf"
    return f"static const {ctype} {name}_p = {{{body}}};"


def _conv_need(k: int, in_c: int) -> int:
    """The most working memory a conv asks for on any path: four pixels of int32 taps
    (Thumb-1) or two of int16 pairs plus the raw window (DSP)."""
    return max(16 * k, 4 * ((k >> 2) * 4 + 4) + (k if in_c % 4 else 0))


def conv_case(name: str, rng: np.random.Generator, depthwise: bool = False,
              **fixed: int) -> Case:
    """A random CONV_2D (or DEPTHWISE_CONV_2D) call; keyword arguments pin fields."""
    def pick(key: str, choices: list[int]) -> int:
        return int(fixed[key]) if key in fixed else int(rng.choice(choices))

    batches = pick("batches", [1, 1, 1, 2])
    in_c = pick("in_c", [1, 2, 3, 4, 5, 8, 12, 16, 17, 24, 32])
    mult_d = pick("depth_multiplier", [1, 1, 1, 2, 3]) if depthwise else 1
    out_c = in_c * mult_d if depthwise else pick("out_c", [1, 2, 3, 5, 8, 16, 17, 33])
    k_h, k_w = pick("k_h", [1, 1, 2, 3, 3, 5]), pick("k_w", [1, 2, 3, 3, 5])
    stride_h, stride_w = pick("stride_h", [1, 1, 2]), pick("stride_w", [1, 1, 2])
    dil_h, dil_w = pick("dilation_h", [1, 1, 1, 2]), pick("dilation_w", [1, 1, 1, 2])
    same = bool(fixed.get("same", rng.random() < 0.6))
    in_h = pick("in_h", list(range(max(1, (k_h - 1) * dil_h + 1), 10)))
    in_w = pick("in_w", list(range(max(1, (k_w - 1) * dil_w + 1), 10)))
    out_h, pad_top = _out_and_pad(in_h, k_h, stride_h, dil_h, same)
    out_w, pad_left = _out_and_pad(in_w, k_w, stride_w, dil_w, same)
    taps = k_h * k_w * (1 if depthwise else in_c)
    wshape = (1, k_h, k_w, out_c) if depthwise else (out_c, k_h, k_w, in_c)
    ops = _operands(rng, (batches, in_h, in_w, in_c), wshape, out_c, taps)
    for key in ("mult", "shift"):  # pinned requantization (e.g. the edge of a fast path)
        if key in fixed:
            ops[key][:] = fixed[key]
    k = k_h * k_w * in_c
    need = 4 * (2 * out_c + 4 * taps + (out_c + 3) // 4) if depthwise else _conv_need(
        k, in_c
    )
    pre = _precomputed(rng, depthwise and mult_d == 1, need)
    if pre["per_tensor"]:
        ops["mult"][:] = ops["mult"][0]
        ops["shift"][:] = ops["shift"][0]
    act_min, act_max = _activation(rng, ops["out_zp"])
    p = {
        "batches": batches, "in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h,
        "out_w": out_w, "out_c": out_c, "k_h": k_h, "k_w": k_w, "stride_h": stride_h,
        "stride_w": stride_w, "dilation_h": dil_h, "dilation_w": dil_w, "pad_top": pad_top,
        "pad_left": pad_left, "depth_multiplier": mult_d, "in_zp": ops["in_zp"],
        "out_zp": ops["out_zp"], "act_min": act_min, "act_max": act_max,
    }  # fmt: skip
    expected = reference_conv(p, ops["x"], ops["w"], ops["bias"], ops["mult"], ops["shift"],
                              depthwise)
    kernel = "hil_depthwise_conv2d_s8" if depthwise else "hil_conv2d_s8"
    sums = ops["w"].astype(np.int64).reshape(-1, out_c).sum(axis=0) if depthwise else (
        ops["w"].astype(np.int64).reshape(out_c, -1).sum(axis=1)
    )
    arrays, bias = _arrays(name, ops, pre, sums)
    call = (
        _struct("hil_conv_params_t", name, CONV_FIELDS + PRECOMPUTED, {**p, **pre})
        + f"\n{kernel}(&{name}_p, {name}_in, {name}_w, {bias}, {name}_m, {name}_s, out);"
    )
    return Case(name, call, expected, arrays, expected.size * taps, pre["scratch_bytes"])


def fc_case(name: str, rng: np.random.Generator, **fixed: int) -> Case:
    """A random FULLY_CONNECTED call; keyword arguments pin fields."""
    batches = int(fixed.get("batches", rng.choice([1, 1, 2, 3, 4, 5])))
    in_n = int(fixed.get("in_n", rng.choice([1, 3, 4, 7, 8, 16, 31, 64, 100])))
    out_n = int(fixed.get("out_n", rng.choice([1, 2, 3, 4, 5, 10, 16, 17, 40])))
    ops = _operands(rng, (batches, in_n), (out_n, in_n), out_n, in_n)
    pre = _precomputed(rng, True, 4 * ((in_n >> 2) * 8 + 8) + 16 * in_n)
    if pre["per_tensor"]:
        ops["mult"][:] = ops["mult"][0]
        ops["shift"][:] = ops["shift"][0]
    act_min, act_max = _activation(rng, ops["out_zp"])
    p = {"batches": batches, "in_n": in_n, "out_n": out_n, "in_zp": ops["in_zp"],
         "out_zp": ops["out_zp"], "act_min": act_min, "act_max": act_max}  # fmt: skip
    expected = reference_fc(p, ops["x"], ops["w"], ops["bias"], ops["mult"], ops["shift"])
    arrays, bias = _arrays(name, ops, pre, ops["w"].astype(np.int64).sum(axis=1))
    call = (
        _struct("hil_fc_params_t", name, FC_FIELDS + PRECOMPUTED, {**p, **pre})
        + f"\nhil_fully_connected_s8(&{name}_p, {name}_in, {name}_w, {bias}, {name}_m, "
        f"{name}_s, out);"
    )
    return Case(name, call, expected, arrays, expected.size * in_n, pre["scratch_bytes"])


def random_cases(seed: int, conv: int, depthwise: int, fc: int) -> list[Case]:
    """Seeded random cases plus fixed ones that reach every path: blocks of pixels with odd
    channel counts, the tails of groups of four taps, column buffers too large for the stack."""
    rng = np.random.default_rng(seed)
    cases = [conv_case(f"conv{i}", rng) for i in range(conv)]
    cases += [conv_case(f"dw{i}", rng, depthwise=True) for i in range(depthwise)]
    cases += [fc_case(f"fc{i}", rng) for i in range(fc)]
    cases += [
        # 1x1 stride 1 (the input is the matrix), odd out_c, tail taps
        conv_case("pw_odd", rng, k_h=1, k_w=1, stride_h=1, stride_w=1, in_c=13, out_c=7,
                  in_h=5, in_w=3, batches=1),
        conv_case("pw_strided", rng, k_h=1, k_w=1, stride_h=2, stride_w=2, in_c=8, out_c=6),
        # the reference layer's shape, smaller
        conv_case("ref3x3", rng, k_h=3, k_w=3, stride_h=1, stride_w=1, dilation_h=1,
                  dilation_w=1, same=1, in_h=6, in_w=7, in_c=16, out_c=8, batches=1),
        # K = 3*3*40 = 360: too large for the four-pixel column buffer of the M0 path
        conv_case("bigk", rng, k_h=3, k_w=3, in_c=40, out_c=3, in_h=4, in_w=4, batches=1,
                  dilation_h=1, dilation_w=1, same=1),
        # K = 1100: too large for any column buffer: the portable loops
        conv_case("hugek", rng, k_h=1, k_w=1, stride_h=1, stride_w=1, in_c=1100, out_c=2,
                  in_h=2, in_w=1, batches=1),
        fc_case("fc_wide", rng, batches=1, in_n=1100, out_n=3),
        fc_case("fc_vec", rng, batches=1, in_n=640, out_n=9),
        conv_case("dw3x3", rng, depthwise=True, k_h=3, k_w=3, depth_multiplier=1, in_c=24,
                  stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, same=1, in_h=7, in_w=6),
        conv_case("dw3x3_s2", rng, depthwise=True, k_h=3, k_w=3, depth_multiplier=1, in_c=13,
                  stride_h=2, stride_w=2, dilation_h=1, dilation_w=1, same=1, in_h=9, in_w=8),
        conv_case("dw_1d", rng, depthwise=True, k_h=5, k_w=1, depth_multiplier=1, in_c=20,
                  stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, same=0, in_h=12, in_w=1),
    ]
    # The edge of the M4 depthwise requantization without branches (every shift a right shift
    # of 2 to 31): -2 takes it, -1 the general path. A small multiplier keeps outputs unclamped.
    cases += [
        conv_case(f"dw3x3_shift{-shift}", rng, depthwise=True, k_h=3, k_w=3,
                  depth_multiplier=1, in_c=12, stride_h=1, stride_w=1, dilation_h=1,
                  dilation_w=1, same=1, in_h=6, in_w=5, mult=1 << 22, shift=shift)
        for shift in (-2, -1)
    ]
    return cases


# --- C --------------------------------------------------------------------------------------


def c_array(arr: CArray, const: bool = True) -> str:
    flat = np.asarray(arr.data).ravel()
    items = [str(int(v)) for v in flat] or ["0"]
    lines = [", ".join(items[i:i + 24]) for i in range(0, len(items), 24)]
    body = ",\n    ".join(lines)
    qual = "static const" if const else "static"
    return f"{qual} {arr.ctype} {arr.name}[{len(items)}] = {{\n    {body}\n}};"


def c_source(cases: list[Case]) -> str:
    """The cases as C: `int32_t hil_case_check(uint32_t i)` runs case i and returns the number
    of output bytes that differ from the expectation plus 1000 per damaged guard byte;
    `hil_num_cases` says how many there are. A case's scratch buffer is guarded the same way."""
    out_bytes = max(c.expected.size for c in cases) + GUARD
    scratch_bytes = max(c.scratch for c in cases) + GUARD
    parts = ["#include <stdint.h>", '#include "hil_kernels.h"',
             f"static int8_t out_buf[{out_bytes}] __attribute__((aligned(8)));",
             f"static int8_t scratch_buf[{scratch_bytes}] __attribute__((aligned(8)));"]
    for n, c in enumerate(cases):
        parts += [c_array(a) for a in c.arrays]
        parts.append(c_array(CArray(f"{c.name}_exp", "int8_t", c.expected)))
        body = c.call.replace("\n", "\n    ")
        parts.append(f"static void run{n}(int8_t *out)\n{{\n    {body}\n}}")
    table = ",\n    ".join(
        f"{{run{n}, {c.name}_exp, {c.expected.size}u, {c.scratch}u}}" for n, c in enumerate(cases)
    )
    parts.append(
        "typedef struct {\n    void (*run)(int8_t *);\n    const int8_t *expected;\n"
        "    uint32_t n, scratch;\n} case_t;\n"
        f"static const case_t cases[] = {{\n    {table}\n}};\n"
        f"const uint32_t hil_num_cases = {len(cases)}u;\n"
        "int32_t hil_case_check(uint32_t i)\n{\n"
        "    const case_t *c = &cases[i];\n"
        f"    for (uint32_t j = 0; j < c->n + {GUARD}u; ++j) {{\n"
        f"        out_buf[j] = (int8_t){CANARY};\n    }}\n"
        f"    for (uint32_t j = 0; j < c->scratch + {GUARD}u; ++j) {{\n"
        f"        scratch_buf[j] = (int8_t){CANARY};\n    }}\n"
        "    c->run(out_buf);\n"
        "    int32_t bad = 0;\n"
        "    for (uint32_t j = 0; j < c->n; ++j) {\n"
        "        bad += out_buf[j] != c->expected[j];\n    }\n"
        f"    for (uint32_t j = c->n; j < c->n + {GUARD}u; ++j) {{\n"
        f"        bad += out_buf[j] != (int8_t){CANARY} ? 1000 : 0;\n    }}\n"
        f"    for (uint32_t j = c->scratch; j < c->scratch + {GUARD}u; ++j) {{\n"
        f"        bad += scratch_buf[j] != (int8_t){CANARY} ? 1000 : 0;\n    }}\n"
        "    return bad;\n}\n"
    )
    return "\n".join(parts) + "\n"
