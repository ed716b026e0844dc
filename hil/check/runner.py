"""Run the cases of a checks file in parallel, each through `hil.profile` with its own QEMU.

Cases run on a thread pool (up to the number of cores by default): each `hil.profile` call
spends its time in the compiler, QEMU and the reference interpreter, all child processes, so
threads are enough and every QEMU is a separate process. Two rules keep it sound:
- The first case of a model runs before any other case of the same model starts: `hil.profile`
  writes the model's generated project into a folder keyed by the model's hash, and two runs
  writing it at once could build from a half-written file. Cases are ordered round-robin over
  models so the other models' first cases run meanwhile.
- A case whose target did not answer (TargetTimeout) is run once more; if the second run
  passes, the case is reported as flaky, never as a plain pass.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hil.check.config import CheckCase
from hil.check.result import Attempt, CaseResult, Problem, evaluate, figures_of
from hil.errors import HilError, ModelTooLargeError, TargetTimeout

ProfileFn = Callable[..., Any]
OnDone = Callable[[CaseResult, int, int], None]

#: How often a case is run at most when its target times out.
MAX_ATTEMPTS = 2


def default_jobs() -> int:
    """Parallel cases by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_checks(
    cases: Sequence[CheckCase],
    *,
    jobs: int | None = None,
    profile: ProfileFn | None = None,
    on_done: OnDone | None = None,
) -> list[CaseResult]:
    """Run every case; results come back in the order of `cases`.

    `profile` defaults to `hil.profile` (looked up at call time); `on_done(result, n, total)`
    is called as each case finishes, from the worker thread.
    """
    if not cases:
        return []
    fn = profile or importlib.import_module("hil.profile").profile
    workers = max(1, min(jobs or default_jobs(), len(cases)))
    first_of: dict[str, int] = {}
    model_key = [_model_key(c) for c in cases]
    for i, key in enumerate(model_key):
        first_of.setdefault(key, i)
    generated = {key: threading.Event() for key in first_of}
    done_count = 0
    lock = threading.Lock()
    results: list[CaseResult | None] = [None] * len(cases)

    def work(i: int) -> None:
        nonlocal done_count
        key = model_key[i]
        is_first = first_of[key] == i
        if not is_first:
            generated[key].wait()
        try:
            results[i] = run_case(cases[i], fn)
        finally:
            if is_first:
                generated[key].set()
        if on_done is not None:
            with lock:
                done_count += 1
                n = done_count
            on_done(results[i], n, len(cases))  # type: ignore[arg-type]

    order = _round_robin(model_key)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hil-check")
    try:
        futures = [pool.submit(work, i) for i in order]
        for future in futures:
            future.result()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [r for r in results if r is not None]


def run_case(case: CheckCase, profile: ProfileFn) -> CaseResult:
    """Profile one case (retrying once on a target timeout) and judge it."""
    result = CaseResult(case)
    start = time.monotonic()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        t0 = time.monotonic()
        try:
            report = profile(case.model, case.board, **_profile_kwargs(case, profile))
        except TargetTimeout as exc:
            if attempt < MAX_ATTEMPTS:
                result.retried.append(Attempt(type(exc).__name__, str(exc), time.monotonic() - t0))
                continue
            result.error_type, result.error = type(exc).__name__, str(exc)
        except ModelTooLargeError as exc:
            result.problems.append(_too_large(exc))
        except HilError as exc:
            result.error_type, result.error = type(exc).__name__, str(exc)
        except Exception as exc:  # a bug in the bench: report it on this case, run the others
            result.error_type = type(exc).__name__
            result.error = f"internal error (please report it): {exc!r}"
        else:
            result.figures = figures_of(report)
            result.problems = evaluate(case, result.figures)
        break
    result.seconds = time.monotonic() - start
    return result


def _profile_kwargs(case: CheckCase, profile: ProfileFn) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "runs": case.runs,
        "warmup": case.warmup,
        "seed": case.seed,
        "progress": False,
    }
    if case.backend is not None:
        kwargs["backend"] = case.backend
    try:
        params = inspect.signature(profile).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def _too_large(exc: ModelTooLargeError) -> Problem:
    return Problem("too_large", "too_large", f"does not fit the board: {exc}")


def _model_key(case: CheckCase) -> str:
    """Cases of models with the same bytes share a generated project: key them together."""
    try:
        return hashlib.sha256(case.model.read_bytes()).hexdigest()
    except OSError:
        return str(case.model)


def _round_robin(keys: Sequence[str]) -> list[int]:
    """Indices ordered so each model's first case comes before any model's second case."""
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    queues = list(by_key.values())
    order: list[int] = []
    depth = 0
    while len(order) < len(keys):
        order += [q[depth] for q in queues if depth < len(q)]
        depth += 1
    return order
