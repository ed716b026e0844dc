"""A search's configuration: one TOML file (every key is documented in docs/search.md).

The file is a `hil train` config (``[data]``, ``[model]``, ``[train]``, ``[pruning]``,
``[quantization]``: the dataset, the model family and the values of everything that does not
vary) plus ``[search]`` (boards, objectives, constraints, algorithm, budget ...) and
``[space.TABLE]`` entries naming the factory hyperparameters that vary and their ranges.
Every error names the key and says what is allowed.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer.algorithms import ALGORITHMS
from optimizer.core import ProblemSpec
from optimizer.search.objectives import (
    Constraint,
    Objective,
    SearchConfigError,
    board_constraints,
    parse_constraints,
    parse_objectives,
    parse_references,
)
from optimizer.space import Bool, Categorical, Float, Int, Param, Space, SpaceError

_FACTORY_TABLES = ("data", "model", "train", "pruning", "quantization")
_ENTRY_KEYS = ("low", "high", "log", "choices", "when")

#: [search] keys: name -> (default, description for errors). None default = required.
_SEARCH_KEYS: dict[str, Any] = {
    "boards": None,
    "board": None,
    "boards_dir": None,
    "objectives": ["accuracy", "flash", "ram", "latency"],
    "constraints": [],
    "reference": None,
    "algorithm": "ars-mobo",  # the best on the evidence of docs/optimizer.md (issue 13)
    "algorithm_settings": None,
    "budget": 20,
    "initial_design": None,
    "batch_size": None,
    "workers": 1,
    "seed": 0,
    "train_timeout_s": 1800.0,
    "train_threads": 1,
    "profile_runs": 5,
}


@dataclass(frozen=True)
class SearchConfig:
    """A checked search configuration. `doc` is the TOML document it came from (with command
    line overrides applied), which is what the run store keeps to rebuild it on resume."""

    doc: dict[str, Any]
    source: str
    dataset: str
    seed: int
    fixed: dict[str, Any]
    space: Space
    boards: tuple[str, ...]
    boards_dir: str | None
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    algorithm: str
    algorithm_settings: dict[str, Any]
    budget: int
    initial_design: int | None
    batch_size: int
    workers: int
    train_timeout_s: float
    train_threads: int
    profile_runs: int
    board_limits: dict[str, tuple[int, int]] = field(default_factory=dict)

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_toml(
        cls, path: str | Path, overrides: Mapping[str, Any] | None = None
    ) -> SearchConfig:
        """Read and check a config file; `overrides` replace [search] keys (command line)."""
        p = Path(path)
        if p.is_dir():
            raise SearchConfigError(f"config {p} is a directory; give a TOML file")
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SearchConfigError(
                f"config file {p} does not exist (examples: examples/search-*.toml)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SearchConfigError(f"cannot read config {p}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SearchConfigError(f"{p} is not valid TOML: {exc}") from exc
        search = doc.get("search")
        if isinstance(search, dict) and isinstance(search.get("boards_dir"), str):
            # Relative to the config file, stored absolute so a resume finds it anywhere.
            search["boards_dir"] = str((p.parent / search["boards_dir"]).resolve())
        return cls.from_mapping(doc, source=str(p), overrides=overrides)

    @classmethod
    def from_mapping(
        cls,
        doc: Mapping[str, Any],
        source: str = "config",
        overrides: Mapping[str, Any] | None = None,
    ) -> SearchConfig:
        doc = copy.deepcopy(dict(doc))
        search = doc.setdefault("search", {})
        if not isinstance(search, dict):
            raise SearchConfigError(f"{source}: search must be a table [search]")
        for key, value in (overrides or {}).items():
            if value is not None:
                search[key] = value
        return _parse(doc, source)

    # -- use ----------------------------------------------------------------------------------

    def decode(self, x: Any) -> dict[str, Any]:
        """Unit-cube point -> complete factory hyperparameters (varied ones from `x`)."""
        return {**self.fixed, **self.space.decode(x)}

    def problem_spec(self) -> ProblemSpec:
        """The optimizer's view: normalised objectives, so the reference point is all ones;
        plus what the GP methods may exploit: the space's discrete bins, the minimised metrics
        (bytes, ms, operations: positive) as positive objectives, and a constraint on an
        objective's own metric as affine in its told value (issue 13)."""
        m = len(self.objectives)
        index = {o.name: j for j, o in enumerate(self.objectives)}
        affine = []
        for c in self.constraints:
            j = index.get(c.key)
            if j is None:
                affine.append(None)
                continue
            # told objective t: value = ideal + t * (ref - ideal); told constraint: value / L - 1
            # (<=) or 1 - value / L (>=).
            o, sign = self.objectives[j], (1.0 if c.op == "<=" else -1.0)
            scale = (o.reference - o.ideal) / c.limit
            affine.append((j, sign * scale, sign * (o.ideal / c.limit - 1.0)))
        return ProblemSpec(
            self.space.dim, m, len(self.constraints), ref_point=(1.0,) * m,
            discrete=self.space.bin_edges(),
            positive_objectives=tuple(
                j for j, o in enumerate(self.objectives) if o.sense == "min" and o.ideal == 0
            ),
            affine_constraints=tuple(affine),
        )  # fmt: skip

    def optimizer_settings(self) -> dict[str, Any]:
        """Settings for `make_optimizer`: the algorithm's own plus the initial design size."""
        settings = dict(self.algorithm_settings)
        if self.initial_design is not None:
            cls = ALGORITHMS[self.algorithm]
            names = cls.settings_class.__dataclass_fields__
            if "initial_points" in names:
                settings.setdefault("initial_points", self.initial_design)
            elif "population_size" in names:
                settings.setdefault("population_size", self.initial_design)
        return settings

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as JSON-able data (what the run store shows readers)."""
        return {
            "source": self.source,
            "dataset": self.dataset,
            "seed": self.seed,
            "fixed": self.fixed,
            "space": describe_space(self.space),
            "boards": list(self.boards),
            "boards_dir": self.boards_dir,
            "objectives": [o.to_dict() for o in self.objectives],
            "constraints": [c.to_dict() for c in self.constraints],
            "algorithm": self.algorithm,
            "algorithm_settings": self.optimizer_settings(),
            "budget": self.budget,
            "initial_design": self.initial_design,
            "batch_size": self.batch_size,
            "workers": self.workers,
            "train_timeout_s": self.train_timeout_s,
            "train_threads": self.train_threads,
            "profile_runs": self.profile_runs,
        }


def describe_space(space: Space) -> list[dict[str, Any]]:
    """Each varied parameter as data: name, type, range or choices, log, condition."""
    out = []
    for p in space.params:
        entry: dict[str, Any] = {"name": p.name, "type": type(p).__name__.lower(),
                                 "default": p.default}
        if isinstance(p, Float | Int):
            entry.update(low=p.low, high=p.high, log=p.log)
        elif isinstance(p, Categorical):
            entry["choices"] = list(p.choices)
        if p.when:
            entry["when"] = {k: list(v) for k, v in p.when.items()}
        out.append(entry)
    return out


# -- parsing -----------------------------------------------------------------------------------


def _parse(doc: dict[str, Any], source: str) -> SearchConfig:
    from optimizer.factory.config import SPACE, CandidateConfig
    from optimizer.factory.errors import FactoryError

    allowed_top = ", ".join(f"[{t}]" for t in ("search", "space", *_FACTORY_TABLES))
    for key, value in doc.items():
        if key not in ("search", "space", *_FACTORY_TABLES):
            raise SearchConfigError(f"{source}: unknown top-level key {key!r}; allowed: "
                                    f"{allowed_top}")
        if not isinstance(value, dict):
            raise SearchConfigError(f"{source}: {key} must be a table [{key}]")
    search = doc["search"]
    unknown = sorted(set(search) - set(_SEARCH_KEYS))
    if unknown:
        raise SearchConfigError(
            f"{source}: unknown key search.{unknown[0]}; allowed: {', '.join(_SEARCH_KEYS)}"
        )
    s = {k: search.get(k, d) for k, d in _SEARCH_KEYS.items()}

    # Fixed values: a `hil train` config. Search keys of CandidateConfig are checked there.
    factory_doc = {k: v for k, v in doc.items() if k in _FACTORY_TABLES}
    try:
        base = CandidateConfig.from_mapping(factory_doc, source=source)
    except FactoryError as exc:
        raise SearchConfigError(str(exc)) from exc
    seed = _int(s["seed"], "search.seed", 0)
    fixed = dict(base.hparams)
    space = _build_space(doc.get("space", {}), fixed, SPACE, source)

    boards, limits, boards_dir = _boards(s["boards"], s["board"], s["boards_dir"])
    user_constraints = parse_constraints(s["constraints"], boards)
    constraints = board_constraints([(b, *limits[b]) for b in boards]) + user_constraints
    defaults: dict[str, float] = {"accuracy": 0.0}
    for b in boards:
        defaults[f"flash_bytes@{b}"] = float(limits[b][0])
        defaults[f"ram_bytes@{b}"] = float(limits[b][1])
    for c in user_constraints:  # the tightest user limit on a metric is its default reference
        if c.op == "<=":
            defaults[c.key] = min(defaults.get(c.key, c.limit), c.limit)
    refs = parse_references(s["reference"], boards, defaults)
    objectives = parse_objectives(s["objectives"], boards, refs)

    algorithm = s["algorithm"]
    if algorithm not in ALGORITHMS:
        raise SearchConfigError(
            f"search.algorithm = {algorithm!r}: choose one of {', '.join(ALGORITHMS)}"
        )
    settings = s["algorithm_settings"] or {}
    if not isinstance(settings, dict):
        raise SearchConfigError("search.algorithm_settings must be a table of the algorithm's "
                                "settings (see docs/optimizer.md)")
    workers = _int(s["workers"], "search.workers", 1)
    budget = _int(s["budget"], "search.budget", 1)
    batch = workers if s["batch_size"] is None else _int(s["batch_size"], "search.batch_size", 1)
    initial = None if s["initial_design"] is None else _int(
        s["initial_design"], "search.initial_design", 1)
    cfg = SearchConfig(
        doc=doc,
        source=source,
        dataset=base.dataset,
        seed=seed,
        fixed=fixed,
        space=space,
        boards=tuple(boards),
        boards_dir=boards_dir,
        objectives=tuple(objectives),
        constraints=tuple(constraints),
        algorithm=algorithm,
        algorithm_settings=dict(settings),
        budget=budget,
        initial_design=initial,
        batch_size=batch,
        workers=workers,
        train_timeout_s=_number(s["train_timeout_s"], "search.train_timeout_s"),
        train_threads=_int(s["train_threads"], "search.train_threads", 1),
        profile_runs=_int(s["profile_runs"], "search.profile_runs", 1),
        board_limits=limits,
    )
    _check_algorithm_settings(cfg)
    _check_dataset(cfg.dataset, seed)
    return cfg


def _int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SearchConfigError(f"{key} = {value!r}: expected an integer >= {minimum}")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise SearchConfigError(f"{key} = {value!r}: expected a number above 0")
    return float(value)


def _boards(
    boards: Any, board: Any, boards_dir: Any
) -> tuple[list[str], dict[str, tuple[int, int]], str | None]:
    from hil.boards import load_board
    from hil.errors import BoardError

    if boards is not None and board is not None:
        raise SearchConfigError("give either search.board or search.boards, not both")
    if board is not None:
        boards = [board]
    if boards is None:
        raise SearchConfigError(
            "search.boards is missing: name the board(s) to measure on, e.g. "
            "boards = [\"qemu-m4\"] (see `hil boards`)"
        )
    if (not isinstance(boards, list) or not boards
            or not all(isinstance(b, str) and b for b in boards)):
        raise SearchConfigError(
            f"search.boards = {boards!r}: expected a non-empty list of board names, e.g. "
            "[\"qemu-m4\", \"qemu-m0\"]"
        )
    if len(set(boards)) != len(boards):
        raise SearchConfigError(f"search.boards = {boards!r} names a board twice")
    if boards_dir is not None and not isinstance(boards_dir, str):
        raise SearchConfigError("search.boards_dir must be a path (a folder of board folders)")
    root = Path(boards_dir) if boards_dir else None
    if root is not None and not root.is_dir():
        raise SearchConfigError(f"search.boards_dir = {boards_dir!r} is not a directory")
    limits = {}
    for name in boards:
        try:
            b = load_board(name, boards_dir=root)
        except BoardError as exc:
            raise SearchConfigError(f"search.boards: {exc}") from exc
        limits[name] = (b.flash_bytes, b.ram_bytes)
    return list(boards), limits, str(root) if root is not None else None


def _check_algorithm_settings(cfg: SearchConfig) -> None:
    from optimizer.core import OptimizerError

    cls = ALGORITHMS[cfg.algorithm]
    try:
        cls.settings_class(**cfg.optimizer_settings())
    except TypeError as exc:
        names = ", ".join(cls.settings_class.__dataclass_fields__) or "(none)"
        raise SearchConfigError(
            f"search.algorithm_settings do not fit {cfg.algorithm}: {exc}; its settings: {names}"
        ) from exc
    except OptimizerError as exc:
        raise SearchConfigError(f"search.algorithm_settings: {exc}") from exc


def _check_dataset(name: str, seed: int) -> None:
    """An unknown dataset is a config error now, not a failure of every trial later."""
    from optimizer.factory.datasets import load_dataset
    from optimizer.factory.errors import FactoryError

    try:
        load_dataset(name, seed)
    except FactoryError as exc:
        raise SearchConfigError(f"data.dataset: {exc}") from exc


def _build_space(
    table: Any, fixed: dict[str, Any], factory: Space, source: str
) -> Space:
    """[space.TABLE] entries -> the Space of the varied hyperparameters.

    An entry is ``{}`` (the factory's whole range), a list (choices), or a table with
    low/high/log (numbers), choices (categorical and bool) and when (extra conditions).
    Conditions on fixed parameters are resolved here: they either hold (dropped) or make the
    entry pointless (an error).
    """
    if not isinstance(table, dict):
        raise SearchConfigError(f"{source}: space must hold tables such as [space.model]")
    entries: dict[str, Any] = {}
    for section, items in table.items():
        if not isinstance(items, dict):
            raise SearchConfigError(
                f"space.{section} must be a table such as [space.{section}] holding "
                "hyperparameter = { low = ..., high = ... } entries"
            )
        for key, entry in items.items():
            entries[f"{section}.{key}"] = entry
    if not entries:
        raise SearchConfigError(
            f"{source}: nothing varies; name at least one factory hyperparameter under "
            "[space.TABLE], e.g. [space.model] base_width = { low = 4, high = 32 } "
            "(the list: `SPACE.describe()` or docs/factory.md)"
        )
    params: dict[str, Param] = {}
    for name, entry in entries.items():
        if name not in factory:
            raise SearchConfigError(
                f"space.{name}: unknown hyperparameter; known: {', '.join(factory.names)}"
            )
        params[name] = _param(f"space.{name}", factory[name], entry, fixed[name])
    # Conditions: the factory's own plus the user's; those on fixed parameters resolve now.
    resolved: dict[str, Param] = {}
    for name, p in params.items():
        when: dict[str, tuple[Any, ...]] = {}
        for other, values in p.when.items():
            if other in params:
                choices = _choices(params[other])
                keep = tuple(v for v in values if choices is None or v in choices)
                if not keep:
                    raise SearchConfigError(
                        f"space.{name} never matters: it needs {other} in {list(values)}, "
                        f"but space.{other} allows only {list(choices or ())}"
                    )
                when[other] = keep
            elif fixed[other] not in values:
                raise SearchConfigError(
                    f"space.{name} never matters: it needs {other} in {list(values)}, but "
                    f"{other} is fixed to {fixed[other]!r}; vary {other} too or drop space.{name}"
                )
        resolved[name] = _replace_when(p, when)
    ordered = _order(resolved, factory)
    try:
        return Space(ordered)
    except SpaceError as exc:
        raise SearchConfigError(f"space: {exc}") from exc


def _choices(p: Param) -> tuple[Any, ...] | None:
    if isinstance(p, Categorical):
        return p.choices
    if isinstance(p, Bool):
        return (False, True)
    return None


def _replace_when(p: Param, when: dict[str, tuple[Any, ...]]) -> Param:
    import dataclasses

    return dataclasses.replace(p, when=when)


def _order(params: dict[str, Param], factory: Space) -> list[Param]:
    """Factory order, but every parameter after those its conditions name."""
    rank = {name: i for i, name in enumerate(factory.names)}
    pending = sorted(params, key=rank.__getitem__)
    out: list[str] = []
    while pending:
        for name in pending:
            if all(o in out for o in params[name].when):
                out.append(name)
                pending.remove(name)
                break
        else:
            raise SearchConfigError(f"space: conditions of {', '.join(pending)} form a cycle")
    return [params[n] for n in out]


def _param(key: str, base: Param, entry: Any, fixed_value: Any) -> Param:
    """One varied parameter from its entry, within the factory's declaration of it."""
    if entry is True or entry == {}:
        entry = {}
    elif isinstance(entry, list):
        entry = {"choices": entry}
    elif not isinstance(entry, dict):
        raise SearchConfigError(
            f"{key} = {entry!r}: expected {{}} (the factory's range: {base.describe()}), a "
            "list of choices, or a table with low/high/log/choices/when"
        )
    unknown = sorted(set(entry) - set(_ENTRY_KEYS))
    if unknown:
        raise SearchConfigError(f"{key}.{unknown[0]}: unknown; allowed: {', '.join(_ENTRY_KEYS)}")
    when = dict(base.when)
    if "when" in entry:
        user = entry["when"]
        if not isinstance(user, dict) or not all(isinstance(v, list) for v in user.values()):
            raise SearchConfigError(
                f"{key}.when must be a table of lists, e.g. when = {{ \"pruning.mode\" = "
                "[\"structured\"] }"
            )
        for other, values in user.items():
            prev = when.get(other)
            values_t = tuple(values)
            when[other] = values_t if prev is None else tuple(v for v in prev if v in values_t)
    try:
        if isinstance(base, Float | Int):
            if "choices" in entry:
                raise SearchConfigError(f"{key}: a number range takes low/high/log, not choices")
            low = entry.get("low", base.low)
            high = entry.get("high", base.high)
            log = entry.get("log", base.log)
            if not isinstance(log, bool):
                raise SearchConfigError(f"{key}.log = {log!r}: expected true or false")
            for bound, value in (("low", low), ("high", high)):
                try:
                    base.check(value)
                except SpaceError:
                    raise SearchConfigError(
                        f"{key}.{bound} = {value!r}: expected {base.describe()} (the factory's "
                        "range)"
                    ) from None
            if not low < high:
                raise SearchConfigError(f"{key}: low ({low}) must be below high ({high})")
            default = min(max(fixed_value, low), high)
            cls = type(base)
            return cls(base.name, default, when=when, help=base.help, low=low, high=high, log=log)
        if "low" in entry or "high" in entry or "log" in entry:
            raise SearchConfigError(f"{key}: a choice takes choices = [...], not low/high/log")
        all_choices = _choices(base) or ()
        choices = entry.get("choices", list(all_choices))
        if not isinstance(choices, list) or len(choices) < 2:
            raise SearchConfigError(
                f"{key}.choices = {choices!r}: give at least two of "
                f"{', '.join(repr(c) for c in all_choices)} (to fix one value, set it in "
                f"[{base.name.split('.')[0]}] instead)"
            )
        checked = []
        for c in choices:
            try:
                checked.append(base.check(c))
            except SpaceError:
                raise SearchConfigError(
                    f"{key}.choices: {c!r} is not allowed; {base.describe()}"
                ) from None
        if len(set(map(repr, checked))) != len(checked):
            raise SearchConfigError(f"{key}.choices lists a value twice")
        if isinstance(base, Bool):
            return Bool(base.name, bool(fixed_value), when=when, help=base.help)
        default = fixed_value if fixed_value in checked else checked[0]
        return Categorical(base.name, default, when=when, help=base.help, choices=tuple(checked))
    except SpaceError as exc:
        raise SearchConfigError(f"{key}: {exc}") from exc


__all__ = ["SearchConfig", "SearchConfigError", "describe_space"]
