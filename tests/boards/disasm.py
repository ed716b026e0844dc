"""Which memory addresses a firmware function reads and writes, from its disassembly.

A straight-line walk over `arm-none-eabi-objdump -d` output of one function that tracks
registers holding constants (mov/movw/movt, literal-pool loads, adds, shifts) and reports every
load and store whose address it can compute, in program order. Branches are not followed:
enough to check that a reset handler or a port's init writes the registers it should, in the
order it should, without running it.
"""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

from hil.firmware_image import load_segments

_LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*?)\s*(?:@.*)?$")
_FUNC = re.compile(r"^[0-9a-f]+ <(\w+)>:$")
_REG = r"(r\d+|ip|lr|sp|fp|pc)"


def _word(elf: Path, address: int) -> int | None:
    for seg in load_segments(elf):
        if seg.address <= address and address + 4 <= seg.end:
            return struct.unpack_from("<I", seg.data, address - seg.address)[0]
    return None


def _imm(text: str) -> int:
    return int(text.lstrip("#"), 0)


def accesses(elf: Path, function: str) -> list[tuple[str, int, int | None]]:
    """("ld" | "st", address, value stored if known) for each load/store of `function` with a
    known address, in program order."""
    out = subprocess.run(
        ["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(elf)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines: list[str] = []
    inside = False
    for line in out.splitlines():
        m = _FUNC.match(line.strip())
        if m:
            inside = m.group(1) == function
            continue
        if inside:
            if not line.strip():
                break
            lines.append(line)
    if not lines:
        raise AssertionError(f"no function {function} in {elf}")
    regs: dict[str, int] = {}
    found: list[tuple[str, int, int | None]] = []
    for line in lines:
        m = _LINE.match(line)
        if not m:
            continue
        op, args = m.group(2), m.group(3)
        comment = line.split("@", 1)[1] if "@" in line else ""
        base_op = re.sub(r"\.[nw]$", "", op)
        if base_op.startswith(("ldr", "str")) or re.fullmatch(
            r"mov(eq|ne|cs|cc|hi|ls|ge|lt|gt|le)", base_op
        ):
            # conditional forms, e.g. streq, moveq
            base_op = re.sub(r"(eq|ne|cs|cc|hi|ls|ge|lt|gt|le)$", "", base_op)
        dest = re.match(_REG, args)
        mem = re.search(r"\[" + _REG + r"(?:,\s*(#-?\w+|" + _REG + r"))?\]", args)
        if base_op.startswith(("ldr", "str")) and mem:
            base = mem.group(1)
            offset_text = mem.group(2)
            if base == "pc":
                lit = re.match(r"\s*\(?([0-9a-f]+)", comment)
                if lit and dest:
                    value = _word(elf, int(lit.group(1), 16))
                    if value is None:
                        regs.pop(dest.group(1), None)
                    else:
                        regs[dest.group(1)] = value
                continue
            address = regs.get(base)
            if address is not None and offset_text:
                if offset_text.startswith("#"):
                    address += _imm(offset_text)
                else:
                    other = regs.get(offset_text)
                    address = None if other is None else address + other
            if address is not None:
                kind = "st" if base_op.startswith("str") else "ld"
                value = regs.get(dest.group(1)) if kind == "st" and dest else None
                found.append((kind, address & 0xFFFFFFFF, value))
            if base_op.startswith("ldr") and dest:
                regs.pop(dest.group(1), None)
            continue
        if not dest:
            continue
        rd = dest.group(1)
        imm = re.search(r"#(-?(?:0x)?[0-9a-f]+)\s*$", args.split("@")[0].strip())
        srcs = re.findall(_REG, args)
        if base_op in ("mov", "movs", "movw") and imm:
            regs[rd] = _imm(imm.group(1)) & 0xFFFFFFFF
        elif base_op in ("mov", "movs") and len(srcs) == 2 and srcs[1] in regs:
            regs[rd] = regs[srcs[1]]
        elif base_op == "movt" and imm and rd in regs:
            regs[rd] = (regs[rd] & 0xFFFF) | (_imm(imm.group(1)) << 16)
        elif base_op in ("add", "adds", "sub", "subs", "lsl", "lsls") and imm:
            src = srcs[1] if len(srcs) > 1 else rd
            if src in regs:
                value = _imm(imm.group(1))
                if base_op.startswith("add"):
                    result = regs[src] + value
                elif base_op.startswith("sub"):
                    result = regs[src] - value
                else:
                    result = regs[src] << value
                regs[rd] = result & 0xFFFFFFFF
            else:
                regs.pop(rd, None)
        elif base_op.startswith(("b", "cmp", "tst", "cbz", "cbnz", "push", "pop", "nop", "dsb",
                                 "isb", "it", "bx", "bl", "wfi", "cps", "msr")):  # fmt: skip
            if base_op.startswith(("bl", "pop")):
                regs = {k: v for k, v in regs.items() if k not in ("r0", "r1", "r2", "r3", "ip")}
        else:
            regs.pop(rd, None)
    return found


def stores(elf: Path, function: str) -> list[tuple[int, int | None]]:
    """(address, value) of each store with a known address, in order."""
    return [(a, v) for kind, a, v in accesses(elf, function) if kind == "st"]


def loads(elf: Path, function: str) -> list[int]:
    return [a for kind, a, _ in accesses(elf, function) if kind == "ld"]
