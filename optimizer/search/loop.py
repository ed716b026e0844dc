"""The closed loop: ask the optimizer, evaluate trials in parallel, tell it, record everything.

Invariants that make a search resumable after a kill at any moment (SIGKILL included):

- Proposed trials and the optimizer state that proposed them are saved in one transaction;
  without that commit the same `ask` simply happens again (the state is the one before it).
- A trial's result is saved in one transaction, together with the optimizer state that has
  been told it. While the optimizer is busy proposing (asks run in a thread, so the display
  and the store keep up), results are saved at once and told when the ask returns.
- On resume the saved optimizer state is reconciled with the trials table, the only source
  of truth: a finished trial the state has not been told yet is told from its stored
  observation; unfinished trials (proposed, training, profiling) are evaluated again with the
  same hyperparameters, once each, and leftovers of their old workers are killed first.
- The budget counts trials: no more than `budget` are ever proposed, so an interrupted and
  resumed search ends with exactly as many trials as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hil
from hil.errors import HilError
from optimizer.algorithms import ALGORITHMS, make_optimizer
from optimizer.core import Observation, Optimizer, Proposal
from optimizer.search import results
from optimizer.search.config import SearchConfig
from optimizer.search.evaluate import INJECT_ENV, TrialOutcome, TrialTask, parse_injections
from optimizer.search.executor import (
    Executor,
    Finished,
    Progress,
    kill_leftovers,
    make_executor,
)
from optimizer.search.objectives import judge, metric_values
from optimizer.search.progress import Display, SearchStatus, WorkerRow, format_value, make_display
from optimizer.search.store import RunStore, Trial, trial_dir

#: A trial interrupted this many times (its evaluation started and never finished) is failed
#: instead of being tried again: it may be what takes the machine down.
MAX_ATTEMPTS = 3


class SearchAborted(HilError):
    """The search stopped because the environment is broken (every trial would fail)."""


@dataclass
class Summary:
    run_dir: str
    budget: int
    finished: int
    failed: int
    feasible: int
    hypervolume: float
    completed: bool


def start_search(
    config_path: str | Path,
    run_dir: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    ray_address: str | None = None,
    display: str = "auto",
) -> Summary:
    """`hil search CONFIG --out RUN`: create the run and search until the budget is spent."""
    parse_injections(_inject_env())
    cfg = SearchConfig.from_toml(config_path, overrides)
    meta = run_meta(cfg, Path(config_path).read_text(encoding="utf-8"))
    optimizer = make_optimizer(cfg.algorithm, cfg.problem_spec(), seed=cfg.seed,
                               **cfg.optimizer_settings())
    executor = make_executor(cfg.workers, ray_address)  # before the run exists: --ray may fail
    try:
        store = RunStore.create(run_dir, meta)
    except BaseException:
        executor.close()
        raise
    try:
        with contextlib.suppress(OSError):
            shutil.copyfile(config_path, store.run_dir / "config.toml")
        store.save_optimizer_state(optimizer.state_dict())
        return Search(store, cfg, optimizer, executor, cfg.budget, display).run()
    finally:
        store.close()


def run_meta(cfg: SearchConfig, config_text: str = "") -> dict[str, Any]:
    """The run store's meta entries for a new search (docs/search.md, "Run store")."""
    resolved = cfg.to_dict()
    return {
        "config_doc": cfg.doc,
        "config": resolved,
        "config_text": config_text,
        "budget": cfg.budget,
        "objectives": resolved["objectives"],
        "constraints": resolved["constraints"],
        "space": resolved["space"],
        "boards": list(cfg.boards),
        "algorithm": cfg.algorithm,
        "seed": cfg.seed,
        "hil_version": hil.__version__,
    }


def resume_search(
    run: str | Path | RunStore,
    *,
    budget: int | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    display: str = "auto",
) -> Summary:
    """`hil search --resume RUN`: continue a stopped or killed search where it was. `run` is
    the run directory, or a store the caller has already opened (and locked) for it."""
    parse_injections(_inject_env())
    store = run if isinstance(run, RunStore) else RunStore.resume(run)
    run_dir = store.run_dir
    try:
        overrides = {"workers": workers}
        cfg = SearchConfig.from_mapping(store.meta("config_doc"),
                                        source=store.config.get("source", str(run_dir)),
                                        overrides=overrides)
        total = len(store.trials())
        if budget is not None:
            if budget < total:
                raise HilError(
                    f"--budget {budget} is below the {total} trials this run already has; "
                    f"give at least {total}"
                )
            store.set_budget(budget)
        state = store.optimizer_state()
        if state is None:
            optimizer = make_optimizer(cfg.algorithm, cfg.problem_spec(), seed=cfg.seed,
                                       **cfg.optimizer_settings())
        else:
            optimizer = ALGORITHMS[state["algorithm"]].from_state(state)
        executor = make_executor(cfg.workers, ray_address)
        search = Search(store, cfg, optimizer, executor, store.budget, display)
        return search.run(resumed=True)
    finally:
        store.close()


def _inject_env() -> str | None:
    import os

    return os.environ.get(INJECT_ENV)


class Search:
    """One process working on one run directory (the store is locked by the caller)."""

    def __init__(
        self,
        store: RunStore,
        config: SearchConfig,
        optimizer: Optimizer,
        executor: Executor,
        budget: int,
        display: str = "auto",
    ) -> None:
        self.store = store
        self.cfg = config
        self.opt = optimizer
        self.executor = executor
        self.budget = budget
        self.status = SearchStatus(str(store.run_dir), config.algorithm, budget,
                                   store.objectives)
        self.display: Display = make_display(self.status, store.run_dir / "search.log", display)
        self._queue: deque[Trial] = deque()
        self._running: set[int] = set()
        self._x: dict[int, tuple[float, ...]] = {}
        self._ask_thread: threading.Thread | None = None
        self._ask_result: list[Proposal] | BaseException | None = None
        self._deferred: list[Observation] = []

    # -- main loop ------------------------------------------------------------------------------

    def run(self, resumed: bool = False) -> Summary:
        self.display.start()
        completed = False
        try:
            with _sigterm_as_interrupt():
                if resumed:
                    self._recover()
                else:
                    self.store.log("started", "search started")
                self._refresh_status()
                self.display.line(
                    f"{'resumed' if resumed else 'started'} {self.cfg.algorithm} search in "
                    f"{self.store.run_dir}: budget {self.budget}, {self.executor.capacity} "
                    f"worker(s) ({self.executor.name}), boards {', '.join(self.cfg.boards)}"
                )
                self._loop()
                completed = True
        except KeyboardInterrupt:
            self.executor.cancel()
            self.store.log("stopped", "interrupted; unfinished trials run again on resume")
            self.display.line(
                f"stopped; continue with `hil search --resume {self.store.run_dir}`"
            )
            raise
        except BaseException:
            self.executor.cancel()
            raise
        finally:
            self.executor.close()
            self.display.stop()
        trials = self.store.trials()
        self.store.log("finished", f"budget of {self.budget} trials spent")
        return Summary(
            str(self.store.run_dir), self.budget,
            sum(t.finished for t in trials), sum(t.status == "failed" for t in trials),
            len(results.feasible_trials(trials)), results.hypervolume(trials), completed,
        )  # fmt: skip

    def _loop(self) -> None:
        while True:
            self._start_queued()
            total = len(self._x)
            idle = len(self._running) < self.executor.capacity
            if self._ask_thread is None and not self._queue and idle and total < self.budget:
                self._ask(min(self.cfg.batch_size, self.budget - total))
            if self._ask_thread is not None and not self._ask_thread.is_alive():
                self._asked()
                continue
            if (not self._running and not self._queue and self._ask_thread is None
                    and total >= self.budget):
                return
            for event in self.executor.poll(0.5):
                if isinstance(event, Progress):
                    self._progress(event)
                elif isinstance(event, Finished):
                    self._finished(event.trial_id, event.outcome)
            self.display.refresh()

    # -- asking ---------------------------------------------------------------------------------

    def _ask(self, q: int) -> None:
        def work() -> None:
            try:
                self._ask_result = self.opt.ask(q)
            except BaseException as exc:
                self._ask_result = exc

        self.status.asking = True
        self._ask_result = None
        self._ask_thread = threading.Thread(target=work, name="ask", daemon=True)
        self._ask_thread.start()

    def _asked(self) -> None:
        result = self._ask_result
        self._ask_thread = None
        self.status.asking = False
        if isinstance(result, BaseException):
            raise result
        assert result is not None
        points = [(p.x, self.cfg.decode(p.x)) for p in result]
        ids = self.store.add_trials(points, self.opt.state_dict())
        for trial_id in ids:
            trial = self.store.trial(trial_id)
            self._x[trial_id] = tuple(trial.x)
            self._queue.append(trial)
        if self._deferred:
            self.opt.tell(self._deferred)
            self._deferred = []
            self.store.save_optimizer_state(self.opt.state_dict())

    # -- running --------------------------------------------------------------------------------

    def _start_queued(self) -> None:
        while self._queue and len(self._running) < self.executor.capacity:
            trial = self._queue.popleft()
            task = TrialTask(
                trial_id=trial.id,
                attempt=trial.attempts + 1,
                params=trial.params,
                dataset=self.cfg.dataset,
                seed=self.cfg.seed,
                boards=self.cfg.boards,
                boards_dir=self.cfg.boards_dir,
                work_dir=str(trial_dir(self.store.run_dir, trial.id).resolve()),
                train_timeout_s=self.cfg.train_timeout_s,
                train_threads=self.cfg.train_threads,
                profile_runs=self.cfg.profile_runs,
            )
            info = self.executor.submit(task)
            self.store.mark_started(trial.id, info.label, info.pid, info.start)
            self._running.add(trial.id)
            self.status.workers[trial.id] = WorkerRow(
                trial.id, info.label, self._short_params(trial.params), "training",
                "starting", time.monotonic(),
            )
            again = f" (attempt {trial.attempts + 1})" if trial.attempts else ""
            self.display.line(f"trial {trial.id} started{again}: "
                              f"{self._short_params(trial.params)}")

    def _progress(self, event: Progress) -> None:
        if event.trial_id not in self._running:
            return
        self.store.update_stage(event.trial_id, event.status, event.stage)
        row = self.status.workers.get(event.trial_id)
        if row is not None:
            row.status, row.stage = event.status, event.stage
        self.display.stage(event.trial_id, event.status, event.stage)

    def _finished(self, trial_id: int, outcome: TrialOutcome) -> None:
        if trial_id not in self._running:
            return
        self._running.discard(trial_id)
        self.status.workers.pop(trial_id, None)
        if outcome.fatal:
            self.executor.cancel()
            raise SearchAborted(
                f"trial {trial_id} cannot be evaluated on this machine: {outcome.reason}. "
                f"Fix that, then `hil search --resume {self.store.run_dir}` (the trial is "
                "evaluated again)"
            )
        self._record(trial_id, outcome)

    def _record(self, trial_id: int, outcome: TrialOutcome) -> None:
        """Judge an outcome, tell the optimizer (now or after the running ask), store it."""
        x = self._x[trial_id]
        values = metric_values(outcome.record, outcome.reports, outcome.needs)
        worst_o, worst_c = self._worst()
        too_large = outcome.failure_kind == "too-large" and outcome.record is not None
        verdict = judge(values, self.cfg.objectives, self.cfg.constraints,
                        complete=outcome.ok, worst_objectives=worst_o,
                        worst_constraints=worst_c) if (outcome.ok or too_large) else None
        reason = outcome.reason
        kind = outcome.failure_kind
        if verdict is not None and verdict.told_objectives is not None:
            obs = Observation.success(x, verdict.told_objectives, verdict.told_constraints)
        else:
            if outcome.ok:  # measured, but a value is missing or not finite
                kind = "error"
                reason = f"unusable measurement: {', '.join(verdict.imputed) if verdict else ''}"
            obs = Observation.failure(x, reason or "evaluation failed")
        status = "done" if outcome.ok and kind is None else "failed"
        feasible = bool(status == "done" and verdict is not None and verdict.feasible)
        observation = {**obs.to_dict(), "imputed": verdict.imputed if verdict else []}
        base = trial_dir(self.store.run_dir, trial_id).relative_to(self.store.run_dir)
        artifacts = {k: str(base / v) for k, v in outcome.artifacts.items()}
        state = None
        if self._ask_thread is None:
            self.opt.tell(obs)
            state = self.opt.state_dict()
        else:
            self._deferred.append(obs)
        self.store.finish_trial(
            trial_id, status=status, observation=observation, feasible=feasible,
            failure_kind=kind, reason=reason, metrics=values,
            objectives=verdict.objectives if verdict else None,
            constraints=verdict.constraints if verdict else None,
            record=outcome.record, reports=outcome.reports, artifacts=artifacts,
            timings=outcome.timings, optimizer_state=state,
        )  # fmt: skip
        if status == "failed":
            self.store.log("failed", f"{kind}: {reason}", trial_id)
        self._refresh_status()
        self.display.line(self._finish_line(trial_id, status, kind, reason, verdict))

    def _worst(self) -> tuple[list[float] | None, list[float] | None]:
        """Worst told objective and constraint values so far (for imputation)."""
        ok = [o for o in self.opt.observations if not o.failed]
        if not ok:
            return None, None
        objs = [max(v) for v in zip(*(o.objectives for o in ok), strict=True)]  # type: ignore[misc]
        cons = [max(v) for v in zip(*(o.constraints for o in ok), strict=True)] or None
        return objs, cons

    # -- resume ---------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Reconcile the optimizer with the trials table and queue the unfinished trials."""
        trials = self.store.trials()
        self.store.log("resumed", f"resumed by a new process; {len(trials)} trials so far")
        for t in trials:
            self._x[t.id] = tuple(t.x)
            if not t.finished and kill_leftovers(t.worker_pid, t.worker_start):
                self.display.line(f"killed leftover processes of trial {t.id}")
        told = Counter(o.x for o in self.opt.observations)
        missing: list[Observation] = []
        for t in trials:
            if not t.finished:
                continue
            x = tuple(t.x)
            if told[x] > 0:
                told[x] -= 1
            else:
                missing.append(Observation.from_dict(t.observation or {"x": t.x,
                                                                       "objectives": None}))
        if missing:
            self.opt.tell(missing)
        unfinished = [tuple(t.x) for t in trials if not t.finished]
        pending = Counter(unfinished)
        self.opt.pending = [x for x in self.opt.pending if _take(pending, x)]
        self.opt.pending.extend(x for x, n in pending.items() for _ in range(n))
        self.store.save_optimizer_state(self.opt.state_dict())
        for trial in self.store.requeue_in_flight():
            if trial.attempts >= MAX_ATTEMPTS:
                reason = (f"its evaluation was interrupted {trial.attempts} times (the search "
                          "process was killed while it ran); not trying again")
                self._record(trial.id, TrialOutcome(False, "interrupted", reason))
            else:
                self._queue.append(trial)
        if self._queue:
            ids = ", ".join(str(t.id) for t in self._queue)
            self.display.line(f"evaluating again the unfinished trial(s) {ids}")

    # -- display --------------------------------------------------------------------------------

    def _refresh_status(self) -> None:
        trials = self.store.trials()
        s = self.status
        s.budget = self.budget
        s.finished = sum(t.finished for t in trials)
        s.feasible = len(results.feasible_trials(trials))
        s.failures = Counter(t.failure_kind or "?" for t in trials if t.status == "failed")
        s.hypervolume = results.hypervolume(trials)
        s.best = results.best_per_objective(trials, self.store.objectives)

    def _short_params(self, params: dict[str, Any]) -> str:
        parts = []
        for name in self.cfg.space.names:
            value = params.get(name)
            if not self.cfg.space.is_active(name, params):
                continue
            text = f"{value:.3g}" if isinstance(value, float) else str(value)
            parts.append(f"{name.split('.', 1)[1]}={text}")
        return " ".join(parts)

    def _finish_line(self, trial_id: int, status: str, kind: str | None, reason: str | None,
                     verdict: Any) -> str:
        s = self.status
        head = f"trial {trial_id} {status} [{s.finished}/{self.budget}, hv {s.hypervolume:.4f}]"
        if status == "failed":
            first = (reason or "").splitlines()[0] if reason else ""
            return f"{head}: {kind}: {first[:300]}"
        values = []
        for o in self.cfg.objectives:
            v = (verdict.objectives or {}).get(o.name)
            if v is not None:
                values.append(f"{o.name} {format_value(v, o.unit, o.metric)}")
        tag = "feasible" if verdict.feasible else "infeasible"
        return f"{head}: {tag}; " + ", ".join(values)


def _take(counter: Counter[Any], key: Any) -> bool:
    if counter[key] > 0:
        counter[key] -= 1
        return True
    return False


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the search like Ctrl-C (workers cancelled, store consistent)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = [
    "MAX_ATTEMPTS",
    "Search",
    "SearchAborted",
    "Summary",
    "resume_search",
    "run_meta",
    "start_search",
]
