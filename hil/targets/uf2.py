"""Target kind "uf2": the Pico's no-probe path. Write the image as UF2 and copy it to the
board's mounted BOOTSEL drive (RPI-RP2); the boot ROM writes it to flash and reboots into
it. Then talk to the firmware over the serial port, as with pyOCD.

Its settings come from [uf2] (a board flashed with pyOCD otherwise, used with --uf2) or from
[run] when kind = "uf2": family_id (required), drive_label, mount_timeout_s, and the physical
kinds' timeouts (hil.targets.physical). Unknown keys are an error.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hil.errors import ConnectError, FlashError
from hil.firmware_image import load_segments, to_uf2
from hil.targets.base import Field, TargetOptions, positive, validate_table
from hil.targets.physical import TIMEOUT_FIELDS, PhysicalTarget

RUN_FIELDS = {
    "family_id": Field(int, help="UF2 family id (RP2040: 0xE48BFF56)"),
    "drive_label": Field(str, "RPI-RP2", help="volume name of the BOOTSEL drive"),
    "mount_timeout_s": Field(float, 30.0, positive, "wait for the drive to appear"),
    **TIMEOUT_FIELDS,
}
#: A file every RP2040 BOOTSEL drive holds (it tells a drive from any folder of that name).
INFO_FILE = "INFO_UF2.TXT"


def parse_run(table: dict[str, Any], where: str, prefix: str = "run.") -> dict[str, Any]:
    return validate_table(table, RUN_FIELDS, where, prefix)


def find_drives(label: str) -> list[Path]:
    """Mounted folders named `label` holding INFO_UF2.TXT (from /proc/mounts, then the usual
    automount places)."""
    seen: list[Path] = []
    places: list[Path] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 1:
                places.append(Path(parts[1].replace("\\040", " ")))
    for root in (Path("/media"), Path("/run/media"), Path("/mnt")):
        places += list(root.glob(label)) + list(root.glob(f"*/{label}"))
    for place in places:
        if place.name == label and (place / INFO_FILE).is_file() and place not in seen:
            seen.append(place)
    return seen


class Uf2Target(PhysicalTarget):
    """Runs images on a Pico by UF2 copy to its BOOTSEL drive."""

    def __init__(self, board: Any, options: TargetOptions | None = None) -> None:
        super().__init__(board, options)
        self.settings = board.uf2 if board.uf2 is not None else board.run.settings
        self._provenance: dict[str, str] = {}

    def check_tools(self) -> None:
        """Nothing to install: a UF2 copy needs only a mounted drive."""

    def version(self) -> str:
        return f"UF2 copy to {self.settings['drive_label']}"

    def _drive(self, given: str | None) -> Path:
        if given:
            path = Path(given)
            if (path / INFO_FILE).is_file():
                return path
            raise ConnectError(
                f"{path} is not a mounted {self.settings['drive_label']} drive (no {INFO_FILE});"
                " hold BOOTSEL while plugging the Pico in and mount the drive"
            )
        label = str(self.settings["drive_label"])
        deadline = time.monotonic() + float(self.settings["mount_timeout_s"])
        while True:
            drives = find_drives(label)
            if len(drives) == 1:
                return drives[0]
            if len(drives) > 1:
                raise ConnectError(
                    f"{len(drives)} {label} drives are mounted ({', '.join(map(str, drives))}); "
                    "name one with uf2_drive in the hardware map"
                )
            if time.monotonic() >= deadline:
                raise ConnectError(
                    f"no {label} drive is mounted: hold BOOTSEL while plugging the Pico in, "
                    "mount the drive (docs/bench-setup.md), or name it with uf2_drive in the "
                    "hardware map"
                )
            time.sleep(0.25)

    @contextlib.contextmanager
    def session(self, elf: Path) -> Iterator[str]:
        data = to_uf2(load_segments(elf), int(self.settings["family_id"]))
        with self.claimed() as inst:
            drive = self._drive(str(self.options.uf2_drive or inst.uf2_drive or "") or None)
            target = drive / f"{Path(elf).stem}.uf2"
            try:
                with open(target, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise FlashError(
                    f"copying the UF2 image to {drive} failed ({exc.strerror or exc}); the Pico "
                    "may have left BOOTSEL mode: hold BOOTSEL, replug it and try again"
                ) from exc
            url = self.await_firmware(self.port_finder(inst))
            self._provenance = self._facts(
                inst, url, uf2=f"{len(data)} bytes copied to {drive}"
            )
            yield url


TARGET = Uf2Target
