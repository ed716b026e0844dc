"""The host side of the serial protocol (docs/protocol.md): talk to tinyml-hil firmware.

`DeviceLink` works over anything pyserial's `serial_for_url` opens: `socket://127.0.0.1:PORT`
for QEMU and `/dev/ttyACM0` for a board, with the same code. Every request carries a sequence
number that the answer echoes, so stale answers (e.g. error replies to line noise) are skipped;
a FAULT frame from the device raises `DeviceFault` with the registers it reported.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import NamedTuple

import serial

from hil.errors import (
    HilError,
    InputError,
    ProtocolError,
    TargetError,
    TargetFault,
    TargetTimeout,
)

# Mirrors firmware/runtime/hil_protocol.h (tests/platform checks that they agree).
PROTOCOL_VERSION = 1
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


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection), as the firmware computes."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
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

    def __init__(self, url: str, *, timeout: float = 5.0, baudrate: int = 115200) -> None:
        self.url = url
        self.timeout = timeout
        self._seq = 0
        self._info: DeviceInfo | None = None
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)
        except (serial.SerialException, ValueError, OSError) as exc:
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
        counts: list[int] = []
        stack = 0
        intact = True
        while len(counts) < runs:
            batch = min(info.max_runs, runs - len(counts))
            p = self._request(
                REQ_RUN, struct.pack("<HH", warmup if not counts else 0, batch),
                deadline=deadline,
            )  # fmt: skip
            if len(p) != 8 + 4 * batch:
                raise ProtocolError(f"RUN answer from {self.url} has {len(p)} bytes, expected "
                                    f"{8 + 4 * batch}")  # fmt: skip
            batch_stack, batch_intact, _, n = struct.unpack_from("<IBBH", p)
            counts += struct.unpack_from(f"<{n}I", p, 8)
            stack = max(stack, batch_stack)
            intact = intact and bool(batch_intact)
        layer_counts: list[int] = []
        per_frame = info.max_payload // 4
        for first in range(0, info.num_layers, per_frame):
            n = min(per_frame, info.num_layers - first)
            p = self._request(REQ_LAYER_COUNTS, struct.pack("<HH", first, n), expect=4 * n)
            layer_counts += struct.unpack(f"<{n}I", p)
        return RunResult(counts, layer_counts, stack, intact)

    def echo(self, data: bytes) -> bytes:
        """Round-trip `data` through the firmware (a liveness and link-integrity check)."""
        return self._request(REQ_ECHO, data, expect=len(data))

    def resync(self) -> None:
        """Bring the firmware's receiver back to the start of a frame after the host was
        interrupted mid-request: zero bytes complete any partial frame (the firmware answers
        it with an ERROR, which is dropped) and are otherwise skipped; an ECHO confirms."""
        self._write(bytes(MAX_PAYLOAD + 8))
        time.sleep(0.05)
        self._port.reset_input_buffer()
        self.echo(b"resync")

    # -- framing --------------------------------------------------------------------------

    def _known_info(self) -> DeviceInfo:
        return self._info if self._info is not None else self.info()

    def _io(self, kind: str, ios: tuple[DeviceIo, ...], index: int) -> DeviceIo:
        if not 0 <= index < len(ios):
            raise InputError(f"the model on the target has {len(ios)} {kind}s; no {kind} {index}")
        return ios[index]

    def _request(
        self,
        req_type: int,
        payload: bytes = b"",
        *,
        expect: int | None = None,
        deadline: float | None = None,
    ) -> bytes:
        self._seq = (self._seq + 1) & 0xFF
        seq = self._seq
        name = REQUEST_NAMES.get(req_type, f"0x{req_type:02x}")
        self._write(encode_frame(req_type, seq, payload))
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        while True:
            frame = self._read_frame(deadline, name)
            if frame.type == RSP_FAULT:
                report = _decode_fault(frame.payload)
                raise DeviceFault(
                    f"the target faulted while serving {name}: {report.describe()}", report
                )
            if frame.seq != seq:
                continue  # an answer to something earlier (or to line noise)
            if frame.type == RSP_ERROR:
                raise ProtocolError(f"the target rejected {name}: {_decode_error(frame.payload)}")
            if frame.type != req_type | RSP_FLAG:
                raise ProtocolError(
                    f"the target answered {name} with frame type 0x{frame.type:02x}"
                )
            if expect is not None and len(frame.payload) != expect:
                raise ProtocolError(
                    f"{name} answer has {len(frame.payload)} bytes, expected {expect}"
                )
            return frame.payload

    def _write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise TargetError(f"lost the connection to the target at {self.url}: {exc}") from exc

    def _read(self, n: int, deadline: float, name: str) -> bytes:
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TargetTimeout(
                    f"no answer to {name} from {self.url} in time: the target may be hung "
                    f"(e.g. a model stuck in a loop) or not running tinyml-hil firmware"
                )
            self._port.timeout = left
            try:
                out += self._port.read(n - len(out))
            except (serial.SerialException, OSError) as exc:
                raise TargetError(
                    f"lost the connection to the target at {self.url} waiting for {name}: {exc}"
                ) from exc
        return bytes(out)

    def _read_frame(self, deadline: float, name: str) -> Frame:
        skipped = 0
        while self._read(1, deadline, name)[0] != SOF:
            skipped += 1
            if skipped > _MAX_GARBAGE:
                raise ProtocolError(
                    f"{self.url} sends data that is not tinyml-hil frames (waiting for {name}): "
                    f"wrong port or baud rate, or other firmware"
                )
        header = self._read(4, deadline, name)
        frame_type, seq, length = struct.unpack("<BBH", header)
        if length > MAX_PAYLOAD:
            raise ProtocolError(f"frame of {length} bytes from {self.url} (limit {MAX_PAYLOAD})")
        rest = self._read(length + 2, deadline, name)
        payload, (crc,) = rest[:length], struct.unpack("<H", rest[length:])
        if crc16(header + payload) != crc:
            raise ProtocolError(f"CRC mismatch in a frame from {self.url} (waiting for {name})")
        return Frame(frame_type, seq, payload)


def _decode_error(payload: bytes) -> str:
    if len(payload) != 6:
        return f"malformed ERROR frame {payload.hex()}"
    code, req_type, detail = struct.unpack("<BBI", payload)
    what = ERROR_CODES.get(code, f"error code {code}")
    return f"{what} (request 0x{req_type:02x}, limit/detail {detail})"


def _decode_fault(payload: bytes) -> FaultReport:
    if len(payload) != 36:
        raise ProtocolError(f"malformed FAULT frame ({len(payload)} bytes, expected 36)")
    exception, arch, valid, _ = struct.unpack_from("<BBBB", payload)
    regs = struct.unpack_from("<8I", payload, 4)
    return FaultReport(exception, arch, bool(valid), *regs)
