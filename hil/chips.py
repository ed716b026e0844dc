"""Register values of the physical boards' clocks and UARTs, computed from the datasheet formulas.

The ports (boards/pico/port.c, boards/nano33ble/port.c) include a header generated from this
module (`python -m hil.chips`), so the numbers the firmware writes are the numbers these
formulas give, and tests/boards checks both the formulas (against the worked examples in
docs/boards.md) and that the checked-in headers are up to date. The facts and their sources
are in docs/boards.md.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from hil.errors import BoardError

# -- RP2040 -----------------------------------------------------------------------------------

#: PLL limits of the RP2040 (VCO, feedback divider, post-dividers).
RP2040_VCO_MIN_HZ = 750_000_000
RP2040_VCO_MAX_HZ = 1_600_000_000
RP2040_FBDIV_RANGE = (16, 320)
RP2040_POSTDIV_RANGE = (1, 7)
#: XOSC STARTUP.DELAY multiplier the SDK uses by default, and the register's limit.
RP2040_XOSC_STARTUP_MULTIPLIER = 6
RP2040_XOSC_STARTUP_MAX = 8191
#: WATCHDOG_TICK.ENABLE (bit 9); CYCLES is bits 8:0.
RP2040_TICK_ENABLE = 1 << 9


@dataclass(frozen=True)
class Rp2040Pll:
    """PLL_SYS settings: VCO = ref / refdiv * fbdiv; output = VCO / postdiv1 / postdiv2."""

    refdiv: int
    fbdiv: int
    postdiv1: int
    postdiv2: int
    vco_hz: int

    @property
    def prim(self) -> int:
        """The PRIM register: POSTDIV1 in bits 18:16, POSTDIV2 in bits 14:12."""
        return self.postdiv1 << 16 | self.postdiv2 << 12


def rp2040_pll(ref_hz: int, out_hz: int) -> Rp2040Pll:
    """PLL settings giving exactly `out_hz` from `ref_hz` (refdiv 1): the highest VCO within
    limits, then the largest POSTDIV1 (POSTDIV1 >= POSTDIV2), as the SDK's vcocalc prefers."""
    lo, hi = RP2040_FBDIV_RANGE
    for fbdiv in range(hi, lo - 1, -1):
        vco = ref_hz * fbdiv
        if not RP2040_VCO_MIN_HZ <= vco <= RP2040_VCO_MAX_HZ:
            continue
        for pd1 in range(RP2040_POSTDIV_RANGE[1], 0, -1):
            for pd2 in range(pd1, 0, -1):
                if vco == out_hz * pd1 * pd2:
                    return Rp2040Pll(1, fbdiv, pd1, pd2, vco)
    raise BoardError(f"no RP2040 PLL setting gives exactly {out_hz} Hz from {ref_hz} Hz")


def rp2040_xosc_startup_delay(xosc_hz: int) -> int:
    """XOSC STARTUP.DELAY (units of 256 crystal cycles): ((kHz + 128) / 256) * multiplier."""
    delay = (xosc_hz // 1000 + 128) // 256 * RP2040_XOSC_STARTUP_MULTIPLIER
    if delay > RP2040_XOSC_STARTUP_MAX:
        raise BoardError(f"XOSC start-up delay {delay} for {xosc_hz} Hz exceeds the register")
    return delay


def pl011_divisors(clk_hz: int, baud: int) -> tuple[int, int]:
    """PL011 (IBRD, FBRD) for `baud` from `clk_hz`: BAUDDIV = clk / (16 baud), FBRD the
    fraction in 64ths, rounded (d = 8 clk / baud + 1; IBRD = d >> 7; FBRD = (d & 0x7F) >> 1)."""
    d = 8 * clk_hz // baud + 1
    ibrd, fbrd = d >> 7, (d & 0x7F) >> 1
    if ibrd == 0 or ibrd > 0xFFFF:
        raise BoardError(f"{baud} baud is out of the PL011's range at {clk_hz} Hz")
    if ibrd == 0xFFFF:
        fbrd = 0
    return ibrd, fbrd


def pl011_actual_baud(clk_hz: int, ibrd: int, fbrd: int) -> float:
    """The baud rate the divisors really give."""
    return clk_hz * 4 / (64 * ibrd + fbrd)


def rp2040_tick(clk_ref_hz: int) -> int:
    """WATCHDOG_TICK for a 1 us tick (TIMER, SysTick reference): ENABLE | clk_ref / 1 MHz."""
    if clk_ref_hz % 1_000_000:
        raise BoardError(f"clk_ref {clk_ref_hz} Hz is not a whole number of MHz")
    return RP2040_TICK_ENABLE | clk_ref_hz // 1_000_000


# -- nRF52840 ---------------------------------------------------------------------------------

#: UARTE BAUDRATE register values (the UARTE's own table; the legacy UART's differ, e.g.
#: 0x01D7E000 is the legacy UART's 115200). Only the rates the bench uses are listed.
NRF52840_UARTE_BAUDRATE = {115_200: 0x01D60000}


def nrf_psel(port: int, pin: int) -> int:
    """PSEL value connecting a signal to P<port>.<pin> (PIN 4:0, PORT 5, CONNECT 31 = 0)."""
    if not 0 <= pin < 32 or port not in (0, 1):
        raise BoardError(f"no pin P{port}.{pin:02d} on the nRF52840")
    return port << 5 | pin


def nrf52840_uarte_baudrate(baud: int) -> int:
    """The UARTE BAUDRATE value for `baud`."""
    try:
        return NRF52840_UARTE_BAUDRATE[baud]
    except KeyError:
        raise BoardError(
            f"the nano33ble port knows the UARTE BAUDRATE value for "
            f"{', '.join(map(str, NRF52840_UARTE_BAUDRATE))} baud only, not {baud}; add it to "
            "hil/chips.py from the nRF52840 UARTE register table"
        ) from None


# -- headers ----------------------------------------------------------------------------------

PICO_XOSC_HZ = 12_000_000
PICO_CLOCK_HZ = 125_000_000
NANO_TX = (1, 3)  # P1.03, the header pin labelled TX
NANO_RX = (1, 10)  # P1.10, the header pin labelled RX


def _guard(name: str, baud: int, lines: list[str]) -> str:
    body = "\n".join(lines)
    return (
        f"/* Generated by `python -m hil.chips` from the formulas in hil/chips.py: do not edit.\n"
        f" * Regenerate after changing the clock or the baud rate in board.toml. */\n"
        f"#ifndef {name}\n#define {name}\n\n"
        f"#if HIL_BAUDRATE != {baud}\n"
        f'#error "this header was generated for {baud} baud: run python -m hil.chips"\n'
        f"#endif\n\n{body}\n\n#endif /* {name} */\n"
    )


def pico_header(clock_hz: int = PICO_CLOCK_HZ, baud: int = 115_200) -> str:
    """boards/pico/pico_clocks.h: XOSC, PLL_SYS, tick and UART0 values."""
    pll = rp2040_pll(PICO_XOSC_HZ, clock_hz)
    ibrd, fbrd = pl011_divisors(clock_hz, baud)
    lines = [
        f"#define PICO_XOSC_HZ {PICO_XOSC_HZ}u",
        f"#define PICO_CORE_CLOCK_HZ {clock_hz}u /* clk_sys = clk_peri */",
        f"#define PICO_XOSC_STARTUP_DELAY {rp2040_xosc_startup_delay(PICO_XOSC_HZ)}u",
        f"#define PICO_PLL_REFDIV {pll.refdiv}u",
        f"#define PICO_PLL_FBDIV {pll.fbdiv}u /* VCO {pll.vco_hz // 1_000_000} MHz */",
        f"#define PICO_PLL_PRIM 0x{pll.prim:08X}u /* POSTDIV1 {pll.postdiv1}, POSTDIV2 "
        f"{pll.postdiv2} */",
        f"#define PICO_WATCHDOG_TICK 0x{rp2040_tick(PICO_XOSC_HZ):03X}u /* 1 us from clk_ref */",
        f"#define PICO_UART_IBRD {ibrd}u",
        f"#define PICO_UART_FBRD {fbrd}u /* {pl011_actual_baud(clock_hz, ibrd, fbrd):.0f} baud */",
    ]
    return _guard("PICO_CLOCKS_H", baud, lines)


def nano_header(baud: int = 115_200) -> str:
    """boards/nano33ble/nano_uarte.h: UARTE0 baud rate and pin selection."""
    lines = [
        f"#define NANO_UARTE_BAUDRATE 0x{nrf52840_uarte_baudrate(baud):08X}u",
        f"#define NANO_PSEL_TXD 0x{nrf_psel(*NANO_TX):02X}u /* P{NANO_TX[0]}.{NANO_TX[1]:02d} */",
        f"#define NANO_PSEL_RXD 0x{nrf_psel(*NANO_RX):02X}u /* P{NANO_RX[0]}.{NANO_RX[1]:02d} */",
        f"#define NANO_TX_PIN {NANO_TX[1]}u",
        f"#define NANO_RX_PIN {NANO_RX[1]}u",
    ]
    return _guard("NANO_UARTE_H", baud, lines)


#: Generated header of each board: path under boards/ and the function that writes it.
HEADERS = {
    "pico/pico_clocks.h": pico_header,
    "nano33ble/nano_uarte.h": nano_header,
}


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the generated headers under boards/."""
    parser = argparse.ArgumentParser(prog="python -m hil.chips", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale headers")
    args = parser.parse_args(argv)
    from hil.boards import BOARDS_DIR

    stale = []
    for rel, make in HEADERS.items():
        path = Path(BOARDS_DIR) / rel
        text = make()
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(rel)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print(f"stale: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
