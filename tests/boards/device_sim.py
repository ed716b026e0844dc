"""A tinyml-hil device on a pseudo-terminal, for testing the host's serial path unchanged.

`SimDevice` opens a pty pair (os.openpty) and serves the protocol of docs/protocol.md on the
master side in a thread; the host opens the slave's path as it would /dev/ttyACM0. The model
is a toy (outputs are the inputs reversed, each run takes a fixed count), so the host code is
what is under test. Misbehaviours: a slow UART (`byte_delay_s`), boot noise and a boot delay
after every (re)start, a reset in the middle of a RUN (the port then re-enumerates under a new
name, like a USB adapter), and silence.
"""

from __future__ import annotations

import contextlib
import os
import select
import struct
import threading
import time
import tty
from dataclasses import dataclass

from hil.link import (
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    REQ_ECHO,
    REQ_INFO,
    REQ_LAYER_COUNTS,
    REQ_READ_OUTPUT,
    REQ_RUN,
    REQ_WRITE_INPUT,
    RSP_ERROR,
    RSP_FLAG,
    SOF,
    crc16,
    encode_frame,
)
from hil.serial_ports import PortInfo

#: The USB serial number a Raspberry Pi Debug Probe's UART would report (= the probe's id).
PROBE_SERIAL = "E6614103E7A1B2C3"
IO_BYTES = 16
LAYERS = 3
COUNTS_PER_SECOND = 125_000_000
MODEL_ID = 0x1234ABCD


@dataclass
class Behaviour:
    byte_delay_s: float = 0.0  # per byte sent: a slow link
    boot_delay_s: float = 0.0  # deaf after each (re)start
    boot_noise: bytes = b""  # printed at each (re)start, before serving
    reset_on_run: int = 0  # reset (and re-enumerate) instead of answering this many RUNs
    run_seconds: float = 0.0  # time one RUN takes


class SimDevice:
    """See the module docstring. Use as a context manager; `path` is the port to open."""

    def __init__(self, behaviour: Behaviour | None = None, board: str = "pico") -> None:
        self.behaviour = behaviour or Behaviour()
        self.board = board
        self.resets = 0
        self.requests: list[int] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open_pty()
        self._boot()
        self._thread = threading.Thread(target=self._serve, name="sim-device", daemon=True)
        self._thread.start()

    # -- pty ------------------------------------------------------------------------------

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        self.master, self.slave = master, slave
        self.path = os.ttyname(slave)

    def _close_pty(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> SimDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._close_pty()

    # -- device state -------------------------------------------------------------------

    def _boot(self) -> None:
        self.inputs = bytearray(IO_BYTES)
        self.outputs = bytearray(IO_BYTES)
        self.ran = False
        self.awake_at = time.monotonic() + self.behaviour.boot_delay_s
        self._rx = bytearray()
        if self.behaviour.boot_noise:
            self._send(self.behaviour.boot_noise)

    def reset(self, re_enumerate: bool = True) -> None:
        """Restart the firmware; with `re_enumerate`, the port disappears and comes back under
        another name (hosts must find it again)."""
        with self._lock:
            self.resets += 1
            if re_enumerate:
                old = (self.master, self.slave)
                self._open_pty()
                for fd in old:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._boot()

    def _send(self, data: bytes) -> None:
        for i in range(len(data)):
            if self.behaviour.byte_delay_s:
                time.sleep(self.behaviour.byte_delay_s)
            with contextlib.suppress(OSError):
                os.write(self.master, data[i : i + 1])

    def _reply(self, frame_type: int, seq: int, payload: bytes = b"") -> None:
        data = encode_frame(frame_type, seq, payload)
        if self.behaviour.byte_delay_s:
            self._send(data)
        else:
            with contextlib.suppress(OSError):
                os.write(self.master, data)

    # -- protocol -------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                master = self.master
            try:
                ready, _, _ = select.select([master], [], [], 0.02)
                chunk = os.read(master, 4096) if ready else b""
            except OSError:
                time.sleep(0.01)  # the pty was replaced by a reset
                continue
            if time.monotonic() < self.awake_at:
                continue  # booting: deaf
            self._rx += chunk
            self._parse()

    def _parse(self) -> None:
        rx = self._rx
        while True:
            start = rx.find(SOF)
            if start < 0:
                rx.clear()
                return
            del rx[:start]
            if len(rx) < 5:
                return
            frame_type, seq, length = struct.unpack_from("<BBH", rx, 1)
            if length > MAX_PAYLOAD:
                del rx[:1]
                continue
            if len(rx) < 7 + length:
                return
            body = bytes(rx[1 : 5 + length])
            (crc,) = struct.unpack_from("<H", rx, 5 + length)
            del rx[: 7 + length]
            if crc16(body) != crc:
                self._reply(RSP_ERROR, seq, struct.pack("<BBI", 1, frame_type, crc16(body)))
                continue
            self.requests.append(frame_type)
            self._handle(frame_type, seq, body[4:])
            if rx is not self._rx:
                return  # the device reset: what was buffered is gone

    def _handle(self, kind: int, seq: int, p: bytes) -> None:
        if kind == REQ_ECHO:
            self._reply(kind | RSP_FLAG, seq, p)
        elif kind == REQ_INFO:
            name = self.board.encode()
            payload = struct.pack("<HHIIIIIHHBB", PROTOCOL_VERSION, MAX_PAYLOAD, MODEL_ID,
                                  COUNTS_PER_SECOND, 64, 16384, LAYERS, 128, 512, 1, 1)  # fmt: skip
            payload += struct.pack("<IB", IO_BYTES, 0) * 2 + bytes([len(name)]) + name
            self._reply(kind | RSP_FLAG, seq, payload)
        elif kind == REQ_WRITE_INPUT:
            _, offset = struct.unpack_from("<BI", p)
            self.inputs[offset : offset + len(p) - 5] = p[5:]
            self._reply(kind | RSP_FLAG, seq)
        elif kind == REQ_RUN:
            if self.behaviour.reset_on_run > 0:
                self.behaviour.reset_on_run -= 1
                self.reset()
                return
            _warmup, runs = struct.unpack("<HH", p)
            time.sleep(self.behaviour.run_seconds)
            self.outputs[:] = self.inputs[::-1]
            self.ran = True
            counts = [1000 + 10 * i for i in range(runs)]
            payload = struct.pack("<IBBH", 512, 1, 0, runs) + struct.pack(f"<{runs}I", *counts)
            payload += struct.pack("<I", 256)  # the runtime's own stack at the layer calls
            self._reply(kind | RSP_FLAG, seq, payload)
        elif kind == REQ_LAYER_COUNTS:
            _first, count = struct.unpack("<HH", p)
            self._reply(kind | RSP_FLAG, seq, struct.pack(f"<{count}I", *[100] * count))
        elif kind == REQ_READ_OUTPUT:
            _, offset, n = struct.unpack("<BIH", p)
            self._reply(kind | RSP_FLAG, seq, bytes(self.outputs[offset : offset + n]))
        else:
            self._reply(RSP_ERROR, seq, struct.pack("<BBI", 3, kind, 0))


def debug_probe_port(device: SimDevice) -> PortInfo:
    """A list_ports entry for a Debug Probe UART that follows the device's current pty."""
    class Live(PortInfo):
        @property
        def device(self) -> str:  # type: ignore[override]
            return device.path

    port = Live.__new__(Live)
    object.__setattr__(port, "vid", 0x2E8A)
    object.__setattr__(port, "pid", 0x000C)
    object.__setattr__(port, "serial_number", PROBE_SERIAL)
    object.__setattr__(port, "description", "Debug Probe (CMSIS-DAP)")
    return port
