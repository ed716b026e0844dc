"""What the physical-board kinds (pyocd, uf2) share: which board instance to use, how to find
its serial port, the report facts about it, and link timeouts from the board's own clock."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from hil.errors import SerialPortError
from hil.hardware_map import BoardInstance, claim, load_hardware_map, map_path, select
from hil.serial_ports import find_port, wait_for_firmware
from hil.targets.base import Field, Target, positive

#: [run] keys every physical kind takes: timeouts of its own (a board at 64 MHz is not QEMU on
#: a loaded host).
TIMEOUT_FIELDS = {
    "boot_timeout_s": Field(float, 10.0, positive, "wait for the firmware to answer after reset"),
    "base_timeout_s": Field(float, 10.0, positive, "link timeout before the inference time"),
    "worst_cycles_per_mac": Field(float, 40.0, positive, "slowest kernels, for the timeout"),
    "claim_timeout_s": Field(float, 600.0, positive, "wait for a board instance in use"),
}


class PhysicalTarget(Target):
    """Base of the kinds that run on a board on the bench."""

    settings: Any

    def link_timeout(self, macs: int) -> float:
        """Base plus twice the slowest plausible inference at the board's own clock."""
        cycles = macs * float(self.settings["worst_cycles_per_mac"])
        return float(self.settings["base_timeout_s"]) + 2.0 * cycles / self.board.clock_hz

    def candidates(self) -> list[BoardInstance]:
        """The hardware map's instances of this board (filtered by --probe/--port), or one
        made from the command line when there is no map or it lists none."""
        opts = self.options
        path = map_path(opts.hardware_map)
        if path is not None:
            found = select(load_hardware_map(path), self.board.name, probe=opts.probe,
                           port=opts.port)  # fmt: skip
            if found:
                return found
        return [BoardInstance(id=opts.probe or opts.port or self.board.name,
                              type=self.board.name, probe=opts.probe, port=opts.port)]  # fmt: skip

    @contextlib.contextmanager
    def claimed(self) -> Iterator[BoardInstance]:
        with claim(self.candidates(), timeout_s=float(self.settings["claim_timeout_s"])) as inst:
            yield inst

    def port_finder(self, inst: BoardInstance, probe_id: str | None = None) -> Callable[[], str]:
        """Finds the instance's port now: the given one, else by USB serial number (the
        instance's, else the probe's: a Debug Probe's UART shares its id), else by VID:PID."""
        name = f"{self.board.name} ({inst.id})"
        port = self.options.port or inst.port
        serial = inst.serial_number or probe_id
        usb_ids = self.board.serial.usb_ids

        def find() -> str:
            if port:
                return find_port(port=port, board=name)
            if serial:
                try:
                    return find_port(serial_number=serial, board=name)
                except SerialPortError:
                    if not usb_ids or inst.serial_number:
                        raise
            return find_port(usb_ids=usb_ids, board=name)

        return find

    def await_firmware(self, find: Callable[[], str]) -> str:
        return wait_for_firmware(
            find,
            baudrate=self.board.serial.baudrate,
            within_s=float(self.settings["boot_timeout_s"]),
            board=self.board.name,
        )

    def _facts(self, inst: BoardInstance, url: str, **more: str) -> dict[str, str]:
        facts = {"instance": inst.id, "port": url, **more}
        for key in ("code", "weights", "activations", "icache"):
            if key in self.board.memory:
                facts[key] = self.board.memory[key]
        return facts

    def provenance(self) -> dict[str, str]:
        return dict(getattr(self, "_provenance", {}))
