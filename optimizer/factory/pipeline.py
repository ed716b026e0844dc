"""One candidate from start to finish: train, prune, fold BN, (QAT), convert, evaluate.

This module imports TensorFlow and runs inside the child process that
`optimizer.factory.candidate.run_candidate` starts; call it directly only when a crash may
take the caller down with it.

Determinism: Python, NumPy and TensorFlow are seeded from the config's seed, TF op determinism
is on and TF uses a fixed number of threads, so the same config and seed give the same weights,
accuracies and .tflite on the same machine and library versions. What is not reproducible:
`training_seconds`; results across different CPUs (oneDNN picks kernels by instruction set)
or library versions; and the thread count given to `run_candidate` changes the reduction
order, so compare records made with the same count.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from optimizer.factory import models, pruning, quantization
from optimizer.factory.config import CandidateConfig
from optimizer.factory.datasets import Splits
from optimizer.factory.errors import CandidateFailed

Progress = Callable[[str], None]


def setup(seed: int, threads: int) -> None:
    """Seeds and threading; call before anything runs in TensorFlow."""
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class _Watch(keras.callbacks.Callback):
    """Stops a fit with CandidateFailed as soon as the loss is NaN/inf; reports epochs."""

    def __init__(self, stage: str, progress: Progress) -> None:
        super().__init__()
        self.stage = stage
        self.progress = progress
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise CandidateFailed(
                f"loss became NaN in {self.stage} epoch {self.epoch + 1}; "
                "lower train.learning_rate or check the data for NaN/inf"
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.progress(self.stage)


def total_steps(cfg: CandidateConfig) -> int:
    """Progress units of a candidate: one per epoch of every stage, plus convert and evaluate."""
    steps = cfg["train.epochs"] + 2
    if cfg["pruning.mode"] != "none":
        steps += cfg["pruning.finetune_epochs"]
    if cfg["quantization.mode"] == "qat":
        steps += cfg["quantization.qat_epochs"]
    return steps


def _accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    logits = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))


def versions() -> dict[str, str]:
    import ai_edge_litert

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown"),
    }


def make_candidate(
    cfg: CandidateConfig, data: Splits, out_dir: Path, progress: Progress, threads: int = 1
) -> dict[str, Any]:
    """Train, compress and convert one candidate; writes `out_dir/model.tflite` and returns
    the record (without status fields, which the caller adds)."""
    setup(cfg.seed, threads)
    if not all(np.all(np.isfinite(x)) for x in (data.x_train, data.x_val, data.x_test)):
        raise CandidateFailed(f"dataset {data.name!r} contains NaN or inf inputs")
    start = time.perf_counter()
    arch = models.make_arch(
        cfg["model.family"], data.input_shape, data.num_classes,
        stages=cfg["model.stages"], blocks_per_stage=cfg["model.blocks_per_stage"],
        base_width=cfg["model.base_width"], width_multiplier=cfg["model.width_multiplier"],
        expansion=cfg["model.expansion"], squeeze_excitation=cfg["model.squeeze_excitation"],
    )
    lr, batch = cfg["train.learning_rate"], cfg["train.batch_size"]

    def fit(model: keras.Model, epochs: int, callbacks: list, stage: str) -> None:
        if epochs == 0:
            return
        model.compile(
            optimizer=keras.optimizers.Adam(lr),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=batch, verbose=0,
                  callbacks=[*callbacks, _Watch(stage, progress)])

    model = models.build(arch)
    dense_params = models.fold_batchnorm(model, arch).count_params()
    fit(model, cfg["train.epochs"], [], "train")

    masks = None
    mode = cfg["pruning.mode"]
    prune_args = {
        "sparsity": cfg["pruning.sparsity"],
        "schedule_kind": cfg["pruning.schedule"],
        "finetune_epochs": cfg["pruning.finetune_epochs"],
        "fit": lambda m, e, cb: fit(m, e, cb, "fine-tune"),
    }
    if mode == "structured":
        model, arch = pruning.prune_structured(
            model, arch, criterion=cfg["pruning.criterion"], x=data.x_train, y=data.y_train,
            **prune_args,
        )
    elif mode == "unstructured":
        masks = pruning.prune_unstructured(model, **prune_args)

    folded = models.fold_batchnorm(model, arch)
    if masks is not None:
        masks = masks.transfer(folded)
    if cfg["quantization.mode"] == "qat":
        quantization.qat_finetune(
            folded, data.x_train, data.y_train, epochs=cfg["quantization.qat_epochs"],
            learning_rate=lr / 10, batch_size=batch, per_channel=cfg["quantization.per_channel"],
            seed=cfg.seed, masks=masks.masks if masks is not None else None,
            on_epoch=lambda _: progress("quantization-aware training"),
        )
    # Training, pruning, QAT and calibration above use the training split only. Validation
    # accuracy is what a search may select on; test accuracy is reported, never selected on.
    val_accuracy_float = _accuracy(folded, data.x_val, data.y_val)
    test_accuracy_float = _accuracy(folded, data.x_test, data.y_test)

    export = models.build(arch, batch_size=1, batchnorm=False)
    models.copy_weights(folded, export)
    calibration = data.x_train[: cfg["quantization.calibration_samples"]]
    tflite = quantization.convert(export, calibration, per_channel=cfg["quantization.per_channel"])
    progress("convert")
    stats = quantization.inspect(tflite)
    unsupported = quantization.unsupported_ops(stats["ops"])
    if unsupported:
        raise CandidateFailed(f"the converted model uses ops the bench lacks: {unsupported}")
    val_accuracy_int8 = quantization.evaluate_int8(tflite, data.x_val, data.y_val)
    test_accuracy_int8 = quantization.evaluate_int8(tflite, data.x_test, data.y_test)
    progress("evaluate")
    seconds = time.perf_counter() - start

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.tflite").write_bytes(tflite)
    return {
        **cfg.to_dict(),
        "val_accuracy_float": val_accuracy_float,
        "val_accuracy_int8": val_accuracy_int8,
        "test_accuracy_float": test_accuracy_float,
        "test_accuracy_int8": test_accuracy_int8,
        "params": int(folded.count_params()),
        "params_before_pruning": int(dense_params),
        "weight_sparsity": masks.sparsity() if masks is not None else 0.0,
        "macs": models.count_macs(folded),
        **stats,
        "hidden_widths": [b.hidden for b in arch.blocks],
        "tflite_bytes": len(tflite),
        "training_seconds": round(seconds, 3),
        "versions": versions(),
    }
