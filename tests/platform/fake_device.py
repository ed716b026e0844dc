"""A scripted stand-in for tinyml-hil firmware on a local TCP socket (QEMU offers the same).

Its receiver follows the firmware's (docs/protocol.md, "Receiving, on the device"): skip to SOF,
answer an over-long header with ERROR(TOO_LONG) and a CRC mismatch with ERROR(BAD_CRC), so
garbage a test writes leaves it in the same state as the real device (e.g. mid-frame). What it
sends back is up to the test: `answer(type, seq, payload)` returns the bytes to send.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

from hil import link

Answer = Callable[[int, int, bytes], bytes]

MODEL_ID = 0x0FA4E001
INPUT_BYTES = 16
OUTPUT_BYTES = 8


def info_payload() -> bytes:
    """An INFO answer: protocol 1, one int8 input of 16 bytes, one int8 output of 8, 2 layers."""
    head = struct.pack(
        "<HHIIIIIHHBB", link.PROTOCOL_VERSION, link.MAX_PAYLOAD, MODEL_ID, 25_000_000, 256,
        4096, 2, 128, 512, 1, 1,
    )  # fmt: skip
    ios = struct.pack("<IB", INPUT_BYTES, 0) + struct.pack("<IB", OUTPUT_BYTES, 0)
    return head + ios + bytes([4]) + b"fake"


def error_frame(seq: int, code: int, req_type: int, detail: int) -> bytes:
    return link.encode_frame(link.RSP_ERROR, seq, struct.pack("<BBI", code, req_type, detail))


def serve(req_type: int, seq: int, payload: bytes) -> bytes:
    """The firmware's answer to a well-formed request (INFO with a payload is BAD_LENGTH)."""
    rsp = req_type | link.RSP_FLAG
    if req_type == link.REQ_INFO:
        if payload:
            return error_frame(seq, 4, req_type, 0)
        return link.encode_frame(rsp, seq, info_payload())
    if req_type == link.REQ_ECHO:
        return link.encode_frame(rsp, seq, payload)
    if req_type == link.REQ_WRITE_INPUT:
        return link.encode_frame(rsp, seq)
    if req_type == link.REQ_READ_OUTPUT:
        n = struct.unpack_from("<H", payload, 5)[0]
        return link.encode_frame(rsp, seq, bytes(range(n)))
    if req_type == link.REQ_RUN:
        runs = struct.unpack_from("<H", payload, 2)[0]
        body = struct.pack("<IBBH", 512, 1, 0, runs) + struct.pack(f"<{runs}I", *[1000] * runs)
        body += struct.pack("<I", 256)  # the runtime's own stack at the layer calls
        return link.encode_frame(rsp, seq, body)
    if req_type == link.REQ_LAYER_COUNTS:
        n = struct.unpack_from("<H", payload, 2)[0]
        return link.encode_frame(rsp, seq, struct.pack(f"<{n}I", *[500] * n))
    return error_frame(seq, 3, req_type, 0)


class FakeDevice:
    """Serve one connection in a thread; `requests` records every well-formed request."""

    def __init__(self, answer: Answer = serve) -> None:
        self.answer = answer
        self.requests: list[tuple[int, int, bytes]] = []
        self.errors: list[int] = []  # ERROR codes sent for malformed frames
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._conn: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def send(self, data: bytes) -> None:
        """Send bytes on the device's own account (e.g. a late answer), outside any request."""
        assert self._conn is not None
        self._conn.sendall(data)

    def close(self) -> None:
        self._server.close()
        if self._conn is not None:
            self._conn.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeDevice:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _getc(self) -> int:
        assert self._conn is not None
        data = self._conn.recv(1)
        if not data:
            raise EOFError
        return data[0]

    def _run(self) -> None:
        try:
            self._conn, _ = self._server.accept()
            while True:
                while self._getc() != link.SOF:
                    pass
                header = bytes(self._getc() for _ in range(4))
                req_type, seq, length = struct.unpack("<BBH", header)
                if length > link.MAX_PAYLOAD:
                    self.errors.append(2)
                    self.send(error_frame(seq, 2, req_type, link.MAX_PAYLOAD))
                    continue
                payload = bytes(self._getc() for _ in range(length))
                crc = self._getc() | self._getc() << 8
                if crc != link.crc16(header + payload):
                    self.errors.append(1)
                    self.send(error_frame(seq, 1, req_type, link.crc16(header + payload)))
                    continue
                self.requests.append((req_type, seq, payload))
                self.send(self.answer(req_type, seq, payload))
        except (EOFError, OSError):
            pass
