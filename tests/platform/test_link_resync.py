"""The host link resynchronises after bad frames and recovers a device left mid-frame.

No QEMU: a scripted fake device (fake_device.py) on a local socket, whose receiver behaves like
the firmware's, sends stale partial answers, bad frames and late errors around its answers.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator

import pytest
from fake_device import MODEL_ID, OUTPUT_BYTES, Answer, FakeDevice, error_frame, serve

from hil import link
from hil.errors import ProtocolError, TargetTimeout
from hil.link import DeviceLink


def header(frame_type: int, seq: int, length: int) -> bytes:
    return bytes([link.SOF, frame_type, seq]) + struct.pack("<H", length)


def prefix_first(stale: bytes) -> Answer:
    """Answer normally, but send `stale` ahead of the first answer."""
    sent = []

    def answer(req_type: int, seq: int, payload: bytes) -> bytes:
        sent.append(seq)
        return (stale if len(sent) == 1 else b"") + serve(req_type, seq, payload)

    return answer


Connect = Callable[..., tuple[FakeDevice, DeviceLink]]


@pytest.fixture
def connect() -> Iterator[Connect]:
    opened: list[tuple[FakeDevice, DeviceLink]] = []

    def make(answer: Answer = serve, timeout: float = 1.0) -> tuple[FakeDevice, DeviceLink]:
        device = FakeDevice(answer)
        opened.append((device, DeviceLink(device.url, timeout=timeout)))
        return opened[-1]

    yield make
    for device, dev in opened:
        dev.close()
        device.close()


STALE = {
    # A header announcing more than MAX_PAYLOAD bytes (the "frame of 1709 bytes" failure).
    "bad-length": header(0x86, 0x21, 1709) + b"\x07\x07",
    # A whole frame whose CRC does not match.
    "bad-crc": header(0x83, 0x22, 4) + b"abcd" + b"\x00\x00",
    # A cut-off answer whose announced length swallows the start of the real answer.
    "swallowing": header(0x83, 0x23, 12) + b"xy",
    # A cut-off answer announcing more bytes than ever follow it.
    "truncated": header(0x81, 0x24, 900) + b"partial",
    # Start bytes with nothing after them, then a complete answer to some other request.
    "sof-runs": bytes([link.SOF] * 3) + link.encode_frame(0x84, 0x25, b"old"),
}


@pytest.mark.parametrize("stale", STALE.values(), ids=STALE.keys())
def test_a_stale_partial_answer_before_the_answer_is_skipped(
    connect: Connect, stale: bytes
) -> None:
    device, dev = connect(prefix_first(stale))
    start = time.monotonic()
    info = dev.info()
    assert info.model_id == MODEL_ID and info.board == "fake"
    assert time.monotonic() - start < 0.5  # found by resynchronising, not by a retry
    assert dev.echo(b"next") == b"next"  # and nothing is left to poison the next request
    assert [r[0] for r in device.requests].count(link.REQ_INFO) == 1  # no second try


def test_an_error_for_another_request_is_stale_even_with_the_same_seq(connect: Connect) -> None:
    def answer(req_type: int, seq: int, payload: bytes) -> bytes:
        return error_frame(seq, 7, link.REQ_RUN, 128) + serve(req_type, seq, payload)

    _, dev = connect(answer)
    assert dev.info().model_id == MODEL_ID


def test_an_answer_to_another_request_type_with_the_same_seq_is_stale(connect: Connect) -> None:
    """E.g. left by an earlier connection to the same board, whose seqs started alike."""

    def answer(req_type: int, seq: int, payload: bytes) -> bytes:
        stale = link.encode_frame(link.REQ_RUN | link.RSP_FLAG, seq, bytes(12))
        return stale + serve(req_type, seq, payload)

    _, dev = connect(answer)
    assert dev.info().model_id == MODEL_ID


def test_late_bytes_of_an_abandoned_answer_do_not_poison_the_next_request(connect: Connect) -> None:
    device, dev = connect()
    dev.info()
    # The rest of an answer the host gave up on: its payload holds start bytes and headers.
    device.send(b"\x00" * 7 + header(0x83, 0x51, 1709) + header(0x83, 0x52, 40) + b"\x01" * 9)
    time.sleep(0.05)
    assert dev.echo(b"fresh") == b"fresh"
    device.send(header(0x83, 0x53, 700) + b"abc")  # arrives while the next request is out
    assert dev.read_output(0) == bytes(range(OUTPUT_BYTES))


@pytest.mark.parametrize("cut", [1, 3, 5, 40])
def test_a_device_left_mid_frame_gets_the_next_request_through(connect: Connect, cut: int) -> None:
    """Garbage with a frame cut short leaves the receiver waiting for the rest: the next request
    disappears into it. The link notices the silence, resynchronises and asks again."""
    device, dev = connect()
    dev.info()
    dev._write(link.encode_frame(link.REQ_ECHO, 0x77, b"z" * 300)[:cut])
    start = time.monotonic()
    assert dev.info().model_id == MODEL_ID
    assert time.monotonic() - start < dev.timeout
    dev._write(link.encode_frame(link.REQ_WRITE_INPUT, 0x78, b"z" * 30)[:cut])
    result = dev.run(2)  # RUN may be silent for long: the link checks the device first
    assert result.counts == [1000, 1000] and result.layer_counts == [500, 500]
    assert [r[0] for r in device.requests].count(link.REQ_RUN) == 1


def test_a_request_corrupted_on_the_line_is_sent_again(connect: Connect) -> None:
    calls = []

    def answer(req_type: int, seq: int, payload: bytes) -> bytes:
        calls.append(req_type)
        if req_type == link.REQ_INFO and calls.count(link.REQ_INFO) == 1:
            return error_frame(seq, 1, req_type, 0x1234)  # the device saw a bad CRC
        return serve(req_type, seq, payload)

    _, dev = connect(answer)
    assert dev.info().model_id == MODEL_ID
    assert calls.count(link.REQ_INFO) == 2


def test_an_unexpected_payload_gets_a_clear_error(connect: Connect) -> None:
    _, dev = connect()
    with pytest.raises(ProtocolError, match=r"rejected INFO: .*payload of 1 byte.*expects 0"):
        dev._request(link.REQ_INFO, b"\x01")
    assert dev.info().model_id == MODEL_ID  # and the link keeps working


def test_foreign_data_is_a_protocol_error_not_a_timeout(connect: Connect) -> None:
    _, dev = connect(lambda *_: b"Hello from other firmware\r\n" * 400)
    start = time.monotonic()
    with pytest.raises(ProtocolError, match="not tinyml-hil frames"):
        dev.info()
    assert time.monotonic() - start < dev.timeout


def test_a_silent_device_times_out_within_the_timeout(connect: Connect) -> None:
    _, dev = connect(lambda *_: b"", timeout=0.6)
    start = time.monotonic()
    with pytest.raises(TargetTimeout, match=r"no answer to INFO .* may be hung"):
        dev.info()
    assert time.monotonic() - start < 0.6 + 0.3
