"""`hil doctor`: what this machine has for the bench, and which board each device pairs with.

Lists the toolchain and QEMU (with versions), pyOCD and the debug probes it sees, the serial
ports (VID:PID, USB serial number) and mounted RPI-RP2 drives; pairs each port with a probe
(the Raspberry Pi Debug Probe's UART carries the probe's own serial number) and with a board of
the hardware map or a known USB id. `--write-map PATH` writes a first hardware map, one entry
per probe, for the user to complete. It only looks: nothing is connected to or flashed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hil.errors import HilError
from hil.hardware_map import BoardInstance, dump_hardware_map, load_hardware_map
from hil.serial_ports import PortInfo, list_ports

#: USB devices a bench meets, by VID:PID (docs/bench-setup.md).
KNOWN_USB = {
    "2E8A:000C": "Raspberry Pi Debug Probe (CMSIS-DAP + UART)",
    "2E8A:0004": "picoprobe (original firmware)",
    "2E8A:0003": "Pico in BOOTSEL mode (RP2 Boot)",
    "2341:005A": "Arduino Nano 33 BLE (bootloader)",
    "2341:805A": "Arduino Nano 33 BLE (Arduino sketch)",
    "2341:015A": "Arduino Nano 33 BLE",
    "2341:025A": "Arduino Nano 33 BLE",
}
TOOLS = ("arm-none-eabi-gcc", "cmake", "ninja", "make", "qemu-system-arm")
PLACEHOLDER_TYPE = "FIXME"


@dataclass(frozen=True)
class ProbeInfo:
    unique_id: str
    description: str


@dataclass
class Diagnosis:
    """Everything `hil doctor` found."""

    tools: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # path, version
    pyocd: str = ""
    probes: list[ProbeInfo] = field(default_factory=list)
    probe_problem: str = ""
    ports: list[PortInfo] = field(default_factory=list)
    drives: list[Path] = field(default_factory=list)
    instances: list[BoardInstance] = field(default_factory=list)
    map_path: Path | None = None
    map_problem: str = ""

    def port_pairing(self, port: PortInfo) -> str:
        """What `port` is: a probe's UART, a map instance's port, a known USB device."""
        parts = []
        serial = (port.serial_number or "").lower()
        for probe in self.probes:
            if serial and probe.unique_id.lower() == serial:
                parts.append(f"UART of probe {probe.unique_id}")
        for inst in self.instances:
            same_serial = inst.serial_number and inst.serial_number.lower() == serial
            if inst.port == port.device or same_serial:
                parts.append(f"{inst.id} ({inst.type})")
            elif inst.probe and inst.probe.lower() == serial:
                parts.append(f"{inst.id} ({inst.type}, by its probe)")
        known = KNOWN_USB.get(port.usb_id)
        if known:
            parts.append(known)
        return "; ".join(parts) or "-"

    def probe_pairing(self, probe: ProbeInfo) -> str:
        boards = [f"{i.id} ({i.type})" for i in self.instances
                  if i.probe and i.probe.lower() == probe.unique_id.lower()]  # fmt: skip
        ports = [p.device for p in self.ports
                 if (p.serial_number or "").lower() == probe.unique_id.lower()]  # fmt: skip
        text = ", ".join(boards) or "not in the hardware map"
        return text + (f"; its UART is {', '.join(ports)}" if ports else "")


def diagnose(hardware_map: Path | None = None) -> Diagnosis:
    """Look at the machine (never connects to a target)."""
    from hil.targets.uf2 import find_drives
    from hil.tools import version_line

    found = Diagnosis()
    for tool in TOOLS:
        path = shutil.which(tool)
        found.tools[tool] = (path, version_line(path) if path else "")
    try:
        import pyocd
        from pyocd.core.helpers import ConnectHelper

        found.pyocd = pyocd.__version__
        probes = ConnectHelper.get_all_connected_probes(blocking=False)
        found.probes = [ProbeInfo(p.unique_id, p.description) for p in probes]
    except ImportError as exc:
        found.probe_problem = f"pyOCD cannot be imported ({exc}): run scripts/setup.sh"
    except Exception as exc:  # USB permissions and the like
        found.probe_problem = (
            f"listing debug probes failed ({exc}); see the udev rules in docs/bench-setup.md"
        )
    found.ports = list_ports()
    found.drives = find_drives("RPI-RP2")
    from hil.hardware_map import map_path

    found.map_path = map_path(hardware_map)
    if found.map_path is not None:
        try:
            found.instances = load_hardware_map(found.map_path)
        except HilError as exc:
            found.map_problem = str(exc)
    return found


def starting_map(found: Diagnosis) -> list[BoardInstance]:
    """One entry per probe, paired with its UART when the serial numbers match; the board type
    comes from the current map when it knows the probe, else is left for the user to set."""
    entries = []
    for n, probe in enumerate(found.probes, 1):
        known = [i for i in found.instances
                 if i.probe and i.probe.lower() == probe.unique_id.lower()]  # fmt: skip
        board = known[0].type if known else PLACEHOLDER_TYPE
        ports = [p.device for p in found.ports
                 if (p.serial_number or "").lower() == probe.unique_id.lower()]  # fmt: skip
        port = known[0].port if known and known[0].port else (ports[0] if ports else None)
        name = known[0].id if known else f"board-{n}"
        entries.append(BoardInstance(id=name, type=board, probe=probe.unique_id, port=port,
                                     notes=probe.description))  # fmt: skip
    return entries


def write_map(found: Diagnosis, path: Path, *, force: bool = False) -> list[BoardInstance]:
    """Write the starting map to `path` (never over an existing file unless `force`)."""
    if path.exists() and not force:
        raise HilError(f"{path} exists; pass --force to overwrite it, or choose another path")
    entries = starting_map(found)
    comment = (
        "tinyml-hil hardware map (written by hil doctor --write-map): one [[board]] per board\n"
        f"instance. Set type = the board wired to each probe (where it says {PLACEHOLDER_TYPE}:\n"
        "pico, nano33ble, ...; `hil boards` lists them). port is optional when the probe's\n"
        "UART carries its serial number. See docs/bench-setup.md."
    )
    try:
        path.write_text(dump_hardware_map(entries, comment))
    except OSError as exc:
        raise HilError(f"cannot write the hardware map {path}: {exc.strerror or exc}") from exc
    return entries


def render(found: Diagnosis) -> str:
    """Plain text for the terminal (and for bug reports)."""
    lines = ["toolchain and emulator:"]
    for tool, (path, version) in found.tools.items():
        lines.append(f"  {tool:18} {version or path or 'MISSING'}")
    lines.append(f"pyOCD: {found.pyocd or 'not importable'}")
    lines.append("debug probes:")
    if found.probe_problem:
        lines.append(f"  {found.probe_problem}")
    for probe in found.probes:
        lines.append(f"  {probe.unique_id}  {probe.description}  -> {found.probe_pairing(probe)}")
    if not found.probes and not found.probe_problem:
        lines.append("  none connected")
    lines.append("serial ports:")
    for port in found.ports:
        lines.append(f"  {port.device:14} {port.usb_id:9} serial {port.serial_number or '-':18}"
                     f" {port.description}  -> {found.port_pairing(port)}")  # fmt: skip
    if not found.ports:
        lines.append("  none")
    lines.append("RPI-RP2 drives: " + (", ".join(map(str, found.drives)) or "none mounted"))
    where = str(found.map_path) if found.map_path else "none (--hardware-map, $HIL_HARDWARE_MAP)"
    lines.append(f"hardware map: {where}")
    if found.map_problem:
        lines.append(f"  {found.map_problem}")
    for inst in found.instances:
        probe, port = inst.probe or "-", inst.port or "-"
        lines.append(f"  {inst.id}: {inst.type}, probe {probe}, port {port}")
    return "\n".join(lines)
