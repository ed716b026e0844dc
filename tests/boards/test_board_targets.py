"""Target kinds as a registry, each validating its own [run] table; the hardware map; the
pyocd and uf2 kinds end to end (simulated probe and chip, a pty device, a folder standing in
for the RPI-RP2 drive); `hil doctor` and `hil build`."""

from __future__ import annotations

import shutil
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from boards.device_sim import PROBE_SERIAL, SimDevice, debug_probe_port
from boards.fake_probe import Bench, SimChip, install, rp2040_chip

from hil import cli, serial_ports
from hil.boards import load_board
from hil.errors import BoardError, ConnectError, TargetError, failure_class
from hil.firmware_image import load_segments, to_bin, to_uf2
from hil.hardware_map import BoardInstance, claim, load_hardware_map, select
from hil.link import DeviceLink
from hil.serial_ports import PortInfo
from hil.targets import TargetOptions, open_target
from hil.targets.physical import PhysicalTarget

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def boards_copy(tmp_path: Path) -> Path:
    root = tmp_path / "boards"
    for name in ("pico", "nano33ble", "qemu-m4"):
        shutil.copytree(REPO / "boards" / name, root / name)
    return root


def _set(root: Path, board: str, old: str, new: str) -> None:
    path = root / board / "board.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


# -- [run] validation by each kind -----------------------------------------------------------


@pytest.mark.parametrize(
    ("board", "old", "new", "message"),
    [
        ("pico", 'target = "rp2040"', 'target = "rp2040"\nflash_speed = 3',
         r"unknown key run.flash_speed; this table takes .*connect_mode"),
        ("pico", 'connect_mode = "halt"', 'connect_mode = "sometimes"',
         r"'run.connect_mode' must be one of halt, under-reset"),
        ("pico", "frequency = 4_000_000", 'frequency = "fast"', r"'run.frequency' must be int"),
        ("pico", 'drive_label = "RPI-RP2"', 'drive_label = "RPI-RP2"\nlabel = "x"',
         r"unknown key uf2.label"),
        ("nano33ble", 'target = "nrf52840"\n', "", r"missing key 'run.target'"),
        ("nano33ble", 'verify = "read-back"', "verify = true", r"'run.verify' must be str"),
        ("qemu-m4", 'machine = "mps2-an386"', 'machine = "mps2-an386"\ntarget = "x"',
         r"unknown key run.target"),
        ("qemu-m4", 'kind = "qemu"', 'kind = "openocd"', r"run.kind 'openocd' is not one of"),
    ],
)  # fmt: skip
def test_each_kind_validates_its_own_run_table(
    boards_copy: Path, board: str, old: str, new: str, message: str
) -> None:
    _set(boards_copy, board, old, new)
    with pytest.raises(BoardError, match=message):
        load_board(board, boards_dir=boards_copy)


def test_kinds_have_their_own_timeouts() -> None:
    qemu = open_target(load_board("qemu-m4"))
    pico = open_target(load_board("pico"))
    nano = open_target(load_board("nano33ble"))
    assert isinstance(pico, PhysicalTarget) and isinstance(nano, PhysicalTarget)
    macs = 50_000_000
    # QEMU on a loaded host is slower per MAC than a 125 MHz board; the 64 MHz Nano in between.
    assert qemu.link_timeout(macs) > nano.link_timeout(macs) > pico.link_timeout(macs)
    assert pico.link_timeout(0) == pytest.approx(10.0)


def test_uf2_is_only_for_boards_with_a_uf2_loader() -> None:
    assert type(open_target(load_board("pico"), TargetOptions(uf2=True))).__name__ == "Uf2Target"
    with pytest.raises(TargetError, match="no UF2 boot loader"):
        open_target(load_board("nano33ble"), TargetOptions(uf2=True))
    with pytest.raises(TargetError, match=r"runs in QEMU.*physical boards"):
        open_target(load_board("qemu-m4"), TargetOptions(probe="E66"))


# -- hardware map ----------------------------------------------------------------------------

MAP = """
[[board]]
id = "pico-1"
type = "pico"
probe = "E6614103E7A1B2C3"

[[board]]
id = "pico-2"
type = "pico"
probe = "E6614103E7FFFF00"
port = "/dev/ttyUSB3"

[[board]]
id = "nano-1"
type = "nano33ble"
probe = "0240000034544e45"
port = "/dev/ttyUSB0"
"""


def test_hardware_map_lists_instances_of_one_board_type(tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text(MAP)
    instances = load_hardware_map(path)
    assert [i.id for i in select(instances, "pico")] == ["pico-1", "pico-2"]
    assert [i.id for i in select(instances, "pico", probe="e6614103e7ffff00")] == ["pico-2"]
    assert [i.id for i in select(instances, "nano-1")] == ["nano-1"]  # an instance by id
    assert select(instances, "pico", port="/dev/ttyUSB9") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[board]]\nid = "a"\ntype = "pico"\nprobe_id = "x"\n', r"unknown key\(s\) probe_id"),
        ('[[board]]\nid = "a"\n', r"'type' must be a non-empty string"),
        ('[[board]]\nid = "a"\ntype = "pico"\n[[board]]\nid = "a"\ntype = "pico"\n',
         r"id 'a' is used twice"),
        ('[[board]]\nid = "a"\ntype = "FIXME"\nprobe = "P1"\n', r"set type to the board wired"),
        ("[lab]\nname = 1\n", r"unknown table\(s\) lab"),
        ("[[board]\n", r"not valid TOML"),
    ],
)  # fmt: skip
def test_a_bad_hardware_map_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "map.toml"
    path.write_text(text)
    with pytest.raises(BoardError, match=message):
        load_hardware_map(path)


def test_a_claimed_instance_is_not_given_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    a, b = BoardInstance("pico-1", "pico"), BoardInstance("pico-2", "pico")
    with claim([a, b]) as first, claim([a, b]) as second:
        assert {first.id, second.id} == {"pico-1", "pico-2"}
        with pytest.raises(ConnectError, match="stayed in use") as info, claim([a], timeout_s=0.3):
            pass
        assert failure_class(info.value) == "connect"
    with claim([a], timeout_s=0.3) as again:  # released on exit
        assert again.id == "pico-1"


# -- the pyocd and uf2 kinds end to end ------------------------------------------------------


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Bench, list[PortInfo]]]:
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HIL_HARDWARE_MAP", raising=False)
    monkeypatch.chdir(tmp_path)
    listed: list[PortInfo] = []
    monkeypatch.setattr(serial_ports, "list_ports", lambda: list(listed))
    undo = install()
    try:
        yield Bench(), listed
    finally:
        undo()


def test_pyocd_session_flashes_finds_the_uart_by_the_probe_id_and_waits(
    lab: tuple[Bench, list[PortInfo]], built: dict, tmp_path: Path
) -> None:
    bench, ports = lab
    sim = SimChip(rp2040_chip())
    bench.plug(PROBE_SERIAL, sim)
    elf = built["pico"].elf
    (tmp_path / "map.toml").write_text(
        f'[[board]]\nid = "pico-7"\ntype = "pico"\nprobe = "{PROBE_SERIAL}"\n'
    )
    target = open_target(load_board("pico"), TargetOptions(hardware_map=tmp_path / "map.toml"))
    with SimDevice() as device:
        ports.append(debug_probe_port(device))
        with target.session(elf) as url:
            assert url == device.path
            with DeviceLink(url, timeout=2.0, exclusive=True) as link:
                assert link.echo(b"hello") == b"hello"
    base, data = to_bin(load_segments(elf))
    assert base == 0x10000000 and sim.peek(base, len(data)) == data
    facts = target.provenance()
    assert facts["instance"] == "pico-7" and facts["serial"] == PROBE_SERIAL
    assert facts["port"] == device.path and "XIP" in facts["code"]
    assert target.version().startswith("pyOCD 0.46") and PROBE_SERIAL in target.version()


def test_uf2_session_copies_to_the_drive_then_waits_for_the_firmware(
    lab: tuple[Bench, list[PortInfo]], built: dict, tmp_path: Path
) -> None:
    _, ports = lab
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nBoard-ID: RPI-RP2\n")
    elf = built["pico"].elf
    target = open_target(load_board("pico"), TargetOptions(uf2=True, uf2_drive=drive))
    with SimDevice() as device:
        ports.append(debug_probe_port(device))
        with target.session(elf) as url:
            assert url == device.path
    copied = drive / f"{elf.stem}.uf2"
    assert copied.read_bytes() == to_uf2(load_segments(elf), 0xE48BFF56)
    magic, family = struct.unpack_from("<I", copied.read_bytes())[0], None
    assert magic == 0x0A324655 and family is None
    assert "RPI-RP2" in target.provenance()["uf2"]


def test_uf2_without_a_drive_says_how_to_get_one(
    lab: tuple[Bench, list[PortInfo]], built: dict, tmp_path: Path
) -> None:
    board = load_board("pico")
    target = open_target(board, TargetOptions(uf2=True, uf2_drive=tmp_path / "nowhere"))
    with pytest.raises(ConnectError, match="hold BOOTSEL"), target.session(built["pico"].elf):
        pass


def test_no_probe_through_the_target_is_a_connect_failure(
    lab: tuple[Bench, list[PortInfo]], built: dict
) -> None:
    target = open_target(load_board("nano33ble"), TargetOptions(port="/dev/null"))
    with (
        pytest.raises(ConnectError, match="no debug probe") as info,
        target.session(built["nano33ble"].elf),
    ):
        pass
    assert failure_class(info.value) == "connect"


# -- hil doctor and hil build ----------------------------------------------------------------


def test_doctor_lists_probes_and_ports_and_writes_a_map(
    lab: tuple[Bench, list[PortInfo]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench, ports = lab
    bench.plug(PROBE_SERIAL, SimChip(rp2040_chip()))
    ports.append(PortInfo("/dev/ttyACM0", 0x2E8A, 0x000C, PROBE_SERIAL, "Debug Probe"))
    ports.append(PortInfo("/dev/ttyACM1", 0x2341, 0x805A, "ABC", "Nano 33 BLE"))
    out = tmp_path / "hardware-map.toml"
    assert cli.main(["doctor", "--write-map", str(out)]) == cli.EXIT_OK
    text = capsys.readouterr().out
    assert PROBE_SERIAL in text and "0.46.0" in text
    assert f"UART of probe {PROBE_SERIAL}" in text and "Arduino Nano 33 BLE" in text
    assert "2E8A:000C" in text and "set the board type of 1 entry" in text
    written = out.read_text()
    assert f'probe = "{PROBE_SERIAL}"' in written and 'port = "/dev/ttyACM0"' in written
    with pytest.raises(BoardError, match="set type"):
        load_hardware_map(out)  # until the user says which board it is
    out.write_text(written.replace('"FIXME"', '"pico"'))
    assert [i.type for i in load_hardware_map(out)] == ["pico"]
    assert cli.main(["doctor", "--write-map", str(out)]) == cli.EXIT_ERROR  # no overwrite
    assert cli.main(["doctor", "--hardware-map", str(out)]) == cli.EXIT_OK
    assert "board-1 (pico)" in capsys.readouterr().out


def test_hil_build_writes_the_board_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = REPO / "examples" / "models" / "digits-dscnn.tflite"
    out = tmp_path / "out"
    assert cli.main(["build", str(model), "--board", "nano33ble", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for suffix in ("elf", "bin", "hex"):
        path = out / f"digits-dscnn.{suffix}"
        assert path.is_file() and f"{path}  {path.stat().st_size:,} bytes" in printed
    assert "at 0x00010000" in printed
    assert not (out / "digits-dscnn.uf2").exists()


def test_profile_options_reach_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """--probe/--port/--unlock/--uf2/--hardware-map go to hil.profile (and are refused for a
    QEMU board before anything is built)."""
    seen: dict = {}

    def fake_profile(model: str, board: str, **kwargs: object) -> None:
        seen.update(kwargs)
        raise TargetError("stop here")

    import importlib

    monkeypatch.setattr(importlib.import_module("hil.profile"), "profile", fake_profile)
    argv = ["profile", "m.tflite", "--board", "pico", "--probe", "E66", "--port", "/dev/ttyX",
            "--unlock", "--uf2", "--hardware-map", "lab.toml", "--quiet"]  # fmt: skip
    assert cli.main(argv) == cli.EXIT_ERROR
    assert seen["probe"] == "E66" and seen["port"] == "/dev/ttyX"
    assert seen["unlock"] is True and seen["uf2"] is True and seen["hardware_map"] == "lab.toml"


def test_a_wrong_clock_is_refused() -> None:
    from hil.profile import _check_clock

    pico = load_board("pico")
    _check_clock(pico, 125_000_000)
    _check_clock(pico, 125_400_000)
    with pytest.raises(TargetError, match=r"6.500 MHz, not the 125 MHz"):
        _check_clock(pico, 6_500_000)  # PLL never locked: still on the ring oscillator
    _check_clock(load_board("qemu-m4"), 25_000_000)  # instruction counts: not a clock


def test_claim_waits_for_a_busy_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    inst = BoardInstance("pico-1", "pico")
    released = threading.Event()

    def hold() -> None:
        with claim([inst]):
            released.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    threading.Timer(0.5, released.set).start()
    start = time.monotonic()
    with claim([inst], timeout_s=5, poll_s=0.05):
        assert 0.2 < time.monotonic() - start < 4
    holder.join()


@pytest.mark.parametrize(
    ("error", "kind", "fatal"),
    [
        ("FlashError", "flash", False),
        ("ConnectError", "connect", False),
        ("TargetLockedError", "connect", True),
        ("NoProbeError", "connect", True),
        ("LinkLost", "hang", False),
        ("BuildError", "build", False),
    ],
)
def test_failure_classes_reach_the_search_store_apart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: str, kind: str, fatal: bool
) -> None:
    """A flash failure is recorded as `flash`, never as a build failure, and so on."""
    import hil
    import hil.errors
    from optimizer.search import evaluate

    def failing_profile(*args: object, **kwargs: object) -> None:
        raise getattr(hil.errors, error)(f"simulated {error}")

    monkeypatch.setattr(hil, "profile", failing_profile)
    task = evaluate.TrialTask(trial_id=1, attempt=1, params={}, dataset="digits", seed=0,
                              boards=("pico",), boards_dir=None, work_dir=str(tmp_path),
                              train_timeout_s=1.0)  # fmt: skip
    outcome = evaluate.TrialOutcome(ok=True)
    failed = evaluate._profile_on(task, "pico", tmp_path / "m.tflite", None, outcome, [],
                                  lambda status, stage: None)  # fmt: skip
    assert failed and outcome.failure_kind == kind and outcome.fatal is fatal
    assert kind in evaluate.FAILURE_KINDS


def test_a_board_name_can_carry_the_instance_for_board_lists() -> None:
    """hil search and hil check list boards by name; "pico?probe=...&port=..." picks the
    instance there as --probe/--port do on the command line (which override it)."""
    board = load_board("pico?probe=E6614103E7A1B2C3&port=/dev/ttyACM3&unlock=yes")
    assert board.name == "pico"
    assert dict(board.connection) == {"probe": "E6614103E7A1B2C3", "port": "/dev/ttyACM3",
                                      "unlock": True}  # fmt: skip
    target = open_target(board)
    assert (target.options.probe, target.options.port, target.options.unlock) == (
        "E6614103E7A1B2C3", "/dev/ttyACM3", True)  # fmt: skip
    assert open_target(board, TargetOptions(port="/dev/ttyUSB1")).options.port == "/dev/ttyUSB1"
    with pytest.raises(BoardError, match="unknown option 'probe_id'"):
        load_board("pico?probe_id=E66")
    with pytest.raises(BoardError, match="uf2='maybe' must be true or false"):
        load_board("pico?uf2=maybe")


def test_search_board_lists_take_board_instances() -> None:
    from optimizer.search.config import _boards

    names, limits, _ = _boards(["pico?probe=E6614103E7A1B2C3", "nano33ble"], None, None)
    assert names == ["pico?probe=E6614103E7A1B2C3", "nano33ble"]
    assert limits["pico?probe=E6614103E7A1B2C3"] == (2 << 20, 264 << 10)
