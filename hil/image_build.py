"""`hil build MODEL --board B --out DIR`: the firmware for a board, without running it, for users
who flash by other means. Writes the ELF and the board's [image] formats: a .bin everywhere, a
.uf2 for the Pico (drag it onto the RPI-RP2 drive), an Intel .hex for the Nano at its
application address (0x10000, above the Arduino bootloader)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hil.firmware_image import ImageFile, write_images


def build_images(
    model: str | Path, board: str, out_dir: str | Path, *, backend: str = "own"
) -> list[ImageFile]:
    """Import, generate and build `model` for `board`, then write its files into `out_dir`."""
    from hil.backends import get_backend, project_dir_name, require_available
    from hil.boards import load_board
    from hil.build import build, cache_errors, prepare_cache_dir
    from hil.importer import load_tflite
    from hil.profile import check_fit

    target_board = load_board(board)
    runner = get_backend(backend)
    require_available(runner)
    graph = load_tflite(model)
    digest = hashlib.sha256(Path(model).read_bytes()).hexdigest()
    name = project_dir_name(runner, digest, target_board)
    with cache_errors():
        project = runner.generate(graph, prepare_cache_dir() / "projects" / name,
                                  board=target_board, model_name=graph.name)  # fmt: skip
    check_fit(graph, project.arena_bytes, target_board)
    built = build(project.out_dir, target_board, model_name=graph.name,
                  libraries=project.libraries)  # fmt: skip
    family = int(target_board.uf2["family_id"]) if target_board.uf2 is not None else None
    stem = Path(model).stem or "model"
    return write_images(built.elf, out_dir, target_board.image_formats, name=stem,
                        uf2_family=family)  # fmt: skip
