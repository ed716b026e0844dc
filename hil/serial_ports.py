"""Finding a physical board's serial port, again after a reset, and waiting for its firmware.

The port is, in order: the one given (--port or the hardware map), the USB serial device whose
serial number is the one given (the Raspberry Pi Debug Probe's UART carries the probe's own
unique id, so the probe id finds its UART), or the only USB serial device with one of the
board's VID:PIDs. A USB serial adapter can re-enumerate when the board resets, so after a
reset the search runs again until the port is back. Then the host sends a harmless request
(ECHO) until the firmware answers, within a bound, before any input goes out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hil.errors import PortBusyError, SerialPortError, TargetError, TargetTimeout


@dataclass(frozen=True)
class PortInfo:
    """One serial port as pyserial's list_ports describes it."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    description: str

    @property
    def usb_id(self) -> str:
        return f"{self.vid:04X}:{self.pid:04X}" if self.vid is not None else "-"


def list_ports() -> list[PortInfo]:
    """The serial ports present now (pyserial `list_ports.comports`)."""
    from serial.tools import list_ports as lp

    return [
        PortInfo(p.device, p.vid, p.pid, p.serial_number, p.description or "")
        for p in sorted(lp.comports(), key=lambda p: p.device)
    ]


def _present(ports: Sequence[PortInfo]) -> str:
    if not ports:
        return "no serial ports are present"
    shown = [f"{p.device} ({p.usb_id}, serial {p.serial_number or '-'})" for p in ports]
    return "ports present: " + ", ".join(shown)


def find_port(
    *,
    port: str | None = None,
    serial_number: str | None = None,
    usb_ids: Sequence[str] = (),
    board: str = "the board",
) -> str:
    """The device path (or pyserial URL) of `board`'s port now; SerialPortError naming what is
    present when it cannot be found or is ambiguous."""
    if port:
        if "://" in port or os.path.exists(port):
            return port
        raise SerialPortError(
            f"serial port {port} of {board} does not exist; {_present(list_ports())}. "
            "Is the USB-UART adapter plugged in? (`hil doctor` lists ports)"
        )
    ports = list_ports()
    if serial_number:
        matches = [
            p for p in ports if p.serial_number and p.serial_number.lower() == serial_number.lower()
        ]
        if matches:
            return matches[0].device
        raise SerialPortError(
            f"no serial port with USB serial number {serial_number} for {board}; "
            f"{_present(ports)}. Give the port with --port or in the hardware map"
        )
    wanted = {u.upper() for u in usb_ids}
    matches = [p for p in ports if p.usb_id in wanted]
    if len(matches) == 1:
        return matches[0].device
    if matches:
        raise SerialPortError(
            f"several serial ports could be {board}'s ({', '.join(p.device for p in matches)}); "
            "name one with --port or in the hardware map (`hil doctor --write-map`)"
        )
    ids = f" with VID:PID {', '.join(sorted(wanted))}" if wanted else ""
    raise SerialPortError(
        f"no serial port{ids} found for {board}; {_present(ports)}. Give it with --port or "
        "in the hardware map; see docs/bench-setup.md for the wiring"
    )


def refind_port(find: Callable[[], str], within_s: float, poll_s: float = 0.1) -> str:
    """`find()` again until it succeeds or `within_s` passes (a port that re-enumerates after
    a reset is briefly absent)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return find()
        except SerialPortError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(poll_s)


def wait_for_firmware(
    find: Callable[[], str],
    *,
    baudrate: int,
    within_s: float,
    attempt_s: float = 0.5,
    board: str = "the board",
) -> str:
    """Find the port and send ECHO until the firmware answers (bounded retries); returns the
    port. A busy port is reported at once; silence until `within_s` is a TargetTimeout that
    says what to check."""
    from hil.link import DeviceLink

    deadline = time.monotonic() + within_s
    last: Exception | None = None
    url = None
    while time.monotonic() < deadline:
        try:
            url = refind_port(find, max(0.0, deadline - time.monotonic()))
            with DeviceLink(url, timeout=attempt_s, baudrate=baudrate, exclusive=True) as link:
                nonce = os.urandom(4)
                if link.echo(nonce) == nonce:
                    return url
        except (PortBusyError, SerialPortError):
            raise
        except TargetError as exc:
            last = exc
        time.sleep(0.05)
    where = f" on {url}" if url else ""
    raise TargetTimeout(
        f"the firmware on {board} did not answer{where} within {within_s:g} s after reset "
        f"({last}); check the UART wiring (the board's TX to the adapter's RX and back, common "
        "GND), the baud rate, and that the image starts (docs/bench-setup.md)"
    )
