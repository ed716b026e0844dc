"""Board descriptions, and the constants that host and firmware must agree on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hil import link
from hil.boards import BOARDS_DIR, list_boards, load_board
from hil.errors import BoardError

REPO = Path(__file__).resolve().parents[2]

GOOD_TOML = """\
name = "{name}"
description = "test board"
core = "cortex-m4f"
cpu_flags = ["-mcpu=cortex-m4", "-mthumb"]
clock_hz = 64_000_000
flash_bytes = 1_048_576
ram_bytes = 262_144
timing_source = "qemu-icount"
[run]
kind = "qemu"
machine = "mps2-an386"
[serial]
baudrate = 115200
"""


def _board_dir(root: Path, name: str, text: str) -> Path:
    (root / name).mkdir(parents=True)
    (root / name / "board.toml").write_text(text)
    return root


def test_the_qemu_boards_load_with_the_figures_of_the_boards_they_stand_in_for() -> None:
    boards = {b.name: b for b in list_boards()}
    assert {"qemu-m4", "qemu-m0"} <= set(boards)
    m4, m0 = boards["qemu-m4"], boards["qemu-m0"]
    assert (m4.clock_hz, m4.flash_bytes, m4.ram_bytes) == (64_000_000, 960 << 10, 256 << 10)
    assert (m0.clock_hz, m0.flash_bytes, m0.ram_bytes) == (125_000_000, 2 << 20, 264 << 10)
    assert m4.run.machine == "mps2-an386" and "-mfloat-abi=hard" in m4.cpu_flags
    assert m0.run.machine == "microbit" and "-mcpu=cortex-m0plus" in m0.cpu_flags
    assert "nrf51-soc.sram-size=0x42000" in m0.run.extra_args
    assert m4.root == BOARDS_DIR / "qemu-m4" and m4.stands_in_for == "arduino-nano-33-ble-sense"


@pytest.mark.parametrize("name", ["qemu-m4", "qemu-m0"])
def test_linker_script_regions_match_board_toml(name: str) -> None:
    board = load_board(name)
    script = (board.root / "link.ld").read_text()
    sizes = {
        m.group(1): int(m.group(2)) * {"K": 1024, "M": 1 << 20}[m.group(3)]
        for m in re.finditer(r"(FLASH|RAM)\s*\(\w+\)\s*:.*LENGTH\s*=\s*(\d+)([KM])", script)
    }
    assert sizes == {"FLASH": board.flash_bytes, "RAM": board.ram_bytes}


def test_unknown_board_lists_the_known_ones() -> None:
    with pytest.raises(BoardError, match=r"unknown board 'qemu-m7'.*qemu-m0, qemu-m4"):
        load_board("qemu-m7")


def test_a_new_board_is_just_a_folder(tmp_path: Path) -> None:
    root = _board_dir(tmp_path, "my-board", GOOD_TOML.format(name="my-board"))
    assert [b.name for b in list_boards(root)] == ["my-board"]
    assert load_board("my-board", boards_dir=root).run.extra_args == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = [", r"not valid TOML"),
        (GOOD_TOML.format(name="bad").replace('core = "cortex-m4f"\n', ""), r"missing key 'core'"),
        (GOOD_TOML.format(name="bad").replace("115200", '"fast"'), r"'serial.baudrate' must be"),
        (GOOD_TOML.format(name="bad").replace("64_000_000", "true"), r"'clock_hz' must be an int"),
        (GOOD_TOML.format(name="bad").replace("262_144", "0"), r"'ram_bytes' must be positive"),
        (GOOD_TOML.format(name="bad").replace('"qemu-icount"', '"sundial"'), r"timing_source"),
        (GOOD_TOML.format(name="bad").replace('kind = "qemu"', 'kind = "jtag"'), r"run.kind"),
        (GOOD_TOML.format(name="other"), r"differs from its folder"),
        (GOOD_TOML.format(name="bad").replace('machine = "mps2-an386"\n', ""), r"run.machine"),
    ],
)
def test_malformed_board_toml_is_a_clear_board_error(
    tmp_path: Path, text: str, message: str
) -> None:
    root = _board_dir(tmp_path, "bad", text)
    with pytest.raises(BoardError, match=message) as info:
        load_board("bad", boards_dir=root)
    assert str(root / "bad" / "board.toml") in str(info.value)


def test_host_protocol_constants_match_the_firmware_header() -> None:
    header = (REPO / "firmware/runtime/hil_protocol.h").read_text()
    defines = {
        m.group(1): int(m.group(2), 0)
        for m in re.finditer(r"#define HIL_(\w+) (0x[0-9A-F]+|\d+)u?\b", header)
    }
    for name in ("PROTOCOL_VERSION", "SOF", "MAX_PAYLOAD", "RSP_FLAG", "RSP_ERROR", "RSP_FAULT",
                 "REQ_INFO", "REQ_WRITE_INPUT", "REQ_READ_OUTPUT", "REQ_RUN",
                 "REQ_LAYER_COUNTS", "REQ_ECHO"):  # fmt: skip
        assert getattr(link, name) == defines[name], name
    errors = {v: k for k, v in defines.items() if k.startswith("ERR_")}
    assert set(link.ERROR_CODES) == set(errors)
    from hil.targets.qemu import EXIT_FAULT

    assert defines["EXIT_FAULT"] == EXIT_FAULT
    dtypes = dict(
        re.findall(r"HIL_DTYPE_(\w+) = (\d+)", (REPO / "firmware/runtime/hil_model.h").read_text())
    )
    assert {int(v): k.lower() for k, v in dtypes.items()} == link.DTYPES


def test_frames_carry_a_crc_that_catches_corruption() -> None:
    frame = link.encode_frame(link.REQ_ECHO, 7, b"abc")
    assert frame[:5] == bytes([0xA5, 0x06, 7, 3, 0]) and frame[5:8] == b"abc"
    assert link.crc16(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value
    corrupted = bytearray(frame)
    corrupted[6] ^= 1
    assert link.crc16(bytes(corrupted[1:-2])) != int.from_bytes(frame[-2:], "little")
