"""The Pico and Nano images, built with the real toolchain, checked without a board: vector
tables, entry points, the Pico's boot2 and its CRC (against an independent CRC written here),
memory maps within the chips' limits, UF2 and Intel HEX files, and the clock and UART register
values against the worked examples of docs/boards.md."""

from __future__ import annotations

import importlib.util
import re
import struct
import tomllib
from pathlib import Path

import pytest
from boards.disasm import accesses, loads, stores
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from hil import chips
from hil.boards import BOARDS_DIR
from hil.firmware_image import crc32_mpeg2, load_segments, to_bin

PICO_FLASH = (0x10000000, 0x10000000 + 2 * 1024 * 1024)
PICO_RAM = (0x20000000, 0x20000000 + 264 * 1024)
NANO_APP = (0x00010000, 0x00100000)
NANO_RAM = (0x20000000, 0x20000000 + 256 * 1024)


# -- an independent CRC-32/MPEG-2: polynomial division on Python integers ---------------------


def crc_by_division(data: bytes) -> int:
    """Remainder of (message with its first 32 bits inverted) * x^32 modulo the generator
    x^32 + x^26 + x^23 + x^22 + x^16 + x^12 + x^11 + x^10 + x^8 + x^7 + x^5 + x^4 + x^2 + x + 1:
    what an MSB-first CRC with init 0xFFFFFFFF and no final XOR computes."""
    generator = sum(1 << e for e in (32, 26, 23, 22, 16, 12, 11, 10, 8, 7, 5, 4, 2, 1, 0))
    assert len(data) >= 4
    message = int.from_bytes(data, "big") ^ (0xFFFFFFFF << (8 * len(data) - 32))
    value = message << 32
    for bit in range(value.bit_length() - 1, 31, -1):
        if value >> bit & 1:
            value ^= generator << (bit - 32)
    return value


def test_the_independent_crc_gives_the_published_check_value() -> None:
    assert crc_by_division(b"123456789") == 0x0376E6E7  # CRC-32/MPEG-2 check value
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7


# -- helpers ---------------------------------------------------------------------------------


def symbols(elf: Path) -> dict[str, tuple[int, int]]:
    with elf.open("rb") as fh:
        table = ELFFile(fh).get_section_by_name(".symtab")
        assert isinstance(table, SymbolTableSection)
        return {s.name: (s["st_value"], s["st_size"]) for s in table.iter_symbols() if s.name}


def sections(elf: Path) -> dict[str, tuple[int, int, bool]]:
    """name -> (address, size, loaded from the file)."""
    with elf.open("rb") as fh:
        return {
            s.name: (s["sh_addr"], s["sh_size"], s["sh_type"] != "SHT_NOBITS")
            for s in ELFFile(fh).iter_sections()
            if s["sh_flags"] & 0x2  # SHF_ALLOC
        }


def entry(elf: Path) -> int:
    with elf.open("rb") as fh:
        return int(ELFFile(fh).header["e_entry"])


def read(elf: Path, address: int, size: int) -> bytes:
    for seg in load_segments(elf):
        if seg.address <= address and address + size <= seg.end:
            return seg.data[address - seg.address : address - seg.address + size]
    raise AssertionError(f"0x{address:08x} is not loaded")


def check_vector_table(elf: Path, table: int, ram: tuple[int, int], flash: tuple[int, int],
                       entries: int) -> None:  # fmt: skip
    words = struct.unpack(f"<{entries}I", read(elf, table, 4 * entries))
    syms = symbols(elf)
    assert syms["hil_vectors"][0] == table
    sp, reset = words[0], words[1]
    assert ram[0] < sp <= ram[1] and sp % 8 == 0
    assert sp == syms["__hil_stack_end"][0]
    assert reset & 1, "the reset vector must have its Thumb bit set"
    assert reset == entry(elf) | 1 == syms["hil_reset_handler"][0] | 1
    assert words[15] == syms["hil_systick_isr"][0] | 1
    for i, w in enumerate(words[2:], 2):
        if w:
            assert w & 1 and flash[0] <= w < flash[1], f"vector {i} = 0x{w:08x}"


def check_memory_map(elf: Path, flash: tuple[int, int], ram: tuple[int, int]) -> None:
    for seg in load_segments(elf):
        assert flash[0] <= seg.address and seg.end <= flash[1], hex(seg.address)
    for name, (address, size, _loaded) in sections(elf).items():
        inside_flash = flash[0] <= address and address + size <= flash[1]
        inside_ram = ram[0] <= address and address + size <= ram[1]
        assert inside_flash or inside_ram, f"{name} at 0x{address:08x} (+{size})"
        if name in (".bss", ".hil_stack", ".data"):
            assert inside_ram, name


# -- the Pico -------------------------------------------------------------------------------


def test_pico_boot2_is_256_bytes_at_the_start_of_flash_with_a_valid_crc(built: dict) -> None:
    elf = built["pico"].elf
    address, size, loaded = sections(elf)[".boot2"]
    assert (address, size, loaded) == (0x10000000, 256, True)
    boot2 = read(elf, 0x10000000, 256)
    stored = struct.unpack_from("<I", boot2, 252)[0]
    assert stored == crc_by_division(boot2[:252])
    assert crc_by_division(boot2[:251] + bytes([boot2[251] ^ 1])) != stored


def test_pico_boot2_sets_up_xip_and_enters_the_table_at_0x10000100(built: dict) -> None:
    words = set(struct.unpack("<63I", read(built["pico"].elf, 0x10000000, 252)))
    # XIP_SSI base, CTRLR0 (32-bit frames, EEPROM read), SPI_CTRLR0 (03h, 8-bit cmd, 24-bit
    # address), the vector table and VTOR.
    assert {0x18000000, 0x001F0300, 0x03000218, 0x10000100, 0xE000ED08} <= words


def test_pico_boot2_image_is_what_its_source_assembles_to() -> None:
    path = BOARDS_DIR / "pico" / "boot2" / "make_boot2.py"
    spec = importlib.util.spec_from_file_location("make_boot2", path)
    assert spec is not None and spec.loader is not None
    make_boot2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_boot2)
    code = make_boot2.assemble()
    assert 0 < len(code) <= 252
    expected = make_boot2.c_source(make_boot2.image(code))
    assert (BOARDS_DIR / "pico" / "boot2_image.c").read_text() == expected, (
        "boot2_image.c is stale: run python boards/pico/boot2/make_boot2.py"
    )


def test_pico_vector_table_entry_and_memory_map(built: dict) -> None:
    elf = built["pico"].elf
    check_vector_table(elf, 0x10000100, PICO_RAM, PICO_FLASH, 16 + 32)
    check_memory_map(elf, PICO_FLASH, PICO_RAM)
    # The reset handler points VTOR at the table again.
    assert stores(elf, "hil_reset_handler")[0] == (0xE000ED08, 0x10000100)


def test_pico_uf2_blocks_are_valid_and_carry_the_bin(built: dict) -> None:
    image = built["pico"]
    uf2 = (image.out / "model.uf2").read_bytes()
    base, data = to_bin(load_segments(image.elf))
    assert base == 0x10000000 and (image.out / "model.bin").read_bytes() == data
    assert len(uf2) % 512 == 0
    count = len(uf2) // 512
    assert count == -(-len(data) // 256)
    rebuilt = bytearray()
    for n in range(count):
        block = uf2[512 * n : 512 * (n + 1)]
        magic0, magic1, flags, addr, size, number, total, family = struct.unpack_from("<8I", block)
        assert (magic0, magic1) == (0x0A324655, 0x9E5D5157)
        assert struct.unpack_from("<I", block, 508)[0] == 0x0AB16F30
        assert flags == 0x00002000 and family == 0xE48BFF56
        assert size == 256 and addr % 256 == 0 and PICO_FLASH[0] <= addr < PICO_FLASH[1]
        assert (number, total) == (n, count)
        assert addr == base + 256 * n
        rebuilt += block[32 : 32 + 256]
    assert bytes(rebuilt[: len(data)]) == data
    assert set(rebuilt[len(data) :]) <= {0xFF}


@pytest.mark.parametrize("board", ["pico", "nano33ble"])
def test_c_constants_equal_the_formulas(board: str, tmp_path: Path) -> None:
    """The ports' headers, as the C compiler sees them, hold the values the formulas give."""
    pll = chips.rp2040_pll(chips.PICO_XOSC_HZ, chips.PICO_CLOCK_HZ)
    ibrd, fbrd = chips.pl011_divisors(chips.PICO_CLOCK_HZ, 115_200)
    expected = {
        "pico": {
            "pico_clocks.h": {
                "PICO_PLL_FBDIV": pll.fbdiv, "PICO_PLL_PRIM": pll.prim,
                "PICO_PLL_REFDIV": pll.refdiv, "PICO_UART_IBRD": ibrd, "PICO_UART_FBRD": fbrd,
                "PICO_XOSC_STARTUP_DELAY": chips.rp2040_xosc_startup_delay(chips.PICO_XOSC_HZ),
                "PICO_WATCHDOG_TICK": chips.rp2040_tick(chips.PICO_XOSC_HZ),
                "PICO_CORE_CLOCK_HZ": chips.PICO_CLOCK_HZ,
            }
        },
        "nano33ble": {
            "nano_uarte.h": {
                "NANO_UARTE_BAUDRATE": chips.nrf52840_uarte_baudrate(115_200),
                "NANO_PSEL_TXD": chips.nrf_psel(*chips.NANO_TX),
                "NANO_PSEL_RXD": chips.nrf_psel(*chips.NANO_RX),
            }
        },
    }[board]  # fmt: skip
    (header, values), = expected.items()
    source = tmp_path / "check.c"
    source.write_text(f'#include "{header}"\n' + "".join(
        f'_Static_assert({name} == {value}u, "{name}");\n' for name, value in values.items()
    ))  # fmt: skip
    import subprocess

    proc = subprocess.run(
        ["arm-none-eabi-gcc", "-std=c11", "-fsyntax-only", "-DHIL_BAUDRATE=115200",
         f"-I{BOARDS_DIR / board}", str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    wrong = subprocess.run(
        ["arm-none-eabi-gcc", "-std=c11", "-fsyntax-only", "-DHIL_BAUDRATE=9600",
         f"-I{BOARDS_DIR / board}", str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert wrong.returncode != 0 and "generated for 115200 baud" in wrong.stderr


# -- the Nano --------------------------------------------------------------------------------


def test_nano_is_linked_above_the_bootloader(built: dict) -> None:
    elf = built["nano33ble"].elf
    segments = load_segments(elf)
    assert segments[0].address == 0x10000  # nothing in 0x0-0xFFFF: the bootloader stays
    check_vector_table(elf, 0x10000, NANO_RAM, NANO_APP, 16 + 48)
    check_memory_map(elf, NANO_APP, NANO_RAM)


def test_nano_reset_handler_sets_vtor_and_handles_approtect(built: dict) -> None:
    elf = built["nano33ble"].elf
    written = stores(elf, "hil_reset_handler")
    assert written[0] == (0xE000ED08, 0x10000)  # VTOR first, before anything can fault
    # Hardened-APPROTECT parts: FICR says so, UICR.APPROTECT is HwDisabled -> SwDisable.
    assert loads(elf, "hil_reset_handler") == [0x10000130, 0x10000134, 0x10001208]
    assert written[-1][0] == 0x40000558


def in_order(sequence: list, wanted: list) -> bool:
    """Whether `wanted` occurs in `sequence` as a subsequence (in that order)."""
    it = iter(sequence)
    return all(any(item == w for item in it) for w in wanted)


def test_pico_port_init_writes_the_computed_values_in_order(built: dict) -> None:
    pll = chips.rp2040_pll(chips.PICO_XOSC_HZ, chips.PICO_CLOCK_HZ)
    ibrd, fbrd = chips.pl011_divisors(chips.PICO_CLOCK_HZ, 115_200)
    resets = 0x00601120 & ~0x1000  # IO_BANK0, PADS_BANK0, TIMER, UART0 (the PLL before)
    expected = [
        (0x40008078, 0),  # CLK_SYS_RESUS_CTRL
        (0x40024000, 0xAA0), (0x4002400C, chips.rp2040_xosc_startup_delay(12_000_000)),
        (0x40024000, 0x00FABAA0),  # XOSC on
        (0x4000B03C, 1),  # CLK_SYS_CTRL.SRC cleared (CLR alias): off the PLL first
        (0x4000E000, 0x1000), (0x4000F000, 0x1000),  # PLL_SYS held in reset, released
        (0x40028000, pll.refdiv), (0x40028008, pll.fbdiv), (0x4002B004, 0x21),
        (0x4002800C, pll.prim), (0x4002B004, 0x8),  # post-dividers, then powered
        (0x40008034, 0x100), (0x4000B03C, 0xE0), (0x4000A03C, 1), (0x40008040, 0x100),
        (0x40008048, 0x800), (0x4005802C, chips.rp2040_tick(12_000_000)),
        (0x4000E000, resets), (0x4000F000, resets),  # peripherals through RESETS
        (0x40014004, 2), (0x4001400C, 2),  # GP0/GP1 FUNCSEL UART
        (0x40034030, 0), (0x40034024, ibrd), (0x40034028, fbrd), (0x4003402C, 0x70),
        (0x40034030, 0x301),  # divisors, LCR_H (latches them), then enable
    ]  # fmt: skip
    assert in_order(stores(built["pico"].elf, "hil_port_init"), expected)


def test_pico_flush_waits_for_busy(built: dict) -> None:
    assert loads(built["pico"].elf, "hil_port_flush") == [0x40034018]  # UARTFR (BUSY)


def test_nano_port_init_writes_the_computed_values_in_order(built: dict) -> None:
    elf = built["nano33ble"].elf
    expected = [
        (0x40000100, 0), (0x40000000, 1),  # HFXO start, before the UART
        (0x4001E540, 1),  # ICACHECNF.CACHEEN
        (0x40002500, 0),  # UARTE disabled while configured
        (0x4000250C, chips.nrf_psel(*chips.NANO_TX)), (0x40002514, chips.nrf_psel(*chips.NANO_RX)),
        (0x40002524, chips.nrf52840_uarte_baudrate(115_200)), (0x4000256C, 0),
        (0x40002500, 8),  # enabled
        (0x40002538, 1), (0x40002200, 1 << 5),  # one byte per transfer, ENDRX->STARTRX
        (0x40002000, 1),  # STARTRX
    ]  # fmt: skip
    assert in_order(stores(elf, "hil_port_init"), expected)
    assert (0x40002524, 0x01D7E000) not in stores(elf, "hil_port_init")  # the legacy UART's


def test_nano_transmit_buffer_is_in_ram(built: dict) -> None:
    elf = built["nano33ble"].elf
    pointers = [v for a, v in stores(elf, "hil_port_write") if a == 0x40002544]  # TXD.PTR
    assert pointers and all(v is not None and NANO_RAM[0] <= v < NANO_RAM[1] for v in pointers)


def test_dwt_start_sets_trcena_first(built: dict) -> None:
    found = accesses(built["nano33ble"].elf, "hil_dwt_start")
    first_dwt = next(i for i, (_, a, _) in enumerate(found) if a in (0xE0001000, 0xE0001004))
    demcr_store = next(i for i, (k, a, _) in enumerate(found) if (k, a) == ("st", 0xE000EDFC))
    assert demcr_store < first_dwt
    assert ("st", 0xE0001004, 0) in found  # CYCCNT zeroed


def test_nano_hex_is_valid_and_holds_the_bin_at_0x10000(built: dict) -> None:
    image = built["nano33ble"]
    base, data = to_bin(load_segments(image.elf))
    memory: dict[int, int] = {}
    upper = 0
    start = None
    lines = (image.out / "model.hex").read_text().splitlines()
    assert lines[-1] == ":00000001FF"
    for line in lines:
        raw = bytes.fromhex(line[1:])
        assert line[0] == ":" and sum(raw) & 0xFF == 0, line
        count, address, kind = raw[0], int.from_bytes(raw[1:3], "big"), raw[3]
        payload = raw[4 : 4 + count]
        if kind == 0:
            for i, b in enumerate(payload):
                memory[(upper << 16) + address + i] = b
        elif kind == 4:
            upper = int.from_bytes(payload, "big")
        elif kind == 5:
            start = int.from_bytes(payload, "big")
    assert min(memory) == base == 0x10000
    assert bytes(memory.get(base + i, 0xFF) for i in range(len(data))) == data
    assert start == entry(image.elf)


def test_nano_icache_setting_in_port_and_board_toml_agree() -> None:
    port = (BOARDS_DIR / "nano33ble" / "port.c").read_text()
    enabled = re.search(r"#define NANO_ICACHE_ENABLED (\d)", port)
    assert enabled is not None
    memory = tomllib.loads((BOARDS_DIR / "nano33ble" / "board.toml").read_text())["memory"]
    assert memory["icache"].startswith("on" if enabled.group(1) == "1" else "off")


# -- register values from the datasheet formulas -------------------------------------------------


def test_rp2040_values_match_the_worked_examples() -> None:
    pll = chips.rp2040_pll(12_000_000, 125_000_000)
    assert (pll.refdiv, pll.fbdiv, pll.postdiv1, pll.postdiv2) == (1, 125, 6, 2)
    assert pll.vco_hz == 1_500_000_000 and pll.prim == 0x00062000
    pll133 = chips.rp2040_pll(12_000_000, 133_000_000)
    assert (pll133.fbdiv, pll133.postdiv1, pll133.postdiv2) == (133, 6, 2)
    assert chips.rp2040_xosc_startup_delay(12_000_000) == 282
    assert chips.pl011_divisors(125_000_000, 115_200) == (67, 52)
    assert round(chips.pl011_actual_baud(125_000_000, 67, 52)) == 115207
    assert chips.pl011_divisors(133_000_000, 115_200) == (72, 10)
    assert chips.pl011_divisors(12_000_000, 115_200) == (6, 33)
    assert chips.rp2040_tick(12_000_000) == 0x20C


def test_pl011_divisor_formula_agrees_with_the_float_definition() -> None:
    for clk in (12_000_000, 48_000_000, 125_000_000, 133_000_000):
        for baud in (9600, 115_200, 921_600):
            if clk < 16 * baud:
                continue
            ibrd, fbrd = chips.pl011_divisors(clk, baud)
            exact = clk / (16 * baud)
            assert ibrd == int(exact)
            assert abs(fbrd - round((exact - int(exact)) * 64)) <= 1


def test_nrf52840_values_match_the_register_tables() -> None:
    assert chips.nrf_psel(1, 3) == 0x23 and chips.nrf_psel(1, 10) == 0x2A
    assert chips.nrf52840_uarte_baudrate(115_200) == 0x01D60000


@pytest.mark.parametrize("rel", sorted(chips.HEADERS))
def test_generated_headers_are_up_to_date(rel: str) -> None:
    assert (BOARDS_DIR / rel).read_text() == chips.HEADERS[rel](), (
        f"boards/{rel} is stale: run python -m hil.chips"
    )
    text = (BOARDS_DIR / rel).read_text()
    if rel.startswith("pico"):
        assert "#define PICO_UART_IBRD 67u" in text and "#define PICO_UART_FBRD 52u" in text
        assert "#define PICO_PLL_PRIM 0x00062000u" in text
        assert "#define PICO_XOSC_STARTUP_DELAY 282u" in text
        assert "#define PICO_WATCHDOG_TICK 0x20Cu" in text
    else:
        assert "#define NANO_UARTE_BAUDRATE 0x01D60000u" in text
        assert "#define NANO_PSEL_TXD 0x23u" in text and "#define NANO_PSEL_RXD 0x2Au" in text


def test_board_toml_figures_match_the_linker_scripts() -> None:
    for name, flash, ram in (("pico", 2 << 20, 264 << 10), ("nano33ble", 960 << 10, 256 << 10)):
        data = tomllib.loads((BOARDS_DIR / name / "board.toml").read_text())
        assert (data["flash_bytes"], data["ram_bytes"]) == (flash, ram)
    qemu = tomllib.loads((BOARDS_DIR / "qemu-m4" / "board.toml").read_text())
    assert qemu["flash_bytes"] == 960 << 10  # the stand-in follows the Nano's application size
