"""The factory's search space and one candidate's configuration (TOML or dict).

Every hyperparameter is declared once here, with its type, range, default and condition; a
TOML config, an optimizer's decoded vector and the JSON record all use the same dotted names
(``pruning.sparsity`` is ``sparsity`` in the ``[pruning]`` table). The dataset and the seed are
fixed per search, so they are part of the configuration but not of the space.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer.factory.errors import FactoryError
from optimizer.space import Bool, Categorical, Float, Int, Space, SpaceError

_PRUNED = {"pruning.mode": ("structured", "unstructured")}
_MOBILENET = {"model.family": ("mobilenetv3",)}

SPACE = Space([
    Categorical("model.family", "resnet", choices=("resnet", "mobilenetv3"),
                help="ResNet-style CNN or MobileNetV3-style inverted residuals."),
    Int("model.stages", 2, low=1, high=4,
        help="Stages; each after the first halves the resolution and doubles the width."),
    Int("model.blocks_per_stage", 1, low=1, high=4, help="Residual blocks per stage."),
    Int("model.base_width", 16, low=4, high=64, log=True, help="Channels of the first stage."),
    Float("model.width_multiplier", 1.0, low=0.25, high=2.0,
          help="Scales every width (rounded to a multiple of 4)."),
    Float("model.expansion", 4.0, low=1.0, high=6.0, when=_MOBILENET,
          help="Hidden width of an inverted residual, relative to its output width."),
    Bool("model.squeeze_excitation", True, when=_MOBILENET,
         help="Squeeze-excitation in the second half of the blocks."),
    Int("train.epochs", 10, low=1, high=200, log=True, help="Epochs of float training."),
    Float("train.learning_rate", 3e-3, low=1e-5, high=0.3, log=True, help="Adam learning rate."),
    Categorical("train.batch_size", 32, choices=(8, 16, 32, 64, 128, 256),
                help="Mini-batch size."),
    Categorical("pruning.mode", "none", choices=("none", "structured", "unstructured"),
                help="structured removes whole channels; unstructured zeroes single weights."),
    Categorical("pruning.criterion", "l1", choices=("l1", "l2", "activation", "gradient"),
                when={"pruning.mode": ("structured",)},
                help="How channels are ranked: filter norm, mean |activation|, or Taylor "
                     "(|activation x gradient|)."),
    Float("pruning.sparsity", 0.5, low=0.0, high=0.95, when=_PRUNED,
          help="Share of hidden channels (structured) or of weights (unstructured) removed."),
    Categorical("pruning.schedule", "one_shot", choices=("one_shot", "gradual"), when=_PRUNED,
                help="Prune at once, or in steps along the cubic AGP schedule."),
    Int("pruning.finetune_epochs", 2, low=0, high=100, when=_PRUNED,
        help="Epochs of training after (and, gradual, during) pruning."),
    Categorical("quantization.mode", "ptq", choices=("ptq", "qat"),
                help="Post-training quantization, or quantization-aware fine-tuning first."),
    Int("quantization.calibration_samples", 100, low=1, high=2000, log=True,
        help="Training samples that calibrate the int8 activation ranges."),
    Int("quantization.qat_epochs", 2, low=1, high=50, when={"quantization.mode": ("qat",)},
        help="Epochs of quantization-aware fine-tuning."),
    Bool("quantization.per_channel", True,
         help="One weight scale per output channel (else one per tensor)."),
])


@dataclass(frozen=True)
class CandidateConfig:
    """What defines one candidate: dataset, seed and a complete, valid hyperparameter set."""

    dataset: str
    seed: int = 0
    hparams: dict[str, Any] = field(default_factory=SPACE.defaults)

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise FactoryError("data.dataset must be a dataset name, e.g. \"digits\"")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise FactoryError(f"train.seed = {self.seed!r}: expected an integer >= 0")
        object.__setattr__(self, "hparams", SPACE.validate(self.hparams))

    def __getitem__(self, name: str) -> Any:
        return self.hparams[name]

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any], source: str = "config") -> CandidateConfig:
        """From nested tables as in TOML: ``{"data": {"dataset": ...}, "pruning": {...}}``."""
        flat: dict[str, Any] = {}
        for section, table in doc.items():
            if not isinstance(table, Mapping):
                raise FactoryError(
                    f"{source}: top-level key {section!r} must be a table such as [{section}]; "
                    "every setting lives in [data], [model], [train], [pruning] or [quantization]"
                )
            for key, value in table.items():
                flat[f"{section}.{key}"] = value
        dataset = flat.pop("data.dataset", None)
        if dataset is None:
            raise FactoryError(f"{source}: [data] needs dataset = \"digits\" (or another name)")
        seed = flat.pop("train.seed", 0)
        try:
            return cls(dataset=dataset, seed=seed, hparams=flat)
        except SpaceError as exc:
            raise FactoryError(f"{source}: {exc}") from exc

    @classmethod
    def from_toml(cls, path: str | Path) -> CandidateConfig:
        """Read a TOML config; every way the file can be unusable is a FactoryError."""
        p = Path(path)
        hint = "give a TOML config file such as examples/digits-resnet.toml"
        if p.is_dir():
            raise FactoryError(f"config {p} is a directory, not a file; {hint}")
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            raise FactoryError(f"config file {p} does not exist; {hint}") from None
        except OSError as exc:
            raise FactoryError(f"cannot read config {p}: {exc.strerror or exc}; {hint}") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FactoryError(
                f"config {p} is not a text file (byte {exc.start} is not UTF-8); {hint}"
            ) from None
        if "\0" in text:
            raise FactoryError(f"config {p} is a binary file (it contains NUL bytes); {hint}")
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FactoryError(f"{p} is not valid TOML: {exc}") from exc
        return cls.from_mapping(doc, source=str(p))

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "seed": self.seed, "hyperparameters": dict(self.hparams)}
