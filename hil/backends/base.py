"""The backend protocol: what turns an imported graph into a buildable project for one board.

A backend (`own`, `cmsis-nn`, `tflm`) declares the ops it supports, names the version of the
library it uses (the user's checkout) and the flags that decide its code, and generates a
project (C or C++ from jinja2 templates in firmware/templates/) plus the static libraries it
needs (`hil.build.Library`, built once per board and key). Everything downstream of the build
(device protocol, measurement, reference check) is the same for every backend. The contract is
written out in docs/architecture.md ("Backends").
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from hil.errors import HilError

if TYPE_CHECKING:
    from hil.boards import Board
    from hil.codegen import GeneratedProject
    from hil.graph import Graph


class BackendUnavailable(HilError):
    """A backend cannot be used here: its checkout is missing, of an unsupported version, or
    the board's core is one it does not build for. The message says which and what to do."""


@runtime_checkable
class Backend(Protocol):
    """One way to run a model on the device (see the module docstring).

    `name` is what `--backend` takes; `title` names it in tables; `env_var` is the variable
    that points at the user's checkout (None: the backend needs none).
    """

    name: str
    title: str
    env_var: str | None

    def unavailable(self) -> str | None:
        """Why the backend cannot be used on this machine (missing or unsupported checkout),
        with what to do; None when it can. Cheap: no build."""
        ...

    def version(self) -> str:
        """Version of the library the backend uses: `git describe --always --dirty` of the
        checkout, or a hash of its tree when it is not a git checkout."""
        ...

    def flags(self, board: Board) -> tuple[str, ...]:
        """Defines and options that decide the backend's code on `board` (in the report and
        in the library's cache key)."""
        ...

    def numerics(self, board: Board) -> dict[str, str]:
        """The settings that decide rounding (e.g. {"rounding": "double"}), for the report."""
        ...

    def supported_ops(self) -> list[str]:
        """TFLite op names the backend can run (with or without a per-op fallback)."""
        ...

    def generate(
        self,
        graph: Graph,
        out_dir: Path,
        *,
        board: Board,
        model_name: str,
        preserve_all: bool = False,
    ) -> GeneratedProject:
        """Write the project for `graph` on `board` into `out_dir` and describe it.

        `preserve_all` (hil profile --layers-diff): keep every intermediate tensor and expose
        each operator's output after the graph outputs (`GeneratedProject.debug_tensors`).
        Raises BackendUnavailable, UnsupportedOpError or ModelError.
        """
        ...


def require_available(backend: Backend) -> None:
    """Raise BackendUnavailable with the backend's own reason when it cannot be used."""
    reason = backend.unavailable()
    if reason:
        raise BackendUnavailable(f"backend {backend.name!r} is unavailable: {reason}")


def checkout_root(env_var: str, what: str, marker: str) -> tuple[Path | None, str | None]:
    """The checkout `env_var` points at, or None and why not (unset, missing, not a checkout
    of `what`: the relative path `marker` is absent)."""
    value = os.environ.get(env_var, "").strip()
    if not value:
        return None, (
            f"{env_var} is not set; point it at your {what} checkout "
            f"(e.g. `export {env_var}=$HOME/src/{what}`)"
        )
    root = Path(value).expanduser()
    if not root.is_dir():
        return None, f"{env_var}={value} is not a directory; point it at your {what} checkout"
    if not (root / marker).exists():
        return None, (
            f"{env_var}={value} does not look like a {what} checkout ({marker} is missing); "
            f"point it at the top of the checkout"
        )
    return root.resolve(), None


_VERSION_CACHE: dict[tuple[str, int], str] = {}


def checkout_version(root: Path, parts: Iterable[str] = (".",)) -> str:
    """`git describe --always --dirty` of a git checkout, else "tree-" + a hash of the files
    under `parts` (relative paths and contents), so an edited checkout gets a new version."""
    if (root / ".git").exists() and shutil.which("git"):
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "describe", "--always", "--dirty"],
                capture_output=True, text=True, timeout=30, check=False, env=env,
            )  # fmt: skip
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    files = sorted(
        f
        for part in parts
        for f in (root / part).rglob("*")
        if f.is_file() and ".git" not in f.relative_to(root).parts
    )
    # Contents are hashed again only when a file's size or mtime changed (cheap on repeat).
    stamp = hashlib.sha256()
    for f in files:
        st = f.stat()
        stamp.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    key = (str(root), int.from_bytes(stamp.digest()[:8], "little"))
    if key not in _VERSION_CACHE:
        h = hashlib.sha256()
        for f in files:
            h.update(f"\0{f.relative_to(root)}\0".encode())
            h.update(f.read_bytes())
        _VERSION_CACHE[key] = f"tree-{h.hexdigest()[:12]}"
    return _VERSION_CACHE[key]
