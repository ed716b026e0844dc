"""The host side of the serial protocol (docs/protocol.md): talk to tinyml-hil firmware.

`DeviceLink` works over anything pyserial's `serial_for_url` opens: `socket://127.0.0.1:PORT`
for QEMU and `/dev/ttyACM0` for a board, with the same code. Every request carries a sequence
number that the answer echoes, so stale answers (e.g. error replies to line noise) are skipped;
bad frames (too long, CRC mismatch, cut off) cost only their start byte, the reader goes on at
the next one; a request lost in a partial frame on the device is sent again after a resync
(docs/protocol.md, "Recovery"). A FAULT frame from the device raises `DeviceFault` with the
registers it reported.
"""

from __future__ import annotations

import errno
import functools
import os
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import serial

from hil.errors import (
    HilError,
    InputError,
    LinkLost,
    PortBusyError,
    ProtocolError,
    TargetError,
    TargetFault,
    TargetTimeout,
)

# Mirrors firmware/runtime/hil_protocol.h (tests/platform checks that they agree).
PROTOCOL_VERSION = 2
SOF = 0xA5
MAX_PAYLOAD = 1024
REQ_INFO = 0x01
REQ_WRITE_INPUT = 0x02
REQ_READ_OUTPUT = 0x03
REQ_RUN = 0x04
REQ_LAYER_COUNTS = 0x05
REQ_ECHO = 0x06
RSP_FLAG = 0x80
RSP_ERROR = 0xE0
RSP_FAULT = 0xE1

REQUEST_NAMES = {
    REQ_INFO: "INFO",
    REQ_WRITE_INPUT: "WRITE_INPUT",
    REQ_READ_OUTPUT: "READ_OUTPUT",
    REQ_RUN: "RUN",
    REQ_LAYER_COUNTS: "LAYER_COUNTS",
    REQ_ECHO: "ECHO",
}
#: ERROR frame codes and what they mean (the detail word is the relevant limit).
ERROR_CODES = {
    1: "CRC mismatch",
    2: "frame longer than the device accepts",
    3: "unknown request type",
    4: "wrong payload length",
    5: "no such tensor index",
    6: "offset/length outside the tensor or layer list",
    7: "runs outside 1..max_runs",
    8: "model has more layers than the firmware can time",
    9: "no RUN has completed yet",
}
DTYPES = {0: "int8", 1: "uint8", 2: "int16", 3: "int32", 4: "float32"}
_EXCEPTIONS = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault",
               11: "SVCall", 12: "DebugMonitor", 14: "PendSV", 15: "SysTick"}  # fmt: skip
# ARMv7-M CFSR (MMFSR | BFSR << 8 | UFSR << 16) and HFSR bits, for readable fault reports.
_CFSR_BITS = {0: "IACCVIOL", 1: "DACCVIOL", 3: "MUNSTKERR", 4: "MSTKERR", 5: "MLSPERR",
              7: "MMARVALID", 8: "IBUSERR", 9: "PRECISERR", 10: "IMPRECISERR", 11: "UNSTKERR",
              12: "STKERR", 13: "LSPERR", 15: "BFARVALID", 16: "UNDEFINSTR", 17: "INVSTATE",
              18: "INVPC", 19: "NOCP", 24: "UNALIGNED", 25: "DIVBYZERO"}  # fmt: skip
_HFSR_BITS = {1: "VECTTBL", 30: "FORCED", 31: "DEBUGEVT"}
#: Bytes of non-frame data tolerated while waiting for an answer before giving up.
_MAX_GARBAGE = 4 * MAX_PAYLOAD
#: Silence after which the frame at the front of the input is presumed cut off, so a complete
#: answer after it may be taken (a stale partial answer can announce more than ever follows).
_STALL_S = 0.05
#: Silence after a request the device serves at once (all but RUN) before presuming it lost
#: (the device was mid-frame) and sending it again; at most half the link's timeout. An answer
#: that has started to arrive is waited for until the timeout.
_QUICK_WAIT_S = 0.5
#: Zero bytes that complete any partial frame on the device: header, MAX_PAYLOAD, CRC and more.
_FLUSH_BYTES = MAX_PAYLOAD + 8
#: What pyserial raises when a port goes away under it (termios.error is no OSError: a USB
#: adapter that re-enumerates makes tcdrain fail with it).
_LINK_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError)
try:
    import termios

    _LINK_ERRORS += (termios.error,)
except ImportError:  # not POSIX
    pass


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection), as the firmware computes."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


def encode_frame(frame_type: int, seq: int, payload: bytes = b"") -> bytes:
    """One protocol frame: SOF, type, seq, u16 length, payload, CRC-16 over type..payload."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    body = struct.pack("<BBH", frame_type, seq & 0xFF, len(payload)) + payload
    return bytes([SOF]) + body + struct.pack("<H", crc16(body))


class Frame(NamedTuple):
    type: int
    seq: int
    payload: bytes


class DeviceIo(NamedTuple):
    """One model input or output as the device describes it."""

    bytes: int
    dtype: str


@dataclass(frozen=True)
class DeviceInfo:
    """What the firmware reports about itself and the model it carries."""

    protocol_version: int
    board: str
    model_id: int  # hash of the generated source: compare with the image you built
    inputs: tuple[DeviceIo, ...]
    outputs: tuple[DeviceIo, ...]
    num_layers: int
    arena_bytes: int
    counts_per_second: int  # frequency of the time counter the counts are in
    stack_size: int  # bytes reserved for the main stack by the linker script
    max_payload: int
    max_runs: int  # measured runs per RUN request (DeviceLink.run splits larger requests)
    max_layers: int


@dataclass(frozen=True)
class RunResult:
    """Timings of one `DeviceLink.run` call, in counts of `DeviceInfo.counts_per_second`."""

    counts: list[int]  # whole inference, one entry per measured run
    layer_counts: list[int]  # per layer, of the last measured run
    stack_bytes: int  # peak main-stack use during the runs (stack painting)
    inputs_intact: bool  # False if the model overwrote its own inputs while running
    #: Stack the runtime itself holds when it calls the layers; the model's share of the peak
    #: is stack_bytes minus this.
    runtime_stack_bytes: int = 0


@dataclass(frozen=True)
class FaultReport:
    """Registers the firmware's fault handler sent before stopping."""

    exception: int  # IPSR: 3 HardFault, 4 MemManage, 5 BusFault, 6 UsageFault, ...
    arch: int  # 6 (ARMv6-M, no fault status registers) or 7 (ARMv7-M)
    frame_valid: bool  # False: the stacked frame was outside RAM, pc/lr/xpsr are 0
    pc: int
    lr: int
    xpsr: int
    sp: int
    cfsr: int
    hfsr: int
    mmfar: int
    bfar: int

    def describe(self) -> str:
        name = _EXCEPTIONS.get(self.exception, f"exception {self.exception}")
        text = f"{name} at PC=0x{self.pc:08x} (LR=0x{self.lr:08x}, xPSR=0x{self.xpsr:08x}, "
        text += f"SP=0x{self.sp:08x})"
        if not self.frame_valid:
            text += " [stack frame outside RAM: PC/LR/xPSR unknown, likely a stack overflow]"
        if self.arch >= 7:
            cfsr = [n for bit, n in _CFSR_BITS.items() if self.cfsr >> bit & 1]
            hfsr = [n for bit, n in _HFSR_BITS.items() if self.hfsr >> bit & 1]
            text += f", CFSR=0x{self.cfsr:08x} ({' '.join(cfsr) or '-'})"
            text += f", HFSR=0x{self.hfsr:08x} ({' '.join(hfsr) or '-'})"
            if self.cfsr >> 7 & 1:
                text += f", MMFAR=0x{self.mmfar:08x}"
            if self.cfsr >> 15 & 1:
                text += f", BFAR=0x{self.bfar:08x}"
        return text


class DeviceFault(TargetFault):
    """The firmware reported a fault; `report` holds its registers."""

    def __init__(self, message: str, report: FaultReport) -> None:
        super().__init__(message)
        self.report = report


class DeviceLink:
    """A connection to tinyml-hil firmware; use as a context manager (or call close())."""

    def __init__(
        self, url: str, *, timeout: float = 5.0, baudrate: int = 115200, exclusive: bool = False
    ) -> None:
        """`exclusive`: lock a local serial device (POSIX flock) so no other bench run can
        talk to the same board at once; a port another program holds is a PortBusyError."""
        self.url = url
        self.timeout = timeout
        # Seqs start anywhere, so answers left from an earlier connection rarely match.
        self._seq = random.randrange(256)
        self._info: DeviceInfo | None = None
        self._rx = bytearray()  # received, not yet parsed
        self._dirty = False  # the device may be mid-frame or still answering: resync first
        self._noise = 0  # garbage bytes and stale frames seen since the last request went out
        extra = {"exclusive": True} if exclusive and "://" not in url else {}
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, **extra)
        except (serial.SerialException, ValueError, OSError) as exc:
            if "exclusively lock" in str(exc) or getattr(exc, "errno", None) == errno.EBUSY:
                raise PortBusyError(
                    f"serial port {url} is in use by another program (a terminal such as "
                    f"screen or minicom, or another hil run); close it (`fuser {url}` shows "
                    "who holds it) and try again"
                ) from exc
            raise TargetError(f"cannot open the target's serial link {url}: {exc}") from exc

    def __enter__(self) -> DeviceLink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._port.close()

    # -- requests -------------------------------------------------------------------------

    def info(self) -> DeviceInfo:
        """Ask the firmware what it is; checks the protocol version."""
        p = self._request(REQ_INFO)
        try:
            (version, max_payload, model_id, cps, arena, stack, layers, max_runs, max_layers,
             n_in, n_out) = struct.unpack_from("<HHIIIIIHHBB", p)  # fmt: skip
            if version != PROTOCOL_VERSION:
                raise ProtocolError(
                    f"the firmware at {self.url} speaks protocol version {version}, this host "
                    f"version {PROTOCOL_VERSION}: rebuild the image with this version of the bench"
                )
            pos = 30
            ios = []
            for _ in range(n_in + n_out):
                size, code = struct.unpack_from("<IB", p, pos)
                ios.append(DeviceIo(size, DTYPES.get(code, f"dtype{code}")))
                pos += 5
            name_len = p[pos]
            board = p[pos + 1 : pos + 1 + name_len].decode("ascii", errors="replace")
            if pos + 1 + name_len != len(p):
                raise ProtocolError(f"INFO answer from {self.url} has {len(p)} bytes, not "
                                    f"{pos + 1 + name_len}")  # fmt: skip
        except (struct.error, IndexError) as exc:
            raise ProtocolError(f"truncated INFO answer from {self.url}: {exc}") from exc
        self._info = DeviceInfo(
            protocol_version=version, board=board, model_id=model_id,
            inputs=tuple(ios[:n_in]), outputs=tuple(ios[n_in:]), num_layers=layers,
            arena_bytes=arena, counts_per_second=cps, stack_size=stack,
            max_payload=max_payload, max_runs=max_runs, max_layers=max_layers,
        )  # fmt: skip
        return self._info

    def expect_model(self, model_id: int) -> DeviceInfo:
        """info(), raising TargetError unless the firmware carries the model `model_id`."""
        info = self.info()
        if info.model_id != model_id:
            raise TargetError(
                f"the target at {self.url} runs model 0x{info.model_id:08x}, not the image just "
                f"built (0x{model_id:08x}): a stale image, or the wrong serial port"
            )
        return info

    def write_input(self, index: int, data: bytes) -> None:
        """Set input `index` to `data`, which must have exactly the input's size."""
        io = self._io("input", self._known_info().inputs, index)
        if len(data) != io.bytes:
            raise InputError(
                f"input {index} of the model on the target has {io.bytes} bytes ({io.dtype}); "
                f"got {len(data)}"
            )
        chunk = self._known_info().max_payload - 5
        for offset in range(0, len(data), chunk):
            part = bytes(data[offset : offset + chunk])
            self._request(REQ_WRITE_INPUT, struct.pack("<BI", index, offset) + part, expect=0)

    def read_output(self, index: int) -> bytes:
        """The bytes of output `index` after the last run."""
        io = self._io("output", self._known_info().outputs, index)
        chunk = self._known_info().max_payload
        out = bytearray()
        for offset in range(0, io.bytes, chunk):
            n = min(chunk, io.bytes - offset)
            out += self._request(REQ_READ_OUTPUT, struct.pack("<BIH", index, offset, n), expect=n)
        return bytes(out)

    def run(self, runs: int, warmup: int = 0, timeout: float | None = None) -> RunResult:
        """Run `warmup` untimed then `runs` timed inferences on the current inputs.

        `timeout` bounds the whole call; by default the link's timeout is allowed per
        inference. More runs than the firmware keeps per request are split into several RUN
        requests (the warm-up only before the first).
        """
        if runs < 1 or warmup < 0 or warmup > 0xFFFF:
            raise HilError(f"runs must be at least 1 and warmup 0..65535, got {runs}, {warmup}")
        info = self._known_info()
        budget = timeout if timeout is not None else self.timeout * (1 + runs + warmup)
        deadline = time.monotonic() + budget
        # RUN may be silent for long, so it is never sent twice: an empty ECHO first makes
        # sure the device is listening at a frame boundary (it is sent again if lost).
        self._request(REQ_ECHO, b"", expect=0, deadline=deadline)
        counts: list[int] = []
        stack = runtime_stack = 0
        intact = True
        while len(counts) < runs:
            batch = min(info.max_runs, runs - len(counts))
            p = self._request(
                REQ_RUN, struct.pack("<HH", warmup if not counts else 0, batch),
                deadline=deadline,
            )  # fmt: skip
            if len(p) != 12 + 4 * batch:
                raise ProtocolError(f"RUN answer from {self.url} has {len(p)} bytes, expected "
                                    f"{12 + 4 * batch}")  # fmt: skip
            batch_stack, batch_intact, _, n = struct.unpack_from("<IBBH", p)
            counts += struct.unpack_from(f"<{n}I", p, 8)
            (batch_runtime,) = struct.unpack_from("<I", p, 8 + 4 * n)
            stack = max(stack, batch_stack)
            runtime_stack = max(runtime_stack, batch_runtime)
            intact = intact and bool(batch_intact)
        layer_counts: list[int] = []
        per_frame = info.max_payload // 4
        for first in range(0, info.num_layers, per_frame):
            n = min(per_frame, info.num_layers - first)
            p = self._request(REQ_LAYER_COUNTS, struct.pack("<HH", first, n), expect=4 * n)
            layer_counts += struct.unpack(f"<{n}I", p)
        return RunResult(counts, layer_counts, stack, intact, runtime_stack)

    def echo(self, data: bytes) -> bytes:
        """Round-trip `data` through the firmware (a liveness and link-integrity check)."""
        return self._request(REQ_ECHO, data, expect=len(data))

    def resync(self) -> None:
        """Bring the firmware's receiver back to the start of a frame and drop every answer
        still on its way (requests do this themselves after anything unexpected; see
        docs/protocol.md, "Recovery")."""
        self._drain()
        self._resync(time.monotonic() + self.timeout, "ECHO (resync)")

    # -- framing --------------------------------------------------------------------------

    def _known_info(self) -> DeviceInfo:
        return self._info if self._info is not None else self.info()

    def _io(self, kind: str, ios: tuple[DeviceIo, ...], index: int) -> DeviceIo:
        if not 0 <= index < len(ios):
            raise InputError(f"the model on the target has {len(ios)} {kind}s; no {kind} {index}")
        return ios[index]

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def _request(
        self,
        req_type: int,
        payload: bytes = b"",
        *,
        expect: int | None = None,
        deadline: float | None = None,
    ) -> bytes:
        """Send one request and return its answer's payload.

        Before it: bytes already waiting (stale answers) or an earlier request that did not end
        cleanly mean the device may be mid-frame or still answering, so the link resyncs first.
        Every request but RUN is answered at once and can be repeated, so when its answer does
        not come within a short wait, or the device saw it with a bad CRC, the link resyncs
        and sends it once more, all within `deadline`.
        """
        name = REQUEST_NAMES.get(req_type, f"0x{req_type:02x}")
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        if self._drain() or self._dirty:
            self._resync(deadline, name)
        attempts = 1 if req_type == REQ_RUN else 2
        for attempt in range(attempts):
            seq = self._next_seq()
            self._dirty = True  # until an answer arrives with nothing unexpected around it
            self._noise = 0
            self._write(encode_frame(req_type, seq, payload))
            until = deadline
            if attempt + 1 < attempts:
                quick = min(self.timeout / 2, _QUICK_WAIT_S)
                until = min(deadline, time.monotonic() + quick)
            accept = functools.partial(_answers, req_type=req_type, seq=seq)
            frame = self._await(accept, until, name)
            if frame is None and until < deadline and self._arriving(seq):
                frame = self._await(accept, deadline, name)
            if attempt + 1 < attempts and (frame is None or _damaged_on_the_way(frame)):
                self._resync(deadline, name)  # lost in a partial frame, or damaged: again
                continue
            break
        if frame is None:
            raise self._timeout(name)
        self._dirty = self._noise > 0 or bool(self._rx)
        if frame.type == RSP_FAULT:
            report = _decode_fault(frame.payload)
            raise DeviceFault(
                f"the target faulted while serving {name}: {report.describe()}", report
            )
        if frame.type == RSP_ERROR:
            raise ProtocolError(
                f"the target rejected {name}: {_decode_error(frame.payload, len(payload))}"
            )
        if frame.type != req_type | RSP_FLAG:
            raise ProtocolError(f"the target answered {name} with frame type 0x{frame.type:02x}")
        if expect is not None and len(frame.payload) != expect:
            raise ProtocolError(f"{name} answer has {len(frame.payload)} bytes, expected {expect}")
        return frame.payload

    def _resync(self, deadline: float, name: str) -> None:
        """Zero bytes complete any partial frame on the device (which answers it with an
        ERROR) and are otherwise skipped (0x00 is not SOF); an ECHO with a fresh nonce then
        comes back after every answer still on its way, since the device answers in order."""
        self._write(bytes(_FLUSH_BYTES))
        nonce = os.urandom(8)
        seq = self._next_seq()
        self._write(encode_frame(REQ_ECHO, seq, nonce))
        echoed = REQ_ECHO | RSP_FLAG

        def accept(f: Frame) -> bool:
            return f.type == RSP_FAULT or (f.type, f.seq, f.payload) == (echoed, seq, nonce)

        frame = self._await(accept, deadline, name)
        if frame is None:
            raise self._timeout(name)
        if frame.type == RSP_FAULT:
            report = _decode_fault(frame.payload)
            raise DeviceFault(
                f"the target faulted while serving {name}: {report.describe()}", report
            )
        self._dirty = False

    def _timeout(self, name: str) -> TargetTimeout:
        return TargetTimeout(
            f"no answer to {name} from {self.url} in time: the target may be hung "
            f"(e.g. a model stuck in a loop) or not running tinyml-hil firmware"
        )

    def _write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except _LINK_ERRORS as exc:
            raise LinkLost(f"lost the connection to the target at {self.url}: {exc}") from exc

    def _drain(self) -> bool:
        """Drop whatever the device sent that nobody asked for yet; True if there was some."""
        found = bool(self._rx)
        self._rx.clear()
        self._port.timeout = 0
        for _ in range(64):  # bounded: a device that never stops talking fails in _await
            try:
                data = self._port.read(4096)
            except _LINK_ERRORS as exc:
                raise LinkLost(f"lost the connection to the target at {self.url}: {exc}") from exc
            if not data:
                break
            found = True
        return found

    def _await(self, accept: Callable[[Frame], bool], until: float, name: str) -> Frame | None:
        """The first valid frame `accept` takes, or None at `until`. Bad frames (too long, CRC
        mismatch, cut off) cost only their start byte: the search goes on at the next SOF."""
        garbage = 0
        stalled = False
        while True:
            frame, dropped = self._take(accept, stalled)
            garbage += dropped
            self._noise += dropped
            if frame is not None:
                return frame
            if garbage > _MAX_GARBAGE:
                raise ProtocolError(
                    f"{self.url} sends data that is not tinyml-hil frames (waiting for {name}): "
                    f"wrong port or baud rate, or other firmware"
                )
            left = until - time.monotonic()
            if left <= 0:
                return None
            need = self._missing()
            self._port.timeout = min(left, _STALL_S)
            try:
                data = self._port.read(need)
            except _LINK_ERRORS as exc:
                raise LinkLost(
                    f"lost the connection to the target at {self.url} waiting for {name}: {exc}"
                ) from exc
            self._rx += data
            stalled = len(data) < need

    def _arriving(self, seq: int) -> bool:
        """Whether the frame at the front of the buffer may be the answer with `seq`, still
        coming in (so not lost)."""
        rx = self._rx
        return bool(rx) and (len(rx) < 5 or rx[2] == seq)

    def _missing(self) -> int:
        """Bytes still missing from the frame that starts the buffer (at least 1)."""
        rx = self._rx
        if len(rx) < 5:
            return 5 - len(rx) if rx else 1
        (length,) = struct.unpack_from("<H", rx, 3)
        return max(1, 7 + length - len(rx))

    def _take(self, accept: Callable[[Frame], bool], stalled: bool) -> tuple[Frame | None, int]:
        """Parse the buffer: (the frame `accept` takes or None, bytes dropped as garbage).

        Frames are taken in order, skipping bad ones and those `accept` refuses (stale
        answers). If the frame at the front is incomplete and the input has stalled, it may be
        a cut-off stale answer whose announced length swallows the real one: then a later
        complete frame that `accept` takes is taken instead.
        """
        rx = self._rx
        dropped = 0
        while True:
            start = rx.find(SOF)
            if start < 0:
                dropped += len(rx)
                rx.clear()
                return None, dropped
            dropped += start
            del rx[:start]
            status, frame, end = _parse_at(rx, 0)
            if status == _BAD:
                dropped += 1
                del rx[:1]
                continue
            if status == _PARTIAL:
                break
            del rx[:end]
            assert frame is not None
            if accept(frame):
                return frame, dropped
            self._noise += 1  # a stale answer
        if stalled:
            pos = rx.find(SOF, 1)
            while pos > 0:
                status, frame, end = _parse_at(rx, pos)
                if status == _OK and frame is not None and accept(frame):
                    dropped += pos
                    del rx[:end]
                    return frame, dropped
                pos = rx.find(SOF, pos + 1)
        return None, dropped


_OK, _BAD, _PARTIAL = range(3)


def _parse_at(buf: bytearray, pos: int) -> tuple[int, Frame | None, int]:
    """The frame whose SOF is at `buf[pos]`: (_OK, frame, end), (_BAD, None, 0) for a header
    announcing too much or a CRC mismatch, (_PARTIAL, None, 0) while bytes are missing."""
    if len(buf) < pos + 5:
        return _PARTIAL, None, 0
    frame_type, seq, length = struct.unpack_from("<BBH", buf, pos + 1)
    if length > MAX_PAYLOAD:
        return _BAD, None, 0
    end = pos + 7 + length
    if len(buf) < end:
        return _PARTIAL, None, 0
    (crc,) = struct.unpack_from("<H", buf, end - 2)
    if crc16(bytes(buf[pos + 1 : end - 2])) != crc:
        return _BAD, None, 0
    return _OK, Frame(frame_type, seq, bytes(buf[pos + 5 : end - 2])), end


def _answers(frame: Frame, req_type: int, seq: int) -> bool:
    """Whether `frame` answers request (`req_type`, `seq`) rather than an earlier one.

    A FAULT always counts (the device has stopped). Answers to other request types, and
    ERRORs about other request types, are stale even with this seq (seqs wrap and restart
    with each connection). A non-answer frame with this seq is taken, to be reported: the
    link hears requests back (an echoing line) or talks to something else.
    """
    if frame.type == RSP_FAULT:
        return True
    if frame.seq != seq:
        return False
    if frame.type == RSP_ERROR:
        return len(frame.payload) != 6 or frame.payload[1] == req_type
    return frame.type == req_type | RSP_FLAG or not frame.type & RSP_FLAG


def _damaged_on_the_way(frame: Frame) -> bool:
    """An ERROR saying the request reached the device corrupted (bad CRC or length)."""
    return frame.type == RSP_ERROR and len(frame.payload) == 6 and frame.payload[0] in (1, 2)


#: What to do about an ERROR answer: the host checks its arguments first, so the firmware and
#: this host disagree about the protocol.
_REBUILD = "the image and this host disagree about the protocol: rebuild it with this bench"


def _decode_error(payload: bytes, sent: int) -> str:
    """An ERROR frame's payload in words; `sent` is the payload length of the request."""
    if len(payload) != 6:
        return f"malformed ERROR frame {payload.hex()}"
    code, req_type, detail = struct.unpack("<BBI", payload)
    size = f"{sent} byte{'s' if sent != 1 else ''}"
    if code == 1:
        return (f"the request reached it with a CRC mismatch (it computed 0x{detail:04x}): "
                "line noise, or a wrong baud rate")  # fmt: skip
    if code == 4:
        least = "at least " if req_type == REQ_WRITE_INPUT else ""
        return f"a payload of {size}, where the firmware expects {least}{detail}; {_REBUILD}"
    if code == 3:
        return f"unknown request type 0x{req_type:02x}; {_REBUILD}"
    what = ERROR_CODES.get(code, f"error code {code}")
    return f"{what} (limit {detail}); {_REBUILD}"


def _decode_fault(payload: bytes) -> FaultReport:
    if len(payload) != 36:
        raise ProtocolError(f"malformed FAULT frame ({len(payload)} bytes, expected 36)")
    exception, arch, valid, _ = struct.unpack_from("<BBBB", payload)
    regs = struct.unpack_from("<8I", payload, 4)
    return FaultReport(exception, arch, bool(valid), *regs)
