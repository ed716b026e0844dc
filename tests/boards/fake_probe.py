"""A debug probe for pyOCD that talks to a simulated chip: pyOCD's own session, target,
CoreSight discovery, flash loader and memory interface run unchanged above it.

`FakeProbe` is a `pyocd.probe.debug_probe.DebugProbe` registered in pyOCD's probe table, so
`ConnectHelper` finds it like a USB probe. Below the DP/AP register interface sits `SimChip`:
an ADIv5 DP (DPv2 with TARGETSEL for the RP2040), a MEM-AP onto a sparse memory with a class-1
ROM table, the Cortex-M debug registers (DHCSR, DCRSR/DCRDR, DEMCR, AIRCR reset), the nRF52
CTRL-AP (APPROTECT, ERASEALL), and a flash that pyOCD's own flash algorithm "runs" on: when
the core is resumed at one of the algorithm's entry points, the simulator does what that entry
point does (init, erase a sector, program a page, erase all) and halts with the result in R0.
On the RP2040, programming turns XIP off; a reset turns it back on only if the boot2 CRC in
flash is valid, as the boot ROM would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pyocd.core import exceptions
from pyocd.probe import aggregator
from pyocd.probe.debug_probe import DebugProbe

from hil.firmware_image import crc32_mpeg2

ROM_TABLE = 0xE00FF000
SCS, DWT, FPB = 0xE000E000, 0xE0001000, 0xE0002000
DHCSR, DCRSR, DCRDR, DEMCR = 0xE000EDF0, 0xE000EDF4, 0xE000EDF8, 0xE000EDFC
AIRCR, CPUID, VTOR = 0xE000ED0C, 0xE000ED00, 0xE000ED08
C_DEBUGEN, C_HALT = 1 << 0, 1 << 1
S_REGRDY, S_HALT, S_RETIRE_ST, S_RESET_ST = 1 << 16, 1 << 17, 1 << 24, 1 << 25
REG_PC, REG_LR, REG_R0 = 15, 14, 0


@dataclass
class Chip:
    """What differs between the simulated chips."""

    name: str
    dpidr: int
    targetid: int | None  # DPv2 TARGETID (bank 2); None for DPv1
    cpuid: int
    ahb_idr: int
    scs_part: int
    dwt_part: int
    fpb_part: int
    flash: tuple[int, int]  # start, size
    ram: tuple[int, int]
    algo: dict[str, Any]
    ids: dict[int, int]  # identity registers: address -> value
    ctrl_ap: bool = False  # nRF52 CTRL-AP at AP 1
    xip: bool = False  # RP2040: flash reads need XIP, which programming turns off
    sector: int = 4096


def rp2040_chip() -> Chip:
    from pyocd.target.family.target_rp2 import FLASH_ALGO

    return Chip("rp2040", dpidr=0x0BC12477, targetid=0x01002927, cpuid=0x410CC601,
                ahb_idr=0x04770031, scs_part=0x008, dwt_part=0x00A, fpb_part=0x00B,
                flash=(0x10000000, 2 << 20), ram=(0x20000000, 264 << 10), algo=FLASH_ALGO,
                ids={0x40000000: 0x10002927}, xip=True)  # fmt: skip


def nrf52840_chip() -> Chip:
    from pyocd.target.builtin.target_nRF52840_xxAA import FLASH_ALGO

    return Chip("nrf52840", dpidr=0x2BA01477, targetid=None, cpuid=0x410FC241,
                ahb_idr=0x24770011, scs_part=0x00C, dwt_part=0x002, fpb_part=0x003,
                flash=(0x0, 1 << 20), ram=(0x20000000, 256 << 10), algo=FLASH_ALGO,
                ids={0x10000100: 0x00052840, 0x10000104: 0x41414430,  # "AAD0": not hardened
                     0x10000108: 0x00002004}, ctrl_ap=True)  # fmt: skip


class SimChip:
    """The chip behind the probe: memory, debug registers, flash, a core that halts and runs."""

    def __init__(self, chip: Chip, *, locked: bool = False, fail_programs: int = 0,
                 corrupt_writes: bool = False) -> None:  # fmt: skip
        self.chip = chip
        self.locked = locked
        self.fail_programs = fail_programs  # program_page calls that report failure
        self.corrupt_writes = corrupt_writes  # flip a bit in each programmed page
        self.pages: dict[int, bytearray] = {}
        self.regs = [0] * 32
        self.halted = False
        self.debugen = False
        self.reset_latch = False
        self.demcr = 0
        self.running_firmware = False
        self.xip_on = True
        self.resets = 0
        self.mass_erased = False
        self.flash_ops: list[tuple[str, int]] = []
        self.events: list[str] = []

    # -- memory ---------------------------------------------------------------------------

    def _page(self, address: int) -> bytearray:
        base = address & ~0xFFF
        page = self.pages.get(base)
        if page is None:  # erased flash reads 0xFF, anything else 0
            page = self.pages[base] = bytearray(b"\xff" * 0x1000 if self.in_flash(base) else 0x1000)
        return page

    def peek(self, address: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            offset = address & 0xFFF
            take = min(n, 0x1000 - offset)
            out += self._page(address)[offset : offset + take]
            address, n = address + take, n - take
        return bytes(out)

    def poke(self, address: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            offset = address & 0xFFF
            take = min(len(data) - pos, 0x1000 - offset)
            self._page(address)[offset : offset + take] = data[pos : pos + take]
            address, pos = address + take, pos + take

    def _erase(self, address: int, size: int) -> None:
        for base in range(address & ~0xFFF, address + size, 0x1000):
            self.pages.pop(base, None)  # back to erased

    def in_flash(self, address: int) -> bool:
        start, size = self.chip.flash
        return start <= address < start + size

    def read32(self, address: int) -> int:
        if address in self.chip.ids:
            return self.chip.ids[address]
        if address == DHCSR:
            value = (C_DEBUGEN if self.debugen else 0) | S_REGRDY | S_RETIRE_ST
            value |= S_HALT if self.halted else 0
            value |= (C_HALT if self.halted else 0)
            if self.reset_latch:
                value |= S_RESET_ST
                self.reset_latch = False
            return value
        if address == DCRDR:
            return self.regs[31]
        if address == DEMCR:
            return self.demcr
        if address == CPUID:
            return self.chip.cpuid
        if address == 0xE000EF40:  # MVFR0: single-precision FPU on the M4F
            return 0x10110021 if self.chip.cpuid == 0x410FC241 else 0
        if address == DWT:
            return 0x40000000 if self.chip.dwt_part == 0x002 else 0x20000000
        if address == FPB:
            return 0x260 if self.chip.fpb_part == 0x003 else 0x40
        component = self._component_id(address)
        if component is not None:
            return component
        if address >= ROM_TABLE and address < ROM_TABLE + 0x10:
            entries = [SCS - ROM_TABLE, DWT - ROM_TABLE, FPB - ROM_TABLE, None]
            entry = entries[(address - ROM_TABLE) // 4]
            return 0 if entry is None else ((entry & 0xFFFFF000) | 0x3) & 0xFFFFFFFF
        if address == ROM_TABLE + 0xFCC:
            return 1  # MEMTYPE: system memory present
        if self.chip.xip and self.in_flash(address) and not self.xip_on:
            return 0xFFFFFFFF if address & 4 else 0  # XIP off: nonsense, not the flash
        return int.from_bytes(self.peek(address, 4), "little")

    def _component_id(self, address: int) -> int | None:
        base, offset = address & ~0xFFF, address & 0xFFF
        parts = {ROM_TABLE: (0x1, 0x4C4), SCS: (0xE, self.chip.scs_part),
                 DWT: (0xE, self.chip.dwt_part), FPB: (0xE, self.chip.fpb_part)}  # fmt: skip
        if base not in parts or offset < 0xFD0:
            return None
        cls, part = parts[base]
        pidr = part | 0x3B << 12 | 1 << 19  # designer Arm (JEP106 0x3B, continuation 4)
        cidr = 0xB105000D | cls << 12
        if offset == 0xFD0:
            return 0x04
        if 0xFD4 <= offset <= 0xFDC:
            return 0
        if 0xFE0 <= offset <= 0xFEC:
            return pidr >> (8 * ((offset - 0xFE0) // 4)) & 0xFF
        return cidr >> (8 * ((offset - 0xFF0) // 4)) & 0xFF

    def write32(self, address: int, value: int) -> None:
        if address == DHCSR:
            if value >> 16 != 0xA05F:
                return
            self.debugen = bool(value & C_DEBUGEN)
            if value & C_HALT:
                self.halted = True
            elif self.halted:
                self.halted = False
                self._run()
            return
        if address == DCRSR:
            sel = value & 0x7F
            index = sel if sel < 31 else 16 + (sel & 0xF)
            if value & (1 << 16):
                self.regs[min(index, 30)] = self.regs[31]
            else:
                self.regs[31] = self.regs[min(index, 30)]
            return
        if address == DCRDR:
            self.regs[31] = value
            return
        if address == DEMCR:
            self.demcr = value
            return
        if address == AIRCR:
            if value >> 16 == 0x05FA and value & 0x4:
                self.reset()
            return
        if self.in_flash(address):
            return  # flash is written by the algorithm only
        self.poke(address, value.to_bytes(4, "little"))

    # -- the core -------------------------------------------------------------------------

    def reset(self) -> None:
        """SYSRESETREQ: the boot ROM (RP2040: boot2 turns XIP on when its CRC is right), then
        the firmware runs unless a reset vector catch halts the core."""
        self.resets += 1
        self.events.append("reset")
        self.reset_latch = True
        if self.chip.xip:
            boot2 = self.peek(self.chip.flash[0], 256)
            self.xip_on = crc32_mpeg2(boot2[:252]) == int.from_bytes(boot2[252:], "little")
        self.halted = bool(self.demcr & 1)  # VC_CORERESET
        self.running_firmware = not self.halted

    def _run(self) -> None:
        """Resumed: run a flash algorithm entry point to its breakpoint, or the firmware."""
        pc = self.regs[REG_PC] | 1
        algo = self.chip.algo
        r0, r1, r2 = self.regs[0], self.regs[1], self.regs[2]
        result = None
        if pc in (algo.get("pc_init"), algo.get("pc_unInit")):
            result = 0
        elif pc == algo.get("pc_erase_sector"):
            address = r0 if self.in_flash(r0) else self.chip.flash[0] + (r0 & 0xFFFFFF)
            self._erase(address & ~(self.chip.sector - 1), self.chip.sector)
            self.flash_ops.append(("erase", address))
            result = 0
        elif pc == algo.get("pc_program_page"):
            address = r0 if self.in_flash(r0) else self.chip.flash[0] + (r0 & 0xFFFFFF)
            if self.fail_programs > 0:
                self.fail_programs -= 1
                result = 1
            else:
                data = bytearray(self.peek(r2, r1))
                if self.corrupt_writes:
                    data[0] ^= 0x01
                self.poke(address, bytes(data))
                self.flash_ops.append(("program", address))
                result = 0
        elif pc == algo.get("pc_eraseAll"):
            self._erase(*self.chip.flash)
            result = 0
        if result is None:
            self.running_firmware = True
            return
        if self.chip.xip:
            self.xip_on = False  # the flash algorithm leaves XIP off
        self.regs[REG_R0] = result
        self.regs[REG_PC] = self.regs[REG_LR] & ~1
        self.halted = True

    def mass_erase(self) -> None:
        self._erase(*self.chip.flash)
        self.locked = False
        self.mass_erased = True
        self.events.append("mass-erase")


class _MemAp:
    """CSW/TAR/DRW of a MEM-AP onto the chip, with auto-increment and byte lanes."""

    def __init__(self, sim: SimChip) -> None:
        self.sim = sim
        self.csw = 0x03000052
        self.tar = 0

    def _size(self) -> int:
        return 1 << (self.csw & 0x7)

    def read(self, reg: int) -> int:
        if reg == 0x00:
            return self.csw
        if reg == 0x04:
            return self.tar
        if reg == 0x0C:
            if self.sim.locked:
                raise exceptions.TransferFaultError("AHB-AP access faulted (APPROTECT)")
            size = self._size()
            word = self.sim.read32(self.tar & ~3)
            lane = (self.tar & 3) * 8
            value = word if size == 4 else (word >> lane & ((1 << (8 * size)) - 1)) << lane
            self._advance(size)
            return value
        if reg == 0xF4:
            return 0
        if reg == 0xF8:
            return ROM_TABLE | 0x3
        if reg == 0xFC:
            return self.sim.chip.ahb_idr
        return 0

    def write(self, reg: int, value: int) -> None:
        if reg == 0x00:
            self.csw = value | 0x40  # DeviceEn is read-only: the bus is there
        elif reg == 0x04:
            self.tar = value
        elif reg == 0x0C:
            if self.sim.locked:
                raise exceptions.TransferFaultError("AHB-AP access faulted (APPROTECT)")
            size = self._size()
            if size == 4:
                self.sim.write32(self.tar, value)
            else:
                lane = (self.tar & 3) * 8
                data = (value >> lane & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
                if not self.sim.in_flash(self.tar):
                    self.sim.poke(self.tar, data)
            self._advance(size)

    def _advance(self, size: int) -> None:
        if self.csw >> 4 & 0x3 == 1:
            # TAR increments within a 4 KiB page (what pyOCD assumes for these APs).
            self.tar = (self.tar & ~0xFFF) | ((self.tar + size) & 0xFFF)


@dataclass
class ProbeBehaviour:
    """How the probe itself behaves: its capabilities and ways to misbehave."""

    swd_sequence: bool = True
    hang_on_connect: bool = False


class FakeProbe(DebugProbe):
    """A pyOCD debug probe wired to a SimChip (see the module docstring)."""

    #: The probes "plugged in"; tests add and clear them.
    CONNECTED: ClassVar[list[FakeProbe]] = []

    def __init__(self, unique_id: str, sim: SimChip,
                 behaviour: ProbeBehaviour | None = None) -> None:  # fmt: skip
        super().__init__()
        self._unique_id = unique_id
        self.sim = sim
        self.behaviour = behaviour or ProbeBehaviour()
        self._open = False
        self._protocol: DebugProbe.Protocol | None = None
        self._dp_select = 0
        self._ctrl_stat = 0
        self._selected = False
        self._ap = _MemAp(sim)
        self.opened = 0
        self.closed = 0
        self.released = threading.Event()

    # -- discovery ------------------------------------------------------------------------

    @classmethod
    def get_all_connected_probes(cls, unique_id: str | None = None,
                                 is_explicit: bool = False) -> list[FakeProbe]:  # fmt: skip
        return [p for p in cls.CONNECTED
                if unique_id is None or unique_id.lower() in p.unique_id.lower()]  # fmt: skip

    @classmethod
    def get_probe_with_id(cls, unique_id: str, is_explicit: bool = False) -> FakeProbe | None:
        for p in cls.CONNECTED:
            if p.unique_id.lower() == unique_id.lower():
                return p
        return None

    # -- properties -----------------------------------------------------------------------

    @property
    def description(self) -> str:
        return f"Fake CMSIS-DAP probe ({self.sim.chip.name})"

    @property
    def vendor_name(self) -> str:
        return "tinyml-hil tests"

    @property
    def product_name(self) -> str:
        return "Fake CMSIS-DAP"

    @property
    def supported_wire_protocols(self) -> Sequence[DebugProbe.Protocol]:
        return [DebugProbe.Protocol.DEFAULT, DebugProbe.Protocol.SWD]

    @property
    def unique_id(self) -> str:
        return self._unique_id

    @property
    def wire_protocol(self) -> DebugProbe.Protocol | None:
        return self._protocol

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def capabilities(self) -> set[DebugProbe.Capability]:
        caps = {DebugProbe.Capability.SWJ_SEQUENCE, DebugProbe.Capability.MANAGED_AP_SELECTION,
                DebugProbe.Capability.MANAGED_DPBANKSEL,
                DebugProbe.Capability.BANKED_DP_REGISTERS}  # fmt: skip
        if self.behaviour.swd_sequence:
            caps.add(DebugProbe.Capability.SWD_SEQUENCE)
        return caps

    # -- life cycle -----------------------------------------------------------------------

    def open(self) -> None:
        self._open = True
        self.opened += 1
        self.released.clear()

    def close(self) -> None:
        self._open = False
        self.closed += 1
        self.released.set()

    def connect(self, protocol: DebugProbe.Protocol | None = None) -> None:
        self._protocol = DebugProbe.Protocol.SWD
        if self.behaviour.hang_on_connect:
            # A probe stuck in a USB transfer: only closing it ends the wait.
            self.released.wait(30)
            raise exceptions.ProbeDisconnected("probe closed while connecting")

    def disconnect(self) -> None:
        self._protocol = None

    def swj_sequence(self, length: int, bits: int) -> None:
        pass

    def swd_sequence(self, sequences: Sequence[Any]) -> tuple[int, Sequence[bytes]]:
        if not self.behaviour.swd_sequence:
            raise exceptions.ProbeError("SWD sequences are not supported")
        for seq in sequences:  # (33, TARGETSEL value with parity) selects a multidrop DP
            if len(seq) == 2 and seq[0] == 33:
                self._selected = (seq[1] & 0xFFFFFFFF) == self.sim.chip.targetid
        return 0, [b"" for _ in sequences]

    def set_clock(self, frequency: float) -> None:
        pass

    def reset(self) -> None:
        self.sim.reset()

    def assert_reset(self, asserted: bool) -> None:
        if not asserted:
            self.sim.reset()

    def is_reset_asserted(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    # -- DP and AP registers ------------------------------------------------------------

    def read_dp(self, addr: int, now: bool = True) -> Any:
        value = self._read_dp(addr)
        return value if now else (lambda: value)

    def _read_dp(self, addr: int) -> int:
        if self.sim.chip.targetid is not None and not self._selected:
            # A multidrop DP stays silent until a TARGETSEL sequence selects it.
            raise exceptions.TransferError("no ACK from the DP")
        reg = addr & 0xC
        bank = (addr >> 4) & 0xF if addr > 0xF else self._dp_select & 0xF
        if reg == 0x0:
            return self.sim.chip.dpidr
        if reg == 0x4:
            if bank == 0:  # CTRL/STAT: each power-up request acknowledged as asked
                req = self._ctrl_stat & 0x50000000
                return req | req << 1
            if bank == 2 and self.sim.chip.targetid is not None:
                return self.sim.chip.targetid
            if bank == 3:
                return 0x00000001
            return 0
        return 0

    def write_dp(self, addr: int, data: int) -> None:
        bank = (addr >> 4) & 0xF if addr > 0xF else self._dp_select & 0xF
        if addr & 0xC == 0x8:
            self._dp_select = data
        elif addr & 0xC == 0x4 and bank == 0:
            self._ctrl_stat = data

    def _ctrl_ap_read(self, reg: int) -> int:
        if reg == 0x00C:
            return 0 if self.sim.locked else 1  # APPROTECTSTATUS
        if reg == 0x008:
            return 0  # ERASEALLSTATUS: done
        if reg == 0xFC:
            return 0x02880000
        return 0

    def _ctrl_ap_write(self, reg: int, value: int) -> None:
        if reg == 0x004 and value & 1:
            self.sim.mass_erase()
        elif reg == 0x000 and value & 1:
            self.sim.reset()

    def read_ap(self, addr: int, now: bool = True) -> Any:
        ap, reg = addr >> 24 & 0xFF, addr & 0xFF
        if ap == 0:
            value = self._ap.read(reg)
        elif ap == 1 and self.sim.chip.ctrl_ap:
            value = self._ctrl_ap_read(reg)
        else:
            value = 0
        return value if now else (lambda: value)

    def write_ap(self, addr: int, data: int) -> None:
        ap, reg = addr >> 24 & 0xFF, addr & 0xFF
        if ap == 0:
            self._ap.write(reg, data)
        elif ap == 1 and self.sim.chip.ctrl_ap:
            self._ctrl_ap_write(reg, data)

    def read_ap_multiple(self, addr: int, count: int = 1, now: bool = True) -> Any:
        values = [self.read_ap(addr) for _ in range(count)]
        return values if now else (lambda: values)

    def write_ap_multiple(self, addr: int, values: Sequence[int]) -> None:
        for v in values:
            self.write_ap(addr, v)


@dataclass
class Bench:
    """Probes plugged in for one test; `plug` adds one, cleared when the test ends."""

    probes: list[FakeProbe] = field(default_factory=list)

    def plug(self, unique_id: str, sim: SimChip, **behaviour: Any) -> FakeProbe:
        probe = FakeProbe(unique_id, sim, ProbeBehaviour(**behaviour))
        FakeProbe.CONNECTED.append(probe)
        self.probes.append(probe)
        return probe


def install() -> Callable[[], None]:
    """Put FakeProbe in pyOCD's probe table (and only it); returns the undo."""
    saved = dict(aggregator.PROBE_CLASSES)
    aggregator.PROBE_CLASSES.clear()
    aggregator.PROBE_CLASSES["fake"] = FakeProbe
    FakeProbe.CONNECTED.clear()

    def undo() -> None:
        aggregator.PROBE_CLASSES.clear()
        aggregator.PROBE_CLASSES.update(saved)
        FakeProbe.CONNECTED.clear()

    return undo


def wait_until(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()
