"""The bench's side of a reference run: one child process per run, whatever happens in it.

A reference interpreter can abort its process (SIGABRT, exit 134) on a corrupt model or on
inputs its kernels do not expect, or hang. So no interpreter ever runs in the bench's process:
`run_reference` starts `python -P -m hil.reference.worker` (never multiprocessing, whose spawn
re-imports the caller's `__main__`), sends the model and inputs over a pipe, and turns a
refusal, a crash, a signal or a timeout into an explanation instead of a dead bench.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hil.errors import ReferenceUnavailable
from hil.reference.interpreters import INTERPRETERS

#: A reference run (interpreter start-up included) that takes longer than this is stopped.
#: The models that fit a microcontroller run in well under a second on the host.
DEFAULT_TIMEOUT_S = 120.0
#: TFLM's tensor arena: generous, as the host has memory to spare and a too-small arena is a
#: refusal that says nothing about the model.
_MIN_TFLM_ARENA = 16 << 20

_WORKER = ("-P", "-m", "hil.reference.worker")


@dataclass(frozen=True)
class ReferenceRun:
    """What one reference made of the model: its outputs, or why it has none."""

    reference: str
    version: str
    outputs: list[np.ndarray] | None
    problem: str = ""

    @property
    def ran(self) -> bool:
        return self.outputs is not None


def title(name: str) -> str:
    """How reports and messages name a reference, e.g. 'LiteRT (BUILTIN_REF kernels)'."""
    return INTERPRETERS[name].title


def run_reference(
    name: str,
    model: bytes,
    inputs: list[np.ndarray],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> ReferenceRun:
    """Run reference `name` on `model` and `inputs` in a child process; never raises for what
    the interpreter does (refusal, crash, hang): that is in `ReferenceRun.problem`."""
    if name not in INTERPRETERS:
        raise ValueError(f"unknown reference {name!r}; known: {sorted(INTERPRETERS)}")
    short = INTERPRETERS[name].title.split(" (")[0]
    request = {
        "reference": name,
        "model": bytes(model),
        "inputs": [np.ascontiguousarray(x) for x in inputs],
        "arena_bytes": max(16 * len(model), _MIN_TFLM_ARENA),
    }
    try:
        done = subprocess.run(
            [sys.executable, *_WORKER],
            input=pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL),
            capture_output=True,
            timeout=timeout,
            env=_child_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ReferenceRun(
            name, "", None, f"{short} did not finish within {timeout:g} s and was stopped"
        )
    except OSError as exc:
        return ReferenceRun(name, "", None, f"cannot start the {short} worker: {exc}")
    if done.returncode == 0:
        try:
            answer = pickle.loads(done.stdout)
        except Exception as exc:  # a garbled answer is the child's fault, not the bench's
            return ReferenceRun(name, "", None, f"{short} answered garbage ({exc})")
        if "outputs" in answer:
            return ReferenceRun(name, answer["version"], list(answer["outputs"]))
        return ReferenceRun(name, answer["version"], None, answer["refused"])
    why = _last_words(done.stderr)
    if done.returncode < 0:
        sig = _signal_name(-done.returncode)
        what = f"{short} crashed on this model and these inputs (killed by {sig})"
    else:
        what = f"{short} failed on this model (worker exit code {done.returncode})"
    return ReferenceRun(name, "", None, f"{what}{': ' + why if why else ''}")


def reference_outputs(
    model: str | Path | bytes,
    inputs: list[np.ndarray],
    reference: str = "litert",
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> list[np.ndarray]:
    """Outputs of reference `reference` ("litert" or "tflm") for `inputs`, or a
    ReferenceUnavailable (a ModelError) saying why that reference cannot give them."""
    if isinstance(model, bytes | bytearray):
        data = bytes(model)
    else:
        path = Path(model)
        if not path.is_file():
            raise ReferenceUnavailable(f"model file {path} does not exist: check the path")
        data = path.read_bytes()
    run = run_reference(reference, data, list(inputs), timeout=timeout)
    if run.outputs is None:
        raise ReferenceUnavailable(
            f"the reference interpreter cannot check this model: {run.problem}"
        )
    return run.outputs


def reference_tensors(
    model: bytes,
    inputs: list[np.ndarray],
    tensors: list[int],
    reference: str = "litert",
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[int, np.ndarray]:
    """Tensors `tensors` (model file indices, intermediate ones included) after one run of
    `reference` on `inputs`, for --layers-diff; ReferenceUnavailable says why not."""
    if reference not in INTERPRETERS:
        raise ValueError(f"unknown reference {reference!r}; known: {sorted(INTERPRETERS)}")
    request = {
        "reference": reference,
        "model": bytes(model),
        "inputs": [np.ascontiguousarray(x) for x in inputs],
        "arena_bytes": max(16 * len(model), _MIN_TFLM_ARENA),
        "tensors": [int(t) for t in tensors],
    }
    short = INTERPRETERS[reference].title.split(" (")[0]
    try:
        done = subprocess.run(
            [sys.executable, *_WORKER],
            input=pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL),
            capture_output=True, timeout=timeout, env=_child_env(), check=False,
        )  # fmt: skip
        answer = pickle.loads(done.stdout) if done.returncode == 0 else {}
    except subprocess.TimeoutExpired:
        raise ReferenceUnavailable(f"{short} did not finish within {timeout:g} s") from None
    except Exception as exc:  # cannot start, or a garbled answer: the child's fault
        raise ReferenceUnavailable(f"{short} gave no intermediate tensors ({exc})") from exc
    if "tensors" in answer:
        return dict(answer["tensors"])
    why = answer.get("refused") or _last_words(done.stderr) or f"exit code {done.returncode}"
    raise ReferenceUnavailable(f"{short} gave no intermediate tensors: {why}")


def _child_env() -> dict[str, str]:
    """The caller's environment, with this `hil` importable (-P drops the current directory)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name}, exit status {128 + number}"
    except ValueError:
        return f"signal {number}"


def _last_words(stderr: bytes, limit: int = 300) -> str:
    """The child's last meaningful stderr line (e.g. a failed check before an abort)."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return last if len(last) <= limit else last[: limit - 3] + "..."
