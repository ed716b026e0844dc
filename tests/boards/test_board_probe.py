"""The pyOCD layer (hil.targets.probe) against pyOCD's own session, target, discovery and flash
loader, with only the probe replaced by a simulated one (tests/boards/fake_probe.py): the
bench's calls, options and error handling all run for real, and every error of issue 9 item 4
is produced here."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from boards.fake_probe import Bench, SimChip, install, nrf52840_chip, rp2040_chip

from hil.boards import load_board
from hil.errors import (
    ConnectError,
    FlashError,
    NoProbeError,
    ProbeCapabilityError,
    TargetLockedError,
    WrongTargetError,
    failure_class,
)
from hil.firmware_image import crc32_mpeg2
from hil.targets.probe import ProbeSettings, flash_image

PICO_ID = "E6614103E7A1B2C3"
NANO_ID = "0240000034544e45"


@pytest.fixture
def bench() -> Iterator[Bench]:
    undo = install()
    try:
        yield Bench()
    finally:
        undo()


def settings(board: str, **changes: object) -> ProbeSettings:
    base = ProbeSettings.from_run(load_board(board).run.settings)
    return dataclasses.replace(base, **changes)


def pico_image(good_boot2: bool = True) -> bytes:
    boot2 = bytes(range(1, 253))
    crc = crc32_mpeg2(boot2) ^ (0 if good_boot2 else 1)
    return boot2 + crc.to_bytes(4, "little") + bytes(range(256)) * 7 + b"tail"


NANO_IMAGE = bytes(range(255, -1, -1)) * 9
BOOTLOADER = b"ARDUINO-BOOTLOADER" * 100


def test_pico_is_flashed_verified_after_reset_and_left_running(bench: Bench) -> None:
    sim = SimChip(rp2040_chip())
    probe = bench.plug(PICO_ID, sim)
    image = pico_image()
    result = flash_image(settings("pico"), 0x10000000, image, probe_id=PICO_ID, unlock=False)
    assert sim.peek(0x10000000, len(image)) == image
    assert result.probe_id == PICO_ID and result.attempts == 1
    assert result.verified == "after-reset"
    # One reset for the verify (XIP back on), one to start the firmware; then released.
    assert sim.events == ["reset", "reset"] and sim.running_firmware and sim.xip_on
    assert not probe.is_open and probe.closed >= 1


def test_pico_verify_by_plain_read_back_fails_since_programming_leaves_xip_off(
    bench: Bench,
) -> None:
    bench.plug(PICO_ID, SimChip(rp2040_chip()))
    with pytest.raises(FlashError, match="does not hold the image") as info:
        flash_image(settings("pico", verify="read-back"), 0x10000000, pico_image(),
                    probe_id=PICO_ID, unlock=False)  # fmt: skip
    assert failure_class(info.value) == "flash"


def test_pico_image_with_a_bad_boot2_crc_fails_verification(bench: Bench) -> None:
    bench.plug(PICO_ID, SimChip(rp2040_chip()))
    with pytest.raises(FlashError, match="first difference at 0x10000000"):
        flash_image(settings("pico"), 0x10000000, pico_image(good_boot2=False),
                    probe_id=PICO_ID, unlock=False)  # fmt: skip


def test_nano_is_flashed_at_0x10000_and_the_bootloader_stays(bench: Bench) -> None:
    sim = SimChip(nrf52840_chip())
    sim.poke(0, BOOTLOADER)
    bench.plug(NANO_ID, sim)
    result = flash_image(settings("nano33ble"), 0x10000, NANO_IMAGE, probe_id=NANO_ID,
                         unlock=False)  # fmt: skip
    assert result.verified == "read-back"
    assert sim.peek(0x10000, len(NANO_IMAGE)) == NANO_IMAGE
    assert sim.peek(0, len(BOOTLOADER)) == BOOTLOADER
    assert all(address >= 0x10000 for _, address in sim.flash_ops)
    assert sim.running_firmware


def test_no_probe(bench: Bench) -> None:
    with pytest.raises(NoProbeError, match="no debug probe is connected") as info:
        flash_image(settings("nano33ble"), 0x10000, NANO_IMAGE, probe_id=None, unlock=False)
    assert "docs/bench-setup.md" in str(info.value)
    assert failure_class(info.value) == "connect"


def test_the_named_probe_is_not_connected(bench: Bench) -> None:
    bench.plug(NANO_ID, SimChip(nrf52840_chip()))
    with pytest.raises(NoProbeError, match=f"no debug probe with id E66.*connected: {NANO_ID}"):
        flash_image(settings("pico"), 0x10000000, pico_image(), probe_id="E6614103E7FFFFFF",
                    unlock=False)  # fmt: skip


def test_several_probes_and_none_named_is_an_error_not_a_prompt(bench: Bench) -> None:
    bench.plug(NANO_ID, SimChip(nrf52840_chip()))
    bench.plug(PICO_ID, SimChip(rp2040_chip()))
    with pytest.raises(NoProbeError, match=r"2 debug probes are connected.*--probe"):
        flash_image(settings("pico"), 0x10000000, pico_image(), probe_id=None, unlock=False)


def test_an_id_that_is_a_substring_of_another_picks_the_exact_one(bench: Bench) -> None:
    other = SimChip(rp2040_chip())
    bench.plug(PICO_ID + "0", other)
    mine = SimChip(rp2040_chip())
    bench.plug(PICO_ID, mine)
    flash_image(settings("pico"), 0x10000000, pico_image(), probe_id=PICO_ID.lower(),
                unlock=False)  # fmt: skip
    assert mine.flash_ops and not other.flash_ops


def test_rp2040_needs_a_probe_with_swd_multidrop(bench: Bench) -> None:
    sim = SimChip(rp2040_chip())
    probe = bench.plug(PICO_ID, sim, swd_sequence=False)
    with pytest.raises(ProbeCapabilityError, match=r"SWD multidrop.*protocol\s+1.2"):
        flash_image(settings("pico"), 0x10000000, pico_image(), probe_id=PICO_ID, unlock=False)
    assert probe.opened == 1 and not probe.is_open  # checked, closed, nothing else done
    assert sim.events == [] and sim.flash_ops == []


def test_the_nano_does_not_need_multidrop(bench: Bench) -> None:
    sim = SimChip(nrf52840_chip())
    bench.plug(NANO_ID, sim, swd_sequence=False)
    flash_image(settings("nano33ble"), 0x10000, NANO_IMAGE, probe_id=NANO_ID, unlock=False)
    assert sim.peek(0x10000, len(NANO_IMAGE)) == NANO_IMAGE


def test_a_locked_nrf52_is_never_erased_without_unlock(bench: Bench) -> None:
    sim = SimChip(nrf52840_chip(), locked=True)
    sim.poke(0, BOOTLOADER)
    bench.plug(NANO_ID, sim)
    with pytest.raises(TargetLockedError, match=r"--unlock.*erases the whole chip") as info:
        flash_image(settings("nano33ble"), 0x10000, NANO_IMAGE, probe_id=NANO_ID, unlock=False)
    assert failure_class(info.value) == "connect"
    assert not sim.mass_erased and sim.peek(0, len(BOOTLOADER)) == BOOTLOADER


def test_unlock_mass_erases_then_flashes(bench: Bench) -> None:
    sim = SimChip(nrf52840_chip(), locked=True)
    sim.poke(0, BOOTLOADER)
    bench.plug(NANO_ID, sim)
    flash_image(settings("nano33ble"), 0x10000, NANO_IMAGE, probe_id=NANO_ID, unlock=True)
    assert sim.mass_erased and sim.peek(0, 4) == b"\xff" * 4
    assert sim.peek(0x10000, len(NANO_IMAGE)) == NANO_IMAGE


def test_the_pico_settings_against_a_nano_is_the_wrong_target(bench: Bench) -> None:
    sim = SimChip(nrf52840_chip())
    bench.plug(NANO_ID, sim)
    with pytest.raises(ConnectError, match=r"is a rp2040|not a rp2040") as info:
        flash_image(settings("pico"), 0x10000000, pico_image(), probe_id=NANO_ID, unlock=False)
    assert sim.flash_ops == []
    assert failure_class(info.value) == "connect"


def test_the_nano_settings_against_a_pico_is_the_wrong_target(bench: Bench) -> None:
    sim = SimChip(rp2040_chip())
    bench.plug(PICO_ID, sim)
    with pytest.raises(ConnectError, match="is a nrf52840") as info:
        flash_image(settings("nano33ble"), 0x10000, NANO_IMAGE, probe_id=PICO_ID, unlock=False)
    assert not isinstance(info.value, TargetLockedError)  # an RP2040 never looks "locked"
    assert sim.flash_ops == []


def test_an_identity_register_mismatch_is_the_wrong_target(bench: Bench) -> None:
    chip = nrf52840_chip()
    chip.ids[0x10000100] = 0x00052833  # an nRF52833 on the bench instead
    bench.plug(NANO_ID, SimChip(chip))
    with pytest.raises(WrongTargetError, match=r"reads 0x00052833, expected 0x00052840"):
        flash_image(settings("nano33ble"), 0x10000, NANO_IMAGE, probe_id=NANO_ID, unlock=False)


def test_an_unknown_pyocd_target_name_is_the_wrong_target(bench: Bench) -> None:
    bench.plug(NANO_ID, SimChip(nrf52840_chip()))
    with pytest.raises(WrongTargetError, match="does not know the target 'nrf52841'"):
        flash_image(settings("nano33ble", target="nrf52841", chip_id=None), 0x10000, NANO_IMAGE,
                    probe_id=NANO_ID, unlock=False)  # fmt: skip


def test_one_flash_failure_is_retried(bench: Bench) -> None:
    sim = SimChip(nrf52840_chip(), fail_programs=1)
    bench.plug(NANO_ID, sim)
    result = flash_image(settings("nano33ble"), 0x10000, NANO_IMAGE, probe_id=NANO_ID,
                         unlock=False)  # fmt: skip
    assert result.attempts == 2
    assert sim.peek(0x10000, len(NANO_IMAGE)) == NANO_IMAGE


def test_a_second_flash_failure_is_a_flash_error_not_a_build_failure(bench: Bench) -> None:
    sim = SimChip(nrf52840_chip(), fail_programs=10)
    bench.plug(NANO_ID, sim)
    with pytest.raises(FlashError, match="failed twice") as info:
        flash_image(settings("nano33ble"), 0x10000, NANO_IMAGE, probe_id=NANO_ID, unlock=False)
    assert failure_class(info.value) == "flash"


def test_a_verify_mismatch_is_a_flash_error(bench: Bench) -> None:
    bench.plug(NANO_ID, SimChip(nrf52840_chip(), corrupt_writes=True))
    with pytest.raises(FlashError, match="first difference at 0x00010000"):
        flash_image(settings("nano33ble"), 0x10000, NANO_IMAGE, probe_id=NANO_ID, unlock=False)


def test_a_hung_probe_times_out_and_is_released(bench: Bench) -> None:
    probe = bench.plug(NANO_ID, SimChip(nrf52840_chip()), hang_on_connect=True)
    start = time.monotonic()
    with pytest.raises(ConnectError, match=r"took more than 1 s.*board released"):
        flash_image(settings("nano33ble", connect_timeout_s=1.0), 0x10000, NANO_IMAGE,
                    probe_id=NANO_ID, unlock=False)  # fmt: skip
    assert time.monotonic() - start < 10
    assert probe.released.is_set() and not probe.is_open
