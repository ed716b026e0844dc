"""The tests' one path from a Keras model to a .tflite, and the on-disk cache of the results.

Every test model (the zoo in tests/zoo.py, the single-layer models of tests/support/
tiny_models.py and of the elementwise kernel tests) is converted by `to_tflite` and cached by
`cached_model`, so converter settings, TensorFlow's thread and log settings and the cache's
keys and atomic writes are the same everywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

#: int8: full-integer with int8 I/O (what the bench runs); int8_float_io: full-integer with
#: float I/O (QUANTIZE/DEQUANTIZE at the edges); float: no quantization; dynamic: int8 weights
#: with float activations; int16x8: int16 activations with int8 weights.
MODES = ("int8", "int8_float_io", "float", "dynamic", "int16x8")


def tensorflow() -> Any:
    """TensorFlow with one thread and quiet logs (the machine is shared, the models tiny)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already initialised by an earlier conversion
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf


def to_tflite(
    model: Any, representative: Callable[[], Iterator[Any]] | None, mode: str = "int8"
) -> bytes:
    """Convert a Keras model in one of `MODES`; the quantized modes calibrate on
    `representative` (a TFLite representative dataset: a generator function of input lists or
    dicts by input name)."""
    if mode not in MODES:
        raise ValueError(f"unknown conversion mode {mode!r}; known: {', '.join(MODES)}")
    tf = tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode in ("int8", "int8_float_io", "int16x8"):
        converter.representative_dataset = representative
    if mode in ("int8", "int8_float_io"):
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if mode == "int8":
        converter.inference_input_type = converter.inference_output_type = tf.int8
    if mode == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        converter.inference_input_type = converter.inference_output_type = tf.int16
    with (
        contextlib.redirect_stdout(io.StringIO()),  # Keras prints the SavedModel signature
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # "Statistics for quantized inputs were expected..."
        return converter.convert()


def cached_model(cache_dir: Path, name: str, key: str, make: Callable[[], bytes]) -> Path:
    """`cache_dir/<hash>/<name>.tflite`, written by `make()` on first use.

    The hash covers `key` (whatever defines the model: bump a version in it when a builder
    changes) and the TensorFlow version, since a converter upgrade changes the graph. The file
    itself is called `name`, so the imported graph is named after the model.
    """
    from importlib.metadata import version

    digest = hashlib.sha256(f"{key}-{version('tensorflow')}".encode()).hexdigest()[:12]
    path = cache_dir / digest / f"{name}.tflite"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(make())
        tmp.replace(path)  # atomic: a concurrent session never reads half a file
    return path


def session_cache_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Path:
    """pytest's cache folder `name`, so later sessions skip conversions; a temporary folder
    when the cache provider is off (-p no:cacheprovider)."""
    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir(name)) if cache else tmp_path_factory.mktemp(name)
