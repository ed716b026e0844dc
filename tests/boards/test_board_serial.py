"""The host's serial path on a physical board, over a pseudo-terminal pair against a simulated
device (tests/boards/device_sim.py), with the host code unchanged: finding the port (by path,
USB serial number, VID:PID), waiting for the firmware after reset, a slow device, a device
that resets mid-run and comes back under another port name, and a port another program
holds."""

from __future__ import annotations

import os
import time

import pytest
from boards.device_sim import (
    IO_BYTES,
    MODEL_ID,
    PROBE_SERIAL,
    Behaviour,
    SimDevice,
    debug_probe_port,
)

from hil import serial_ports
from hil.errors import PortBusyError, SerialPortError, TargetTimeout, failure_class
from hil.link import DeviceLink
from hil.serial_ports import PortInfo, find_port, wait_for_firmware


@pytest.fixture
def ports(monkeypatch: pytest.MonkeyPatch) -> list[PortInfo]:
    """What pyserial's list_ports reports; tests fill it (a simulated device's entry follows
    its current pty, which changes when it re-enumerates)."""
    listed: list[PortInfo] = []
    monkeypatch.setattr(serial_ports, "list_ports", lambda: list(listed))
    return listed


def run_inference(url: str, timeout: float = 3.0) -> tuple[list[int], bytes]:
    with DeviceLink(url, timeout=timeout, baudrate=115200, exclusive=True) as link:
        info = link.expect_model(MODEL_ID)
        assert info.board == "pico" and info.counts_per_second == 125_000_000
        data = bytes(range(IO_BYTES))
        link.write_input(0, data)
        result = link.run(3, warmup=1)
        return result.counts, link.read_output(0)


def test_port_found_by_probe_serial_number_then_talked_to(ports: list[PortInfo]) -> None:
    with SimDevice() as device:
        ports.append(PortInfo("/dev/ttyUSB7", 0x0403, 0x6001, "FT123", "FT232R"))
        ports.append(debug_probe_port(device))
        url = find_port(serial_number=PROBE_SERIAL.lower())
        assert url == device.path
        counts, out = run_inference(url)
    assert counts == [1000, 1010, 1020] and out == bytes(range(IO_BYTES))[::-1]


def test_port_by_usb_id_must_be_unambiguous(ports: list[PortInfo]) -> None:
    ports.append(PortInfo("/dev/ttyACM0", 0x2E8A, 0x000C, "A", "Debug Probe"))
    assert find_port(usb_ids=["2e8a:000c"]) == "/dev/ttyACM0"
    ports.append(PortInfo("/dev/ttyACM1", 0x2E8A, 0x000C, "B", "Debug Probe"))
    with pytest.raises(SerialPortError, match=r"several serial ports.*--port"):
        find_port(usb_ids=["2E8A:000C"], board="pico")


def test_a_missing_port_names_what_is_present(ports: list[PortInfo]) -> None:
    ports.append(PortInfo("/dev/ttyUSB0", 0x0403, 0x6001, "FT1", "FT232R"))
    with pytest.raises(SerialPortError, match=r"no serial port with USB serial number X1.*ttyUSB0"):
        find_port(serial_number="X1", board="pico")
    with pytest.raises(SerialPortError, match="/dev/ttyNOPE of pico does not exist") as info:
        find_port(port="/dev/ttyNOPE", board="pico")
    assert failure_class(info.value) == "connect"


def test_the_host_waits_for_the_firmware_after_reset(ports: list[PortInfo]) -> None:
    noise = b"\r\nboot rom v1\r\n\x00\xff" * 4
    with SimDevice(Behaviour(boot_delay_s=0.8, boot_noise=noise)) as device:
        ports.append(debug_probe_port(device))
        start = time.monotonic()
        url = wait_for_firmware(lambda: find_port(serial_number=PROBE_SERIAL), baudrate=115200,
                                within_s=5.0, attempt_s=0.3)  # fmt: skip
        answered = time.monotonic()
        # The host got its answer only once the firmware was awake (the device's own clock, so
        # a slow start of the test under load cannot make this pass or fail by itself).
        assert url == device.path and device.awake_at <= answered < start + 4.0
        assert echo_seen(device)
        counts, _ = run_inference(url)
        assert len(counts) == 3


def echo_seen(device: SimDevice) -> bool:
    from hil.link import REQ_ECHO

    return REQ_ECHO in device.requests


def test_a_device_that_never_answers_is_a_bounded_no_answer(ports: list[PortInfo]) -> None:
    with SimDevice(Behaviour(boot_delay_s=60)) as device:
        ports.append(debug_probe_port(device))
        start = time.monotonic()
        with pytest.raises(TargetTimeout, match=r"did not answer.*within 1.5 s") as info:
            wait_for_firmware(lambda: find_port(serial_number=PROBE_SERIAL), baudrate=115200,
                              within_s=1.5, attempt_s=0.3, board="pico")  # fmt: skip
        assert time.monotonic() - start < 4
        assert failure_class(info.value) == "no-answer"


def test_a_slow_device(ports: list[PortInfo]) -> None:
    """2 ms per byte (a tenth of 115200 baud): every answer arrives piecemeal and late."""
    with SimDevice(Behaviour(byte_delay_s=0.002, run_seconds=0.3)) as device:
        ports.append(debug_probe_port(device))
        url = wait_for_firmware(lambda: find_port(serial_number=PROBE_SERIAL), baudrate=115200,
                                within_s=10.0, attempt_s=1.0)  # fmt: skip
        counts, out = run_inference(url, timeout=5.0)
    assert counts == [1000, 1010, 1020] and out == bytes(range(IO_BYTES))[::-1]


def test_a_device_that_resets_mid_run(ports: list[PortInfo]) -> None:
    """The device resets instead of answering RUN and re-enumerates under a new pty: the run
    fails as "no answer" within its bound; the port is found again by its serial number, the
    host waits for the firmware, and the next run works."""
    with SimDevice(Behaviour(reset_on_run=1, boot_noise=b"\x00boot\r\n")) as device:
        ports.append(debug_probe_port(device))
        find = lambda: find_port(serial_number=PROBE_SERIAL)  # noqa: E731
        first = wait_for_firmware(find, baudrate=115200, within_s=5.0, attempt_s=0.3)
        start = time.monotonic()
        with pytest.raises(TargetTimeout) as info:
            run_inference(first, timeout=1.0)
        assert time.monotonic() - start < 10
        assert failure_class(info.value) == "no-answer" and device.resets == 1
        again = wait_for_firmware(find, baudrate=115200, within_s=5.0, attempt_s=0.3)
        assert again == device.path and again != first
        counts, out = run_inference(again)
    assert counts == [1000, 1010, 1020] and out == bytes(range(IO_BYTES))[::-1]


def test_a_busy_port_is_reported_at_once(ports: list[PortInfo]) -> None:
    with SimDevice() as device:
        ports.append(debug_probe_port(device))
        with DeviceLink(device.path, timeout=1.0, exclusive=True):
            with pytest.raises(PortBusyError, match="in use by another program") as info:
                DeviceLink(device.path, timeout=1.0, exclusive=True)
            assert failure_class(info.value) == "connect"
            start = time.monotonic()
            with pytest.raises(PortBusyError):
                wait_for_firmware(lambda: find_port(serial_number=PROBE_SERIAL),
                                  baudrate=115200, within_s=10.0)  # fmt: skip
            assert time.monotonic() - start < 2  # not retried until the deadline
        # Released: the next run gets it.
        counts, _ = run_inference(device.path)
        assert counts


def test_exclusive_is_only_for_local_devices() -> None:
    """A socket:// URL (QEMU) ignores the lock request instead of failing."""
    with pytest.raises(Exception) as info:
        DeviceLink("socket://127.0.0.1:1", timeout=0.2, exclusive=True)
    assert not isinstance(info.value, PortBusyError)
    assert os.name == "posix"
