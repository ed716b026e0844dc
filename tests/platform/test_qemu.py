"""The firmware and the host link end to end, on both QEMU boards (fixtures/echo_model)."""

from __future__ import annotations

import gc
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from platform_support import BOARD_NAMES, ECHO_MODEL_ID

from hil import link
from hil.boards import Board, load_board
from hil.build import BuildResult
from hil.errors import ProtocolError, TargetError, TargetFault, TargetTimeout, ToolchainError
from hil.link import DeviceFault, DeviceLink
from hil.targets import open_target
from hil.targets.qemu import EXIT_FAULT

pytestmark = [pytest.mark.qemu, pytest.mark.usefixtures("no_qemu_left")]

#: QEMU's SysTick clocks (counts per second) on the two machines.
COUNTS_PER_SECOND = {"qemu-m4": 25_000_000, "qemu-m0": 16_000_000}
IN1 = bytes(i * 7 % 256 for i in range(3000))


def control(command: int = 0, work: int = 0, depth: int = 0) -> bytes:
    """Input 0 of the echo model: command byte, work units, stack depth, then data."""
    return bytes([command, work, depth]) + bytes(range(100, 161))


@pytest.fixture
def image(board: Board, echo_images: dict[str, BuildResult]) -> Path:
    return echo_images[board.name].elf


def test_info_describes_the_image_that_was_built(board: Board, image: Path) -> None:
    with open_target(board).session(image) as url, DeviceLink(url, timeout=5) as dev:
        info = dev.expect_model(ECHO_MODEL_ID)
        with pytest.raises(TargetError, match="not the image just built"):
            dev.expect_model(ECHO_MODEL_ID + 1)
    assert info.board == board.name and info.protocol_version == link.PROTOCOL_VERSION
    assert info.inputs == (link.DeviceIo(64, "int8"), link.DeviceIo(3000, "uint8"))
    assert info.outputs == info.inputs
    assert (info.num_layers, info.arena_bytes, info.stack_size) == (3, 6128, 16384)
    assert info.counts_per_second == COUNTS_PER_SECOND[board.name]


def test_inputs_go_through_the_layers_and_outputs_come_back(board: Board, image: Path) -> None:
    with open_target(board).session(image) as url, DeviceLink(url, timeout=5) as dev:
        dev.write_input(0, control())
        dev.write_input(1, IN1)  # 3000 bytes: three WRITE_INPUT frames
        result = dev.run(1)
        out0, out1 = dev.read_output(0), dev.read_output(1)
        assert dev.echo(bytes(range(256)) * 4) == bytes(range(256)) * 4
        with pytest.raises(Exception, match="has 64 bytes"):
            dev.write_input(0, b"short")
    assert out0 == bytes((b * 3 + i) % 256 for i, b in enumerate(control()))
    assert out1 == bytes(b ^ 0x5A for b in reversed(IN1))
    assert result.inputs_intact


def test_counts_repeat_exactly_and_convert_to_instructions(board: Board, image: Path) -> None:
    cps = COUNTS_PER_SECOND[board.name]
    with open_target(board).session(image) as url, DeviceLink(url, timeout=5) as dev:
        dev.write_input(0, control(work=0))
        idle = dev.run(3, warmup=1)
        dev.write_input(0, control(work=40))
        busy = dev.run(3)
        busy_again = dev.run(2, warmup=2)
    assert len(set(idle.counts)) == 1 and len(set(busy.counts + busy_again.counts)) == 1
    assert busy.layer_counts == busy_again.layer_counts
    assert sum(busy.layer_counts) == busy.counts[-1] and len(busy.layer_counts) == 3
    # 40 work units are 40 000 iterations of a two-instruction loop: 80 000 instructions,
    # and one count is 1e9 / counts_per_second instructions under -icount shift=0.
    extra = (busy.counts[0] - idle.counts[0]) * 1e9 / cps
    assert abs(extra - 80_000) <= 2 * 1e9 / cps + 50


def test_runs_beyond_one_request_are_split(board: Board, image: Path) -> None:
    with open_target(board).session(image) as url, DeviceLink(url, timeout=5) as dev:
        max_runs = dev.info().max_runs
        result = dev.run(max_runs + 3)
    assert len(result.counts) == max_runs + 3 and len(set(result.counts)) == 1


def test_peak_stack_follows_the_models_stack_use(board: Board, image: Path) -> None:
    with open_target(board).session(image) as url, DeviceLink(url, timeout=5) as dev:
        dev.write_input(0, control(depth=0))
        shallow = dev.run(1).stack_bytes
        dev.write_input(0, control(depth=60))
        deep = dev.run(1).stack_bytes
        dev.write_input(0, control(command=0xC1))
        clobbered = dev.run(2)
    assert 0 < shallow < 1024
    assert 60 * 64 <= deep - shallow <= 60 * 128
    assert not clobbered.inputs_intact


def _read_frame(sock: socket.socket) -> tuple[int, int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "the device closed the connection"
            data += chunk
        return data

    assert exactly(1) == bytes([link.SOF])
    header = exactly(4)
    frame_type, seq, length = struct.unpack("<BBH", header)
    payload = exactly(length)
    (crc,) = struct.unpack("<H", exactly(2))
    assert crc == link.crc16(header + payload)
    return frame_type, seq, payload


def test_garbage_and_bad_requests_get_errors_and_the_device_keeps_serving(
    board: Board, image: Path
) -> None:
    """Raw bytes over the socket, checked against docs/protocol.md byte by byte."""
    bad_crc = bytearray(link.encode_frame(link.REQ_ECHO, 3, b"hello"))
    bad_crc[-1] ^= 0xFF
    sent = [
        (b"\x00\x13line noise without a start byte\xff", None),
        (link.encode_frame(0x33, 2), (2, 3)),  # unknown request
        (bytes(bad_crc), (3, 1)),  # CRC mismatch
        (bytes([link.SOF, link.REQ_ECHO, 4]) + struct.pack("<H", 5000), (4, 2)),  # too long
        (link.encode_frame(link.REQ_RUN, 5, b"\x01"), (5, 4)),  # wrong payload length
        (link.encode_frame(link.REQ_READ_OUTPUT, 6, struct.pack("<BIH", 9, 0, 1)), (6, 5)),
        (link.encode_frame(link.REQ_READ_OUTPUT, 7, struct.pack("<BIH", 0, 60, 8)), (7, 6)),
        (link.encode_frame(link.REQ_RUN, 8, struct.pack("<HH", 0, 0)), (8, 7)),
    ]
    with open_target(board).session(image) as url:
        host, port = url.removeprefix("socket://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            for data, expected in sent:
                sock.sendall(data)
                if expected is not None:
                    frame_type, seq, payload = _read_frame(sock)
                    assert (frame_type, seq, payload[0]) == (link.RSP_ERROR, *expected)
            sock.sendall(link.encode_frame(link.REQ_ECHO, 9, b"still there"))
            assert _read_frame(sock) == (link.REQ_ECHO | link.RSP_FLAG, 9, b"still there")


def test_host_recovers_from_a_half_sent_request(board: Board, image: Path) -> None:
    with open_target(board).session(image) as url, DeviceLink(url, timeout=5) as dev:
        dev._write(link.encode_frame(link.REQ_ECHO, 200, b"x" * 100)[:50])  # interrupted
        dev.resync()
        assert dev.info().model_id == ECHO_MODEL_ID


def test_a_hung_model_times_out_and_qemu_is_stopped(board: Board, image: Path) -> None:
    session = open_target(board).session(image)
    start = time.monotonic()
    with (
        pytest.raises(TargetTimeout, match="may be hung"),
        session as url,
        DeviceLink(url, timeout=5) as dev,
    ):
        dev.write_input(0, control(command=0x4A))
        dev.run(1, timeout=1.0)
    assert time.monotonic() - start < 5
    assert session.returncode is not None  # stopped by the session, not left running


def test_a_hardfault_is_reported_with_registers(board: Board, image: Path) -> None:
    session = open_target(board).session(image)
    with pytest.raises(DeviceFault) as info, session as url, DeviceLink(url, timeout=5) as dev:
        dev.write_input(0, control(command=0xFA))
        dev.run(1)
    report = info.value.report
    assert report.exception == 3 and report.frame_valid and 0 < report.pc < 0x10000
    assert "HardFault at PC=0x" in str(info.value)
    if board.name == "qemu-m4":
        assert report.arch == 7 and report.cfsr & (1 << 16)  # UNDEFINSTR
        assert "UNDEFINSTR" in str(info.value)
    else:
        assert report.arch == 6 and report.cfsr == 0
    assert session.returncode == EXIT_FAULT


def test_a_cpu_lockup_is_a_target_fault_with_qemus_exit_status(board: Board, image: Path) -> None:
    with (
        pytest.raises(TargetFault, match=r"lockup.*\n.*Lockup"),
        open_target(board).session(image) as url,
        DeviceLink(url, timeout=5) as dev,
    ):
        dev.write_input(0, control(command=0x1C))
        dev.run(1)


def test_a_silent_or_foreign_peer_gives_timeout_and_protocol_errors() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with DeviceLink(f"socket://127.0.0.1:{port}", timeout=0.3) as dev:
            peer, _ = server.accept()
            with peer, pytest.raises(TargetTimeout, match="not running tinyml-hil firmware"):
                dev.info()
    with (
        DeviceLink("loop://", timeout=0.5) as dev,  # hears its own request back
        pytest.raises(ProtocolError, match="answered INFO with frame type 0x01"),
    ):
        dev.info()


def test_images_qemu_cannot_run_are_reported_before_any_timeout(
    tmp_path: Path, echo_images: dict[str, BuildResult]
) -> None:
    bogus = tmp_path / "bogus.elf"
    bogus.write_bytes(b"not an elf at all")
    with (
        pytest.raises(TargetError, match=r"bogus\.elf is not an ELF file"),
        open_target(load_board("qemu-m4")).session(bogus),
    ):
        pass
    # A board whose QEMU machine does not exist: QEMU's own message comes through.
    board_toml = (load_board("qemu-m4").root / "board.toml").read_text()
    (tmp_path / "qemu-m4").mkdir()
    (tmp_path / "qemu-m4" / "board.toml").write_text(board_toml.replace("mps2-an386", "nope"))
    board = load_board("qemu-m4", boards_dir=tmp_path)
    with (
        pytest.raises(TargetError, match=r"did not start model\.elf.*\n.*unsupported machine"),
        open_target(board).session(echo_images["qemu-m4"].elf),
    ):
        pass


@pytest.mark.parametrize("name", BOARD_NAMES)
def test_missing_qemu_is_a_toolchain_error(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with (
        pytest.raises(ToolchainError, match="qemu-system-arm"),
        open_target(load_board(name)).session(tmp_path / "x.elf"),
    ):
        pass


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_qemu_is_stopped_on_ctrl_c_and_when_the_session_is_dropped(
    echo_images: dict[str, BuildResult],
) -> None:
    board = load_board("qemu-m4")
    session = open_target(board).session(echo_images[board.name].elf)
    with pytest.raises(KeyboardInterrupt), session:
        raise KeyboardInterrupt
    assert session.pid is not None and not _alive(session.pid)

    dropped = open_target(board).session(echo_images[board.name].elf)
    dropped.__enter__()
    pid = dropped.pid
    assert pid is not None and _alive(pid)
    del dropped
    gc.collect()
    assert not _alive(pid)


SCRIPT = """
import sys, time
from pathlib import Path
from hil.boards import load_board
from hil.targets import open_target
session = open_target(load_board("qemu-m4")).session(Path(sys.argv[1]))
session.__enter__()
print(session.pid, flush=True)
if sys.argv[2] == "hang":
    time.sleep(60)
"""


@pytest.mark.parametrize("how", ["exit", "hang"])
def test_qemu_dies_with_the_python_process_even_on_sigkill(
    how: str, echo_images: dict[str, BuildResult]
) -> None:
    """At interpreter exit (atexit) or when the host process is killed outright."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(echo_images["qemu-m4"].elf), how],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    pid = int(proc.stdout.readline())
    if how == "hang":
        assert _alive(pid)
        proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
