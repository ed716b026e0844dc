"""The declarative search space: encoding round trips, log scale, conditions, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.factory.config import SPACE
from optimizer.space import Bool, Categorical, Float, Int, Space, SpaceError


def small_space() -> Space:
    return Space([
        Categorical("mode", "off", choices=("off", "on")),
        Float("lr", 1e-3, low=1e-5, high=1e-1, log=True),
        Int("epochs", 3, low=1, high=100, log=True),
        Int("depth", 2, low=1, high=4),
        Bool("se", True, when={"mode": ("on",)}),
        Float("share", 0.5, low=0.0, high=0.9, when={"mode": ("on",)}),
    ])


def test_round_trip_of_every_value_kind() -> None:
    space = small_space()
    config = {"mode": "on", "lr": 0.02, "epochs": 57, "depth": 3, "se": False, "share": 0.25}
    x = space.encode(config)
    assert x.shape == (space.dim,) and np.all((x >= 0) & (x <= 1))
    back = space.decode(x)
    assert back["lr"] == pytest.approx(0.02) and back["share"] == pytest.approx(0.25)
    assert {k: back[k] for k in ("mode", "epochs", "depth", "se")} == {
        "mode": "on", "epochs": 57, "depth": 3, "se": False}


def test_every_integer_survives_the_round_trip() -> None:
    space = small_space()
    for epochs in range(1, 101):
        assert space.decode(space.encode({"epochs": epochs}))["epochs"] == epochs


def test_log_scale_gives_small_values_their_share() -> None:
    lr = small_space()["lr"]
    assert lr.from_unit(0.5) == pytest.approx(1e-3)  # geometric, not arithmetic, midpoint
    assert small_space()["epochs"].from_unit(0.25) < 10


def test_inactive_parameters_decode_to_default() -> None:
    space = small_space()
    x = space.encode({"mode": "on", "se": False, "share": 0.8})
    x[0] = 0.1  # mode -> "off": se and share no longer matter
    config = space.decode(x)
    assert config["mode"] == "off" and config["se"] is True and config["share"] == 0.5
    assert not space.is_active("share", config)


def test_factory_space_round_trips_random_points() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        config = SPACE.decode(rng.random(SPACE.dim))
        again = SPACE.decode(SPACE.encode(config))
        for name, value in config.items():
            assert again[name] == pytest.approx(value), name


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"dpeth": 2}, "unknown hyperparameter 'dpeth'"),
        ({"depth": 9}, "depth = 9: expected an integer in [1, 4]"),
        ({"depth": 2.0}, "expected an integer"),
        ({"lr": "fast"}, "lr = 'fast': expected a number"),
        ({"se": 1}, "se = 1: expected true or false"),
        ({"mode": "maybe"}, "expected one of 'off', 'on'"),
    ],
)
def test_bad_values_are_refused_clearly(config: dict, message: str) -> None:
    with pytest.raises(SpaceError, match=message.replace("[", r"\[").replace("]", r"\]")):
        small_space().validate(config)


def test_bad_vectors_and_declarations_are_refused() -> None:
    space = small_space()
    with pytest.raises(SpaceError, match="length 6"):
        space.decode([0.5, 0.5])
    with pytest.raises(SpaceError, match=r"in \[0, 1\]"):
        space.decode([1.5] * 6)
    with pytest.raises(SpaceError, match="unknown parameter 'nope'"):
        Space([Bool("x", True, when={"nope": (True,)})])
    with pytest.raises(SpaceError, match="log-scale"):
        Float("lr", 0.1, low=0.0, high=1.0, log=True)
