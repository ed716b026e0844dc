"""Shared fixtures: the model zoo (tests/zoo.py), converted once and cached on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.convert import session_cache_dir
from zoo import zoo_model_path


@pytest.fixture(scope="session")
def zoo_model(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """`zoo_model(name)` -> path of that zoo model's .tflite, converted on first use.

    Kept in pytest's cache dir so later sessions skip the conversion (keys include the zoo and
    TensorFlow versions); a session without the cache provider converts into a temp dir.
    """
    cache_dir = session_cache_dir(request, tmp_path_factory, "tinyml-hil-zoo")
    return lambda name: zoo_model_path(name, cache_dir)
