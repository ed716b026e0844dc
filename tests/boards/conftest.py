"""Fixtures for the physical boards' tests: both images built once with the real toolchain.

The model is a hand-written project (one layer, 256 bytes of weights), so these tests need
the Arm compiler and CMake but neither TensorFlow nor a board.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.boards import Board, load_board

MODEL_C = """
#include <stdint.h>
#include "hil_model.h"
static int8_t arena[64] __attribute__((aligned(16)));
static const int8_t weights[256] = {1, 2, 3, 4};
static void layer0(void)
{
    for (int i = 0; i < 16; i++) {
        arena[16 + i] = (int8_t)(arena[i] * weights[i]);
    }
}
const hil_io_t hil_model_inputs[] = {{arena, 16, HIL_DTYPE_INT8}};
const uint32_t hil_model_num_inputs = 1;
const hil_io_t hil_model_outputs[] = {{arena + 16, 16, HIL_DTYPE_INT8}};
const uint32_t hil_model_num_outputs = 1;
const hil_layer_fn hil_model_layers[] = {layer0};
const uint32_t hil_model_num_layers = 1;
const uint32_t hil_model_arena_bytes = sizeof arena;
const uint32_t hil_model_id = 0x1234ABCDu;
"""


@dataclass(frozen=True)
class BuiltImage:
    board: Board
    elf: Path
    out: Path  # hil build's output folder for this board


def _toolchain() -> None:
    missing = [t for t in ("arm-none-eabi-gcc", "cmake") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run scripts/setup.sh")


@pytest.fixture(scope="session")
def model_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("board-model")
    (project / "model.c").write_text(MODEL_C)
    return project


@pytest.fixture(scope="session")
def built(model_project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltImage]:
    """The pico and nano33ble images of the hand-written model, with their hil build files."""
    from hil.build import build
    from hil.firmware_image import write_images

    _toolchain()
    images = {}
    for name in ("pico", "nano33ble"):
        board = load_board(name)
        result = build(model_project, board, model_name="board-test")
        out = tmp_path_factory.mktemp(f"images-{name}")
        uf2 = board.uf2["family_id"] if board.uf2 is not None else None
        write_images(result.elf, out, board.image_formats, uf2_family=uf2)
        images[name] = BuiltImage(board, result.elf, out)
    return images
