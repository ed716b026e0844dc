"""Constants and helpers of the platform tests (fixtures are in conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
BOARD_NAMES = ("qemu-m4", "qemu-m0")
#: Model id of fixtures/echo_model.
ECHO_MODEL_ID = 0x600DF00D


def model_project(tmp_path: Path, fixture: str, **files: str) -> Path:
    """A copy of a fixture project, plus extra files (name -> text), to build in a test."""
    project = tmp_path / fixture
    shutil.copytree(FIXTURES / fixture, project)
    for name, text in files.items():
        (project / name).write_text(text)
    return project
