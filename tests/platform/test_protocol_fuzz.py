"""Protocol fuzzing against the real firmware under QEMU (fixtures/echo_model).

Garbled and truncated request frames, frames that look like answers, bursts of noise and stale
partial answers left in the host's input are written raw on the link's own connection, then
normal requests go through the same `DeviceLink`, which must recover every time: a valid INFO,
or inputs written, a RUN and outputs read back right. Seeded and bounded (a few seconds per
board), and no QEMU may be left behind.
"""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path

import pytest
from platform_support import ECHO_MODEL_ID

from hil import link
from hil.boards import Board
from hil.build import BuildResult
from hil.errors import ProtocolError
from hil.link import DeviceLink
from hil.targets import open_target

pytestmark = [pytest.mark.qemu, pytest.mark.usefixtures("no_qemu_left")]

SEED = 20261107
CASES = 24
TIMEOUT = 5.0  # per request, as in test_qemu.py: QEMU may be starved on a loaded machine


def control(rng: random.Random) -> bytes:
    """Input 0 of the echo model: command 0 (plain), no extra work, no extra stack, data."""
    return bytes([0, 0, 0]) + rng.randbytes(61)


def request_frame(rng: random.Random) -> bytes:
    """A well-formed request the firmware would serve harmlessly (never RUN, never a write:
    if a corruption left it valid, the device must not start a long run or change inputs)."""
    kind = rng.choice([link.REQ_INFO, link.REQ_ECHO, link.REQ_LAYER_COUNTS, 0x33])
    payload = rng.randbytes(rng.randrange(0, 40)) if kind == link.REQ_ECHO else b""
    return link.encode_frame(kind, rng.randrange(256), payload)


def invalid(frame: bytes) -> bool:
    """True unless `frame` is still a whole frame with a matching CRC."""
    if len(frame) < 7 or frame[0] != link.SOF:
        return True
    (length,) = struct.unpack_from("<H", frame, 3)
    if len(frame) != 7 + length:
        return True
    return link.crc16(frame[1:-2]) != int.from_bytes(frame[-2:], "little")


def garbled(rng: random.Random) -> bytes:
    frame = bytearray(request_frame(rng))
    for _ in range(rng.randint(1, 3)):
        frame[rng.randrange(1, len(frame))] = rng.randrange(256)
    if not invalid(bytes(frame)):
        frame[-1] ^= 0x5A
    return bytes(frame)


def oversize(rng: random.Random) -> bytes:
    length = rng.randint(link.MAX_PAYLOAD + 1, 0xFFFF)
    return bytes([link.SOF, link.REQ_ECHO, rng.randrange(256)]) + struct.pack("<H", length)


def noise(rng: random.Random) -> bytes:
    return bytes(
        rng.choice([link.SOF, 0, 0xFF, rng.randrange(256)]) for _ in range(rng.randint(1, 64))
    )


def answer_like(rng: random.Random) -> bytes:
    """Bytes that look like the device's own answers (an INFO answer, an ERROR), whole or not."""
    frame_type = rng.choice([link.REQ_INFO | link.RSP_FLAG, link.RSP_ERROR, link.RSP_FAULT])
    frame = link.encode_frame(frame_type, rng.randrange(256), rng.randbytes(rng.randrange(40)))
    return frame[: rng.randint(1, len(frame))]


def truncated(rng: random.Random) -> bytes:
    """A request cut short: the device waits for the rest and swallows what comes next."""
    frame = request_frame(rng)
    if len(frame) < 9:  # make it long enough that a cut leaves the receiver mid-payload too
        frame = link.encode_frame(link.REQ_ECHO, rng.randrange(256), rng.randbytes(80))
    return frame[: rng.randint(1, len(frame) - 1)]


def fake_headers(rng: random.Random) -> bytes:
    """ECHO data full of start bytes and headers, so a cut-off answer carrying it poisons a
    reader that trusts the first SOF it sees (the issue's "frame of 1709 bytes")."""
    parts = []
    for _ in range(rng.randint(1, 4)):
        length = rng.choice([1709, rng.randint(0, 40), rng.randint(200, link.MAX_PAYLOAD)])
        parts.append(rng.randbytes(rng.randrange(8)))
        parts.append(bytes([link.SOF, link.REQ_INFO | link.RSP_FLAG, rng.randrange(256)]))
        parts.append(struct.pack("<H", length))
    return b"".join(parts)[: link.MAX_PAYLOAD]


def leave_stale_partial_answer(dev: DeviceLink, rng: random.Random) -> None:
    """Ask for an ECHO of fake headers on the raw connection and read only part of its answer,
    as a host that gave up halfway would: the rest stays in the input."""
    data = fake_headers(rng)
    dev._write(link.encode_frame(link.REQ_ECHO, rng.randrange(256), data))
    dev._port.timeout = TIMEOUT
    got = dev._port.read(rng.randint(1, 5 + len(data)))
    assert got[:1] == bytes([link.SOF])


GARBAGE = [garbled, oversize, noise, answer_like]


@pytest.fixture
def image(board: Board, echo_images: dict[str, BuildResult]) -> Path:
    return echo_images[board.name].elf


def test_the_link_recovers_from_every_garbled_truncated_or_stale_frame(
    board: Board, image: Path
) -> None:
    rng = random.Random(f"{SEED}-{board.name}")
    kinds = {"garbage": 0, "truncated": 0, "stale": 0}
    start = time.monotonic()
    with open_target(board).session(image) as url, DeviceLink(url, timeout=TIMEOUT) as dev:
        dev.info()
        for case in range(CASES):
            if rng.random() < 0.3:
                leave_stale_partial_answer(dev, rng)
                kinds["stale"] += 1
            pieces = [rng.choice(GARBAGE)(rng) for _ in range(rng.randint(0, 3))]
            kinds["garbage"] += len(pieces)
            if rng.random() < 0.4:
                pieces.append(truncated(rng))  # last: it swallows whatever follows
                kinds["truncated"] += 1
            dev._write(b"".join(pieces))
            t0 = time.monotonic()
            if case % 2:
                assert dev.info().model_id == ECHO_MODEL_ID, f"case {case}"
            else:
                x = control(rng)
                dev.write_input(0, x)
                assert dev.run(1).inputs_intact, f"case {case}"
                assert dev.read_output(0) == bytes((b * 3 + i) % 256 for i, b in enumerate(x))
            assert time.monotonic() - t0 < 2 * TIMEOUT, f"case {case}: recovery took too long"
    assert min(kinds.values()) >= 3, kinds  # every kind was tried
    assert time.monotonic() - start < 30


BAD_LENGTHS = [
    (link.REQ_INFO, b"\x01", 0),
    (link.REQ_INFO, b"\x00\x00\x00", 0),
    (link.REQ_RUN, b"\x01\x00\x01", 4),
    (link.REQ_READ_OUTPUT, bytes(8), 7),
    (link.REQ_LAYER_COUNTS, bytes(2), 4),
    (link.REQ_WRITE_INPUT, bytes(4), 5),
]


def test_a_request_with_an_unexpected_payload_gets_bad_length(board: Board, image: Path) -> None:
    """docs/protocol.md: ERROR code 4 (BAD_LENGTH) with the expected length as detail."""
    with open_target(board).session(image) as url, DeviceLink(url, timeout=TIMEOUT) as dev:
        for req_type, payload, expected in BAD_LENGTHS:
            name = link.REQUEST_NAMES[req_type]
            n = len(payload)
            with pytest.raises(
                ProtocolError,
                match=rf"rejected {name}: a payload of {n} bytes?, where the firmware expects "
                rf"(at least )?{expected}\b",
            ):
                dev._request(req_type, payload)
            assert dev.info().model_id == ECHO_MODEL_ID
