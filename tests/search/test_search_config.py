"""Search configs: every mistake is an error naming the key and what is allowed; good configs
become the right space, objectives, constraints and told values."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hil.boards import load_board
from optimizer.search.config import SearchConfig
from optimizer.search.objectives import SearchConfigError

REPO = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "data": {"dataset": "digits"},
    "model": {"family": "resnet", "stages": 1},
    "space": {"model": {"base_width": {"low": 4, "high": 16}}},
    "search": {
        "boards": ["qemu-m4"],
        "objectives": ["accuracy", "flash", "latency"],
        "constraints": ["latency_ms <= 50"],
    },
}


def config(**changes: Any) -> SearchConfig:
    """BASE with dotted-path changes, e.g. config(**{"search.budget": 0}); None deletes."""
    doc = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, last = path.split(".", 2) if path.startswith("space.") else path.split(".")
        node = doc
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return SearchConfig.from_mapping(doc, source="test.toml")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"search.budgets": 3}, r"unknown key search\.budgets; allowed: boards, board"),
        ({"search.boards": None}, r"search\.boards is missing"),
        ({"search.boards": ["qemu-m9"]}, r"search\.boards: unknown board 'qemu-m9'; known boards"),
        ({"search.boards": "qemu-m4"}, r"search\.boards = 'qemu-m4': expected a non-empty list"),
        ({"search.budget": 0}, r"search\.budget = 0: expected an integer >= 1"),
        ({"search.workers": "2"}, r"search\.workers = '2': expected an integer >= 1"),
        ({"search.algorithm": "bayes"}, r"search\.algorithm = 'bayes': choose one of ars-mobo"),
        ({"search.algorithm": "ars-mobo", "search.algorithm_settings": {"no_such_setting": 3}},
         r"search\.algorithm_settings do not fit ars-mobo.*its settings: initial_points"),
        ({"search.objectives": ["accuracy", "speed"]},
         r"search\.objectives: unknown objective 'speed'; allowed: accuracy, flash_bytes"),
        ({"search.objectives": ["test_accuracy", "flash"]},
         r"test accuracy is recorded and reported, never used to select"),
        ({"search.objectives": ["accuracy", "latency"], "search.constraints": []},
         r"objective latency_ms@qemu-m4 needs a reference value.*search\.reference\.latency_ms"),
        ({"search.objectives": ["accuracy", "latency@qemu-m0"]},
         r"board 'qemu-m0' is not one of the search's boards \(qemu-m4\)"),
        ({"search.objectives": ["accuracy@qemu-m4"]}, r"accuracy does not depend on the board"),
        ({"search.constraints": ["latency < fifty"]}, r"cannot read 'latency < fifty'"),
        ({"search.constraints": ["flash <= 100"]}, r"unknown metric 'flash'.*say flash_kb"),
        ({"search.constraints": ["ram_kb <= 0"]}, r"must be a number above 0"),
        ({"search.reference": {"latency_ms": -1}}, r"reference for latency_ms@qemu-m4 = -1"),
        ({"space.model.base_width": {"low": 2, "high": 16}},
         r"space\.model\.base_width\.low = 2: expected integer in \[4, 64\]"),
        ({"space.model.base_width": {"low": 8, "high": 8}}, r"low \(8\) must be below high"),
        ({"space.model.widht": {}}, r"space\.model\.widht: unknown hyperparameter; known:"),
        ({"space.model.base_width": {"choices": [4, 8]}}, r"takes low/high/log, not choices"),
        ({"space.model.base_width": {"low": 4, "step": 2}}, r"base_width\.step: unknown"),
        ({"space.pruning.mode": ["structured"]}, r"give at least two of 'none', 'structured'"),
        ({"space.pruning.mode": ["none", "pruned"]}, r"choices: 'pruned' is not allowed"),
        ({"space.pruning.sparsity": {}},
         r"space\.pruning\.sparsity never matters.*pruning\.mode is fixed to 'none'"),
        ({"space.model": None}, r"nothing varies"),
        ({"data.dataset": "cifar-1000"}, r"data\.dataset: unknown dataset 'cifar-1000'"),
        ({"training": {"epochs": 3}}, r"unknown top-level key 'training'"),
    ],
)
def test_a_config_error_names_the_key_and_what_is_allowed(
    changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(SearchConfigError, match=expected):
        config(**changes)


def test_objectives_and_constraints_per_board_and_their_told_values() -> None:
    cfg = config(**{
        "search.boards": ["qemu-m4", "qemu-m0"],
        "search.objectives": ["accuracy", "latency", "ram@qemu-m0"],
        "search.constraints": ["latency_ms <= 50", "ram_kb@qemu-m0 <= 128"],
        "search.reference": {"latency_ms@qemu-m0": 80},
    })
    names = [o.name for o in cfg.objectives]
    assert names == ["accuracy", "latency_ms@qemu-m4", "latency_ms@qemu-m0", "ram_bytes@qemu-m0"]
    refs = {o.name: o.reference for o in cfg.objectives}
    # Constraint limit by default, an explicit reference wins, a user RAM limit beats the board.
    assert refs["latency_ms@qemu-m4"] == 50 and refs["latency_ms@qemu-m0"] == 80
    assert refs["ram_bytes@qemu-m0"] == 128 * 1024 and refs["accuracy"] == 0
    cons = {c.name: c for c in cfg.constraints}
    m4, m0 = load_board("qemu-m4"), load_board("qemu-m0")
    assert set(cons) == {  # the boards' own memories always, then the user's
        f"flash_bytes@qemu-m4 <= {m4.flash_bytes}", f"ram_bytes@qemu-m4 <= {m4.ram_bytes}",
        f"flash_bytes@qemu-m0 <= {m0.flash_bytes}", f"ram_bytes@qemu-m0 <= {m0.ram_bytes}",
        "latency_ms@qemu-m4 <= 50", "latency_ms@qemu-m0 <= 50", "ram_kb@qemu-m0 <= 128",
    }
    assert cons["ram_kb@qemu-m0 <= 128"].key == "ram_bytes@qemu-m0"
    assert cons["ram_kb@qemu-m0 <= 128"].told(64 * 1024) == pytest.approx(-0.5)
    accuracy = cfg.objectives[0]
    assert accuracy.told(0.9) == pytest.approx(0.1) and accuracy.told(0.0) == pytest.approx(1)
    assert cfg.objectives[1].told(25) == pytest.approx(0.5)
    spec = cfg.problem_spec()
    assert (spec.num_objectives, spec.num_constraints, spec.ref_point) == (4, 7, (1.0,) * 4)


def test_the_space_holds_the_varied_parameters_with_conditions_and_fixed_values() -> None:
    cfg = config(**{
        "pruning": {"mode": "structured", "sparsity": 0.3},
        "space.pruning.mode": ["none", "unstructured"],
        "space.pruning.sparsity": {"high": 0.8},
        "space.model.base_width": {"low": 4, "high": 32, "log": False},
    })
    assert cfg.space.names == ["model.base_width", "pruning.mode", "pruning.sparsity"]
    sparsity = cfg.space["pruning.sparsity"]
    assert sparsity.when == {"pruning.mode": ("unstructured",)}  # structured is not a choice
    assert (sparsity.low, sparsity.high, sparsity.default) == (0.0, 0.8, 0.3)
    params = cfg.decode(np.array([0.99, 0.1, 0.5]))
    assert params["model.base_width"] == 32 and params["pruning.mode"] == "none"
    assert params["pruning.sparsity"] == 0.3  # inactive: its default, no effect
    assert params["model.stages"] == 1  # fixed in [model]
    params = cfg.decode(np.array([0.0, 0.9, 0.5]))
    assert params["pruning.mode"] == "unstructured" and params["pruning.sparsity"] == 0.4


def test_command_line_overrides_replace_search_keys() -> None:
    cfg = SearchConfig.from_mapping(BASE, overrides={"budget": 7, "algorithm": "sobol",
                                                     "workers": None})
    assert (cfg.budget, cfg.algorithm, cfg.workers, cfg.batch_size) == (7, "sobol", 1, 1)


def test_initial_design_reaches_the_algorithm() -> None:
    assert config(**{"search.initial_design": 5}).optimizer_settings()["initial_points"] == 5
    nsga = config(**{"search.initial_design": 6, "search.algorithm": "nsga2"})
    assert nsga.optimizer_settings() == {"population_size": 6}


@pytest.mark.parametrize("name", ["search-digits-qemu-m4.toml", "search-motions-qemu-m0.toml"])
def test_the_example_configs_are_valid(name: str) -> None:
    cfg = SearchConfig.from_toml(REPO / "examples" / name)
    assert cfg.space.dim >= 3 and cfg.budget >= 10


def test_a_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SearchConfigError, match="does not exist"):
        SearchConfig.from_toml(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[search\nboards = 1")
    with pytest.raises(SearchConfigError, match="is not valid TOML"):
        SearchConfig.from_toml(bad)
