"""The run store: one SQLite database per run directory, the single source of truth of a search.

Everything a search knows lives in ``RUN/search.db`` (standard-library `sqlite3`, WAL journal,
``synchronous=FULL``): the configuration, every trial (hyperparameters, unit-cube point,
status, failure reason, candidate record, profile reports, artifacts, timings) and the
optimizer's saved state. Every state change is one transaction, so a process killed at any
moment (SIGKILL included) leaves a database that `hil search --resume` continues from.

Only one process writes: `RunStore.create` / `RunStore.resume` take an exclusive `fcntl` lock
on ``RUN/lock`` and hold it for the store's life (the kernel drops it when the process dies).
Readers (`open_run`, e.g. `hil report`) need no lock and may read while a search runs.

The schema and the read API are documented in docs/search.md ("Run store"); `SCHEMA_VERSION`
is bumped on incompatible changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import HilError

SCHEMA_VERSION = 1
DB_NAME = "search.db"
LOCK_NAME = "lock"
TRIALS_DIR = "trials"

#: Trial statuses, in the order a trial moves through them.
STATUSES = ("proposed", "training", "profiling", "done", "failed")
#: Statuses of a trial whose evaluation has not finished (re-evaluated on resume).
IN_FLIGHT = ("proposed", "training", "profiling")
FINISHED = ("done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                 -- JSON
);
CREATE TABLE IF NOT EXISTS trials (
    id           INTEGER PRIMARY KEY,   -- 1, 2, 3 ... in the order they were proposed
    status       TEXT NOT NULL CHECK (status IN
                     ('proposed', 'training', 'profiling', 'done', 'failed')),
    x            TEXT NOT NULL,         -- JSON list: the unit-cube point the optimizer asked for
    params       TEXT NOT NULL,         -- JSON object: complete hyperparameters (varied + fixed)
    stage        TEXT,                  -- latest progress, e.g. "train 3/12", "run on qemu-m4"
    attempts     INTEGER NOT NULL DEFAULT 0,  -- evaluations started (2+ after a resume)
    failure_kind TEXT,                  -- see docs/search.md, e.g. 'too-large', 'hang'
    reason       TEXT,                  -- why it failed / is infeasible, in words
    metrics      TEXT,                  -- JSON {metric: value}, natural units, measured only
    objectives   TEXT,                  -- JSON {objective name: value}, natural units
    constraints  TEXT,                  -- JSON {constraint name: measured value}
    feasible     INTEGER,               -- 1 / 0; NULL until finished
    observation  TEXT,                  -- JSON: what the optimizer was told (see docs)
    record       TEXT,                  -- JSON: the candidate factory's record
    artifacts    TEXT,                  -- JSON {name: path relative to the run directory}
    timings      TEXT,                  -- JSON {stage: seconds}
    worker       TEXT,                  -- where the last attempt ran
    worker_pid   INTEGER,               -- its process (local executor), for clean-up on resume
    worker_start TEXT,                  -- that process's start time (guards against pid reuse)
    proposed_at  REAL NOT NULL,         -- Unix time
    started_at   REAL,
    finished_at  REAL
);
CREATE TABLE IF NOT EXISTS reports (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    board    TEXT NOT NULL,
    report   TEXT NOT NULL,             -- JSON: hil.Report.to_dict()
    PRIMARY KEY (trial_id, board)
);
CREATE TABLE IF NOT EXISTS optimizer (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    state    TEXT NOT NULL,             -- JSON: Optimizer.state_dict()
    saved_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id       INTEGER PRIMARY KEY,
    at       REAL NOT NULL,
    kind     TEXT NOT NULL,             -- created, resumed, retry, failed, stopped, finished ...
    trial_id INTEGER,
    message  TEXT NOT NULL
);
"""

_JSON_COLUMNS = (
    "x", "params", "metrics", "objectives", "constraints", "observation", "record",
    "artifacts", "timings",
)  # fmt: skip


class StoreError(HilError):
    """The run directory or its database cannot be used (missing, corrupt, newer schema)."""


class RunLocked(StoreError):
    """Another process holds the run directory's lock."""


@dataclass
class Trial:
    """One row of `trials`, with its profile reports (board -> `Report.to_dict()`).

    JSON columns are decoded; `feasible` is None until the trial finished. `objectives` and
    `constraints` hold natural units (accuracy as a fraction, bytes, ms) under the names in the
    run's `objectives` / `constraints` meta entries.
    """

    id: int
    status: str
    x: list[float]
    params: dict[str, Any]
    stage: str | None = None
    attempts: int = 0
    failure_kind: str | None = None
    reason: str | None = None
    metrics: dict[str, float] | None = None
    objectives: dict[str, float] | None = None
    constraints: dict[str, float] | None = None
    feasible: bool | None = None
    observation: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    artifacts: dict[str, str] | None = None
    timings: dict[str, float] | None = None
    worker: str | None = None
    worker_pid: int | None = None
    worker_start: str | None = None
    proposed_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field."""
        return asdict(self)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, allow_nan=False)


def _row_to_trial(row: sqlite3.Row) -> Trial:
    data = dict(row)
    for key in _JSON_COLUMNS:
        if data.get(key) is not None:
            data[key] = json.loads(data[key])
    if data.get("feasible") is not None:
        data["feasible"] = bool(data["feasible"])
    return Trial(**data)


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    else:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


class RunStore:
    """A run directory's database. Readers use `open_run`; the search uses `create`/`resume`.

    Read API (stable, used by `hil report`): `meta`, `config`, `budget`, `objectives`,
    `constraints`, `trials`, `trial`, `reports`, `optimizer_state`, `events`, `counts`.
    """

    def __init__(self, run_dir: Path, conn: sqlite3.Connection, lock: Any = None) -> None:
        self.run_dir = run_dir
        self._conn = conn
        self._lock = lock

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def create(cls, run_dir: str | Path, meta: dict[str, Any]) -> RunStore:
        """A new run in `run_dir` (created; it must not hold a run already), locked."""
        run = Path(run_dir)
        check_new_run(run)
        try:
            run.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create run directory {run}: {exc.strerror or exc}") from exc
        lock = _acquire_lock(run)
        try:
            if (run / DB_NAME).exists():  # made by another process before we had the lock
                raise StoreError(f"{run} already holds a search; choose another --out directory")
            # Built under a temporary name and renamed: a reader never sees half a database.
            tmp = run / (DB_NAME + ".new")
            tmp.unlink(missing_ok=True)
            build = sqlite3.connect(tmp, isolation_level=None)
            try:
                with _transaction(build):
                    for statement in _statements(_SCHEMA):
                        build.execute(statement)
                    now = time.time()
                    entries = {"schema_version": SCHEMA_VERSION, "created_at": now, **meta}
                    build.executemany(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [(k, json.dumps(v, allow_nan=False)) for k, v in entries.items()],
                    )
                    build.execute(
                        "INSERT INTO events (at, kind, trial_id, message) VALUES (?, ?, NULL, ?)",
                        (now, "created", f"search created by pid {os.getpid()}"),
                    )
            finally:
                build.close()
            os.replace(tmp, run / DB_NAME)
            conn = _connect(run / DB_NAME, readonly=False)
        except BaseException:
            lock.close()
            raise
        return cls(run, conn, lock)

    @classmethod
    def resume(cls, run_dir: str | Path) -> RunStore:
        """An existing run, opened for writing and locked."""
        run = Path(run_dir)
        _check_run_dir(run)
        lock = _acquire_lock(run)
        try:
            conn = _connect(run / DB_NAME, readonly=False)
            store = cls(run, conn, lock)
            store._check_schema()
        except BaseException:
            lock.close()
            raise
        return store

    def close(self) -> None:
        """Close the database and release the lock."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_schema(self) -> None:
        try:
            version = self.meta("schema_version")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.run_dir / DB_NAME} is not a run database: {exc}") from exc
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"{self.run_dir} was written with run-store schema {version}, this version "
                f"reads {SCHEMA_VERSION}; use the matching tinyml-hil release"
            )

    # -- read API -----------------------------------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def all_meta(self) -> dict[str, Any]:
        rows = self._conn.execute("SELECT key, value FROM meta").fetchall()
        return {r["key"]: json.loads(r["value"]) for r in rows}

    @property
    def config(self) -> dict[str, Any]:
        """The resolved search configuration (`SearchConfig.to_dict()`)."""
        return self.meta("config")

    @property
    def budget(self) -> int:
        return int(self.meta("budget"))

    @property
    def objectives(self) -> list[dict[str, Any]]:
        """One dict per objective: name, metric, board, sense ('max'/'min'), unit, reference,
        ideal (see docs/search.md)."""
        return self.meta("objectives")

    @property
    def constraints(self) -> list[dict[str, Any]]:
        """One dict per constraint: name, metric, board, op ('<=' / '>='), limit, unit, kind."""
        return self.meta("constraints")

    def trials(self, statuses: Iterable[str] | None = None) -> list[Trial]:
        """Trials by id (optionally only those with one of `statuses`), reports included."""
        sql = "SELECT * FROM trials"
        args: tuple[Any, ...] = ()
        if statuses is not None:
            wanted = tuple(statuses)
            sql += f" WHERE status IN ({', '.join('?' * len(wanted))})"
            args = wanted
        trials = [_row_to_trial(r) for r in self._conn.execute(sql + " ORDER BY id", args)]
        by_id = {t.id: t for t in trials}
        for row in self._conn.execute("SELECT trial_id, board, report FROM reports"):
            if row["trial_id"] in by_id:
                by_id[row["trial_id"]].reports[row["board"]] = json.loads(row["report"])
        return trials

    def trial(self, trial_id: int) -> Trial:
        row = self._conn.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchone()
        if row is None:
            raise StoreError(f"{self.run_dir} has no trial {trial_id}")
        trial = _row_to_trial(row)
        trial.reports = self.reports(trial_id)
        return trial

    def reports(self, trial_id: int) -> dict[str, dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT board, report FROM reports WHERE trial_id = ? ORDER BY board", (trial_id,)
        )
        return {r["board"]: json.loads(r["report"]) for r in rows}

    def optimizer_state(self) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT state FROM optimizer WHERE id = 1").fetchone()
        return None if row is None else json.loads(row["state"])

    def events(self) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT at, kind, trial_id, message FROM events ORDER BY id")
        return [dict(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Number of trials per status (every status present, 0 when none)."""
        counts = dict.fromkeys(STATUSES, 0)
        for row in self._conn.execute("SELECT status, COUNT(*) AS n FROM trials GROUP BY status"):
            counts[row["status"]] = row["n"]
        return counts

    # -- write API (the search loop) ------------------------------------------------------------

    def add_trials(
        self,
        points: Sequence[tuple[Sequence[float], dict[str, Any]]],
        optimizer_state: dict[str, Any],
    ) -> list[int]:
        """Insert proposed trials (x, params) and the optimizer state that proposed them, in one
        transaction: either both are saved or neither (then the same ask repeats on resume)."""
        now = time.time()
        ids = []
        with _transaction(self._conn):
            for x, params in points:
                cur = self._conn.execute(
                    "INSERT INTO trials (status, x, params, proposed_at) VALUES (?, ?, ?, ?)",
                    ("proposed", _dump([float(v) for v in x]), _dump(params), now),
                )
                ids.append(int(cur.lastrowid))  # type: ignore[arg-type]
            self._save_state(optimizer_state, now)
        return ids

    def mark_started(
        self, trial_id: int, worker: str, pid: int | None, pid_start: str | None
    ) -> None:
        """An evaluation attempt began (status training, attempts + 1)."""
        self._conn.execute(
            "UPDATE trials SET status = 'training', stage = 'starting', attempts = attempts + 1,"
            " started_at = ?, worker = ?, worker_pid = ?, worker_start = ? WHERE id = ?",
            (time.time(), worker, pid, pid_start, trial_id),
        )

    def update_stage(self, trial_id: int, status: str, stage: str) -> None:
        """Progress of a running trial (`status` training or profiling)."""
        if status not in ("training", "profiling"):
            raise StoreError(f"a running trial is training or profiling, not {status!r}")
        self._conn.execute(
            "UPDATE trials SET status = ?, stage = ? WHERE id = ? AND status IN (?, ?, ?)",
            (status, stage, trial_id, *IN_FLIGHT),
        )

    def finish_trial(
        self,
        trial_id: int,
        *,
        status: str,
        observation: dict[str, Any],
        feasible: bool,
        failure_kind: str | None = None,
        reason: str | None = None,
        metrics: dict[str, float] | None = None,
        objectives: dict[str, float] | None = None,
        constraints: dict[str, float] | None = None,
        record: dict[str, Any] | None = None,
        reports: dict[str, dict[str, Any]] | None = None,
        artifacts: dict[str, str] | None = None,
        timings: dict[str, float] | None = None,
        optimizer_state: dict[str, Any] | None = None,
    ) -> None:
        """Record a finished evaluation (and, when given, the optimizer state that has been told
        it) in one transaction."""
        if status not in FINISHED:
            raise StoreError(f"a finished trial is done or failed, not {status!r}")
        now = time.time()
        with _transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE trials SET status = ?, stage = NULL, failure_kind = ?, reason = ?,"
                " metrics = ?, objectives = ?, constraints = ?, feasible = ?, observation = ?,"
                " record = ?, artifacts = ?, timings = ?, finished_at = ?"
                " WHERE id = ? AND status IN (?, ?, ?)",
                (
                    status, failure_kind, reason, _dump(metrics), _dump(objectives),
                    _dump(constraints), int(feasible), _dump(observation), _dump(record),
                    _dump(artifacts), _dump(timings), now, trial_id, *IN_FLIGHT,
                ),
            )  # fmt: skip
            if cur.rowcount != 1:
                raise StoreError(f"trial {trial_id} is not in flight; it cannot finish twice")
            self._conn.execute("DELETE FROM reports WHERE trial_id = ?", (trial_id,))
            self._conn.executemany(
                "INSERT INTO reports (trial_id, board, report) VALUES (?, ?, ?)",
                [(trial_id, b, json.dumps(r)) for b, r in (reports or {}).items()],
            )
            if optimizer_state is not None:
                self._save_state(optimizer_state, now)

    def save_optimizer_state(self, state: dict[str, Any]) -> None:
        with _transaction(self._conn):
            self._save_state(state, time.time())

    def requeue_in_flight(self) -> list[Trial]:
        """After a stop or a crash: every unfinished trial goes back to 'proposed' (its
        hyperparameters unchanged), to be evaluated again. Returns them by id."""
        with _transaction(self._conn):
            self._conn.execute(
                "UPDATE trials SET status = 'proposed', stage = NULL"
                " WHERE status IN ('training', 'profiling')"
            )
        return self.trials(["proposed"])

    def set_budget(self, budget: int) -> None:
        self.set_meta("budget", int(budget))

    def set_meta(self, key: str, value: Any) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, allow_nan=False)),
        )

    def log(self, kind: str, message: str, trial_id: int | None = None) -> None:
        self._conn.execute(
            "INSERT INTO events (at, kind, trial_id, message) VALUES (?, ?, ?, ?)",
            (time.time(), kind, trial_id, message),
        )

    def _save_state(self, state: dict[str, Any], now: float) -> None:
        self._conn.execute(
            "INSERT INTO optimizer (id, state, saved_at) VALUES (1, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at",
            (json.dumps(state, allow_nan=False), now),
        )


def open_run(run_dir: str | Path) -> RunStore:
    """Open a run directory read-only (no lock: works while a search is running)."""
    run = Path(run_dir)
    _check_run_dir(run)
    try:
        store = RunStore(run, _connect(run / DB_NAME, readonly=True))
        store._check_schema()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {run / DB_NAME}: {exc}") from exc
    return store


def check_new_run(run_dir: str | Path) -> None:
    """Refuse a --out that holds a run already or is a file (cheap: before any slow work)."""
    run = Path(run_dir)
    if (run / DB_NAME).exists():
        raise StoreError(
            f"{run} already holds a search; continue it with `hil search --resume {run}` "
            "or choose another --out directory"
        )
    if run.exists() and not run.is_dir():
        raise StoreError(f"--out {run} is a file; give a directory for the run")


def trial_dir(run_dir: str | Path, trial_id: int) -> Path:
    """Where a trial's files live: RUN/trials/000017/."""
    return Path(run_dir) / TRIALS_DIR / f"{trial_id:06d}"


def _check_run_dir(run: Path) -> None:
    if not (run / DB_NAME).is_file():
        what = "does not exist" if not run.exists() else f"holds no {DB_NAME}"
        raise StoreError(
            f"{run} {what}: it is not a `hil search` run directory (start one with "
            "`hil search CONFIG.toml --out RUN`)"
        )


def _statements(script: str) -> list[str]:
    """The SQL statements of `script`, comments removed (they may hold semicolons)."""
    text = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (autocommit connection), ROLLBACK on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _acquire_lock(run: Path) -> Any:
    """Exclusive, non-blocking flock on RUN/lock; the file names the holder for the message."""
    path = run / LOCK_NAME
    handle = open(path, "a+")  # noqa: SIM115 - held open for the store's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunLocked(
            f"run directory {run} is in use by another `hil search` ({holder}); only one "
            "process may work on a run: wait for it to finish, or stop it and then run "
            f"`hil search --resume {run}`"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    return handle


__all__ = [
    "FINISHED",
    "IN_FLIGHT",
    "SCHEMA_VERSION",
    "STATUSES",
    "RunLocked",
    "RunStore",
    "StoreError",
    "Trial",
    "check_new_run",
    "open_run",
    "trial_dir",
]
