"""Firmware files from a linked ELF: raw binary, Intel HEX, UF2; and the checksums boards need.

What a flashing tool or a boot ROM loads is the ELF's PT_LOAD segments with file contents,
at their physical (load) addresses: the code, read-only data and the initial image of .data.
Sections marked NOLOAD (.bss, the stack reserve) have none. Gaps between segments are filled
with 0xFF, the value of erased flash.

UF2 (the Pico's no-probe path): 512-byte blocks, each carrying 256 bytes for one flash
address, with the RP2040 family id (docs/boards.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from hil.errors import BuildError

UF2_MAGIC_START0 = 0x0A324655  # "UF2\n"
UF2_MAGIC_START1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_FAMILY_ID = 0x00002000
UF2_BLOCK_BYTES = 512
UF2_PAYLOAD_BYTES = 256
#: UF2 family id of the RP2040 (its boot ROM ignores blocks without it).
RP2040_FAMILY_ID = 0xE48BFF56


@dataclass(frozen=True)
class Segment:
    """Bytes the image puts at `address` (a load address)."""

    address: int
    data: bytes

    @property
    def end(self) -> int:
        return self.address + len(self.data)


def load_segments(elf_path: str | Path) -> list[Segment]:
    """The ELF's loadable contents at their load addresses, sorted, adjacent ones merged."""
    path = Path(elf_path)
    try:
        with path.open("rb") as fh:
            elf = ELFFile(fh)
            parts = [
                Segment(seg["p_paddr"], seg.data()[: seg["p_filesz"]])
                for seg in elf.iter_segments()
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] > 0
            ]
    except (ELFError, OSError) as exc:
        raise BuildError(f"cannot read the firmware image {path}: {exc}") from exc
    if not parts:
        raise BuildError(f"{path} has nothing to load (no PT_LOAD segment with contents)")
    parts.sort(key=lambda s: s.address)
    merged = [parts[0]]
    for seg in parts[1:]:
        last = merged[-1]
        if seg.address < last.end:
            raise BuildError(
                f"{path}: load segments overlap at 0x{seg.address:08x}; check the linker script"
            )
        if seg.address == last.end:
            merged[-1] = Segment(last.address, last.data + seg.data)
        else:
            merged.append(seg)
    return merged


def entry_point(elf_path: str | Path) -> int:
    """The ELF's entry address (the reset handler, Thumb bit included)."""
    with Path(elf_path).open("rb") as fh:
        return int(ELFFile(fh).header["e_entry"])


def to_bin(segments: list[Segment]) -> tuple[int, bytes]:
    """(base address, contiguous bytes from the first to the last loaded byte; gaps 0xFF)."""
    base = segments[0].address
    out = bytearray(b"\xff" * (segments[-1].end - base))
    for seg in segments:
        out[seg.address - base : seg.end - base] = seg.data
    return base, bytes(out)


def to_ihex(segments: list[Segment], entry: int | None = None) -> str:
    """Intel HEX: 16-byte data records with extended linear address records, the start
    address (type 05) if given, and the end-of-file record."""

    def record(kind: int, address: int, data: bytes) -> str:
        body = bytes([len(data), address >> 8 & 0xFF, address & 0xFF, kind]) + data
        return f":{body.hex().upper()}{(-sum(body)) & 0xFF:02X}"

    lines: list[str] = []
    upper = None
    for seg in segments:
        for offset in range(0, len(seg.data), 16):
            address = seg.address + offset
            chunk = seg.data[offset : offset + 16]
            # A record must not cross a 64 KiB boundary: split it there.
            room = 0x10000 - (address & 0xFFFF)
            for part_address, part in ((address, chunk[:room]), (address + room, chunk[room:])):
                if not part:
                    continue
                if part_address >> 16 != upper:
                    upper = part_address >> 16
                    lines.append(record(4, 0, struct.pack(">H", upper)))
                lines.append(record(0, part_address & 0xFFFF, part))
    if entry is not None:
        lines.append(record(5, 0, struct.pack(">I", entry)))
    lines.append(record(1, 0, b""))
    return "\n".join(lines) + "\n"


def to_uf2(segments: list[Segment], family_id: int = RP2040_FAMILY_ID) -> bytes:
    """UF2 blocks of 256 bytes each at 256-byte-aligned addresses covering every loaded byte
    (partial pages padded with 0xFF), numbered in order, each with `family_id`."""
    pages: dict[int, bytearray] = {}
    for seg in segments:
        for address in range(seg.address & ~0xFF, seg.end, UF2_PAYLOAD_BYTES):
            page = pages.setdefault(address, bytearray(b"\xff" * UF2_PAYLOAD_BYTES))
            lo, hi = max(address, seg.address), min(address + UF2_PAYLOAD_BYTES, seg.end)
            page[lo - address : hi - address] = seg.data[lo - seg.address : hi - seg.address]
    blocks = []
    total = len(pages)
    for number, address in enumerate(sorted(pages)):
        header = struct.pack(
            "<8I",
            UF2_MAGIC_START0,
            UF2_MAGIC_START1,
            UF2_FLAG_FAMILY_ID,
            address,
            UF2_PAYLOAD_BYTES,
            number,
            total,
            family_id,
        )
        data = bytes(pages[address]).ljust(476, b"\0")
        blocks.append(header + data + struct.pack("<I", UF2_MAGIC_END))
    return b"".join(blocks)


def crc32_mpeg2(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    """CRC-32/MPEG-2: poly 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final XOR (what the
    RP2040 boot ROM checks over boot2's first 252 bytes)."""
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


@dataclass(frozen=True)
class ImageFile:
    """One file written by `write_images`."""

    kind: str  # "elf", "bin", "hex", "uf2"
    path: Path
    size: int
    address: int | None = None  # where a .bin or .uf2 starts


def write_images(
    elf: str | Path,
    out_dir: str | Path,
    formats: tuple[str, ...],
    *,
    name: str = "model",
    uf2_family: int | None = None,
) -> list[ImageFile]:
    """Copy the ELF into `out_dir` and write the other `formats` (bin, hex, uf2) beside it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    elf_bytes = Path(elf).read_bytes()
    segments = load_segments(elf)
    written = []
    target = out / f"{name}.elf"
    target.write_bytes(elf_bytes)
    written.append(ImageFile("elf", target, len(elf_bytes)))
    for kind in formats:
        target = out / f"{name}.{kind}"
        if kind == "bin":
            base, data = to_bin(segments)
            target.write_bytes(data)
            written.append(ImageFile(kind, target, len(data), base))
        elif kind == "hex":
            text = to_ihex(segments, entry_point(elf))
            target.write_text(text)
            written.append(ImageFile(kind, target, len(text), segments[0].address))
        elif kind == "uf2":
            if uf2_family is None:
                raise BuildError("a .uf2 needs the board's UF2 family id ([uf2] family_id)")
            data = to_uf2(segments, uf2_family)
            target.write_bytes(data)
            written.append(ImageFile(kind, target, len(data), segments[0].address))
        elif kind != "elf":
            raise BuildError(f"unknown image format {kind!r}: choose from bin, hex, uf2")
    return written
