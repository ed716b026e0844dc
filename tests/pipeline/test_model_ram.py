"""Model RAM: the part of the image's RAM a deployment of the model needs (docs/measurement.md).

The statics are split by the link map (the bench runtime's archive apart from everything else)
and the stack by the runtime's own depth at the layer calls, which the firmware reports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import hil
from hil.measure import model_static_ram

REPO = Path(__file__).resolve().parents[2]

MAP = """\
Memory Configuration
.text           0x00000000      0x200
 .text.hil_conv2d_s8
                0x00000000      0x100 /c/lib/libhil_kernels.a(hil_conv2d_s8.c.obj)
.data           0x20000000        0x8 load address 0x00000200
 .data.table    0x20000000        0x8 CMakeFiles/model.dir/p/model.c.obj
.bss            0x20000008     0x1000 load address 0x00000208
 *(.bss .bss.*)
 .bss.hil_arena
                0x20000008      0x800 CMakeFiles/model.dir/p/model.c.obj
 .bss.req       0x20000808      0x404 /c/lib/libhil_platform.a(hil_main.c.obj)
 *fill*         0x20000c0c        0x4
 .bss.state     0x20000c10        0x10 /c/lib/libhil_kernels.a(hil_softmax_s8.c.obj)
 .bss.impure    0x20000c20        0x60 /usr/lib/arm-none-eabi/lib/libc_nano.a(lib_a-impure.o)

.hil_stack      0x20001008     0x4000 load address 0x00000208
 *fill*         0x20001008     0x4000
"""


def test_model_statics_are_everything_in_ram_but_the_runtime_archive(tmp_path: Path) -> None:
    path = tmp_path / "model.map"
    path.write_text(MAP)
    # .data 8 + arena 0x800 + kernel state 0x10 + C library 0x60; not the runtime's 0x404,
    # not the fill, not .text, not the stack reservation.
    assert model_static_ram(path) == 8 + 0x800 + 0x10 + 0x60
    assert model_static_ram(tmp_path / "missing.map") is None


@pytest.mark.qemu
def test_model_ram_leaves_out_the_runtime_buffers_and_frames() -> None:
    model = REPO / "examples" / "models" / "digits-dscnn.tflite"
    r = hil.profile(model, "qemu-m4", runs=1, warmup=0, progress=False)
    assert r.arena_bytes < r.model_ram_bytes < r.ram_bytes
    # The runtime keeps 4 bytes of counts per layer it can time (512) and a request buffer
    # (1 KiB) at least, and its own frames on the stack.
    assert r.ram_bytes - r.model_ram_bytes > 2048 + 1024
    assert r.model_ram_bytes - r.arena_bytes < r.stack_bytes  # statics besides the arena: few
    d = r.to_dict()
    assert d["model_ram_bytes"] == r.model_ram_bytes and d["ram_bytes"] == r.ram_bytes
