"""A backend library build that runs out of time stops every compiler under it and is resumed,
not restarted, by the next build (TFLM's first build takes many minutes on a loaded machine;
throwing the finished objects away made it never finish). Needs CMake, Ninja and
arm-none-eabi-gcc; no checkout, no QEMU."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from hil import build as build_mod
from hil.backends import get_backend
from hil.boards import load_board
from hil.build import Library, build, cache_dir
from hil.errors import BuildError
from hil.graph import Graph, Operator, Quantization, Tensor

CMAKE = """
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/slow.c
  COMMAND sh -c "test -f ${STOP} || sleep ${SLEEP}; echo 'int slow(void) { return 1; }' > ${CMAKE_BINARY_DIR}/slow.c"
  VERBATIM)
# An object library of its own: CMake makes a target's objects wait for its custom commands.
add_library(fast_objects OBJECT ${FAST})
target_compile_options(fast_objects PRIVATE ${HIL_CPU_FLAGS})
add_library(${HIL_LIBRARY_NAME} STATIC $<TARGET_OBJECTS:fast_objects> ${CMAKE_BINARY_DIR}/slow.c)
target_compile_options(${HIL_LIBRARY_NAME} PRIVATE ${HIL_CPU_FLAGS})
"""  # noqa: E501


def _sleepers(tag: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", f"sleep {tag}"], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "pgrep" not in line]


@pytest.mark.skipif(
    not all(shutil.which(t) for t in ("cmake", "ninja", "arm-none-eabi-gcc", "pgrep")),
    reason="needs cmake, ninja, arm-none-eabi-gcc and pgrep",
)
def test_a_timed_out_library_build_is_stopped_whole_and_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = load_board("qemu-m4")
    q = Quantization((0.05,), (0,))
    graph = Graph("tiny", [Tensor(i, f"t{i}", (1, 8), "int8", q) for i in range(2)],
                  [Operator(0, "RELU", [0], [1])], [0], [1])  # fmt: skip
    project = get_backend("own").generate(graph, tmp_path / "project", board=board,
                                          model_name="tiny")  # fmt: skip
    # Builds the bench's own libraries first, so the timeout below only meets ours.
    build(project.out_dir, board, model_name="tiny")

    (tmp_path / "fast.c").write_text("int fast(void) { return 2; }\n")
    (tmp_path / "slow.cmake").write_text(CMAKE)
    tag = f"{60 + uuid.uuid4().int % 1000 / 1000:.3f}"  # a sleep no other process runs
    stop = tmp_path / "STOP"
    lib = Library(
        name=f"slowlib_{uuid.uuid4().hex[:8]}",
        cmake_file=tmp_path / "slow.cmake",
        key=str(tmp_path),
        cmake_args=(f"-DFAST={tmp_path / 'fast.c'}", f"-DSTOP={stop}", f"-DSLEEP={tag}"),
        label="the slow library",
    )
    trees = cache_dir() / "build" / board.name
    model_trees: list[Path] = []
    try:
        monkeypatch.setattr(build_mod, "_LIBRARY_TIMEOUT_S", 20)
        start = time.monotonic()
        with pytest.raises(BuildError, match="run again to resume it"):
            build(project.out_dir, board, model_name="tiny", libraries=[lib])
        assert time.monotonic() - start < 90
        assert _sleepers(tag) == []  # the whole build stopped, not only CMake
        (tree,) = [p for p in trees.glob(f"{lib.name}-*") if p.is_dir()]
        objects = [p for p in tree.rglob("fast.c.o*") if p.is_file()]
        assert len(objects) == 1, sorted(tree.rglob("*"))
        fast = objects[0]
        stamp = fast.stat().st_mtime_ns

        stop.write_text("")
        built = build(project.out_dir, board, model_name="tiny", libraries=[lib])
        model_trees.append(built.elf.parent)
        assert built.elf.is_file()
        assert fast.stat().st_mtime_ns == stamp  # resumed: the finished object was kept
        assert (tree / f"lib{lib.name}.a").is_file()
    finally:
        for p in [*trees.glob(f"{lib.name}-*"), *model_trees]:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
