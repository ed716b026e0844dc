"""Shared fixtures of the platform tests: a private build cache and the fixture images."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from platform_support import BOARD_NAMES, FIXTURES

from hil.boards import Board, load_board
from hil.build import BuildResult, build


@pytest.fixture(scope="session")
def platform_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build cache for the whole session, so the libraries are built once per board."""
    return tmp_path_factory.mktemp("hil-cache")


@pytest.fixture
def cache_env(platform_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HIL_CACHE_DIR", str(platform_cache))
    return platform_cache


@pytest.fixture(scope="session")
def echo_images(platform_cache: Path) -> dict[str, BuildResult]:
    """fixtures/echo_model built for every QEMU board."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HIL_CACHE_DIR", str(platform_cache))
        return {name: build(FIXTURES / "echo_model", load_board(name)) for name in BOARD_NAMES}


@pytest.fixture(params=BOARD_NAMES)
def board(request: pytest.FixtureRequest) -> Board:
    return load_board(request.param)


@pytest.fixture
def no_qemu_left(platform_cache: Path) -> Iterator[None]:
    """Fail the test if a QEMU started on one of this session's images outlives it."""
    yield
    found = subprocess.run(
        ["pgrep", "-f", f"qemu-system-arm.*{platform_cache}"], capture_output=True, text=True
    )
    assert found.stdout.strip() == "", f"QEMU processes left behind: {found.stdout}"
