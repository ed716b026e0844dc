"""Model fuzzing: seeded mutants of the bundled and the shared real models, through the bench's
public interface, must end in a report or a one-line error: never a traceback, a signal, a hang
or a QEMU process left behind.

Mutations (tests/support/tflite_mutate.py): byte flips and zeroed regions in the flatbuffer's
structure, truncations, corrupt offsets, operator options types and values, quantization scales,
zero points, vector lengths and quantized dimensions, tensor names. Every mutant is imported in
this process (`hil.importer.load_tflite_bytes`); a sample of those the importer accepts is
profiled with the `hil profile` command under QEMU. Bounded to about a minute on two loaded
cores; benchmarks/fuzz_models.py runs thousands and prints the counts.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from support.convert import session_cache_dir
from support.model_fuzz import import_outcome, model_paths, profile_outcome
from support.tflite_mutate import STRATEGIES, Mutant, mutants

SEED = 20261201
#: In-process imports per model (about 5 ms each).
IMPORT_MUTANTS = 250
#: `hil profile` runs per model, of mutants the importer accepts (5 to 12 s each on two cores:
#: the reference interpreters' start-up dominates).
PROFILED_PER_MODEL = 1

BUNDLED, SHARED = model_paths()
MODELS = [pytest.param(p, id=p.stem) for p in BUNDLED + SHARED] + (
    []
    if SHARED
    else [
        pytest.param(
            None,
            id="shared-models",
            marks=pytest.mark.skip(
                reason="no .tflite in ../shared/models (the MLPerf Tiny real models): only the "
                "bundled models are fuzzed"
            ),
        )
    ]
)


def test_every_model_is_fuzzed() -> None:
    assert BUNDLED, "examples/models/*.tflite is missing: nothing to fuzz"


def _save(failures: list[tuple[Mutant, object]], where: Path) -> str:
    lines = []
    for i, (m, outcome) in enumerate(failures):
        path = where / f"mutant{i}.tflite"
        path.write_bytes(m.data)
        lines.append(f"{m.label()} -> {outcome} (saved as {path})")
    return "\n".join(lines)


@pytest.mark.parametrize("model", MODELS)
def test_importing_mutants_is_clean(model: Path, tmp_path: Path) -> None:
    data = model.read_bytes()
    seen: Counter[str] = Counter()
    failures = []
    for m in mutants(model.name, data, SEED, IMPORT_MUTANTS):
        outcome = import_outcome(m.data)
        seen[outcome.kind] += 1
        if not outcome.clean:
            failures.append((m, outcome))
    assert not failures, _save(failures, tmp_path)
    # The mutations must reach both sides of the importer's judgement.
    assert seen["refused"] > IMPORT_MUTANTS // 4 and seen["accepted"] > 0, seen


def _survivors(model: Path, count: int, used: set[str]) -> list[Mutant]:
    """The first mutants of `model` that import cleanly, each of a strategy not in `used` while
    there are such (so the few profiled mutants cover as many strategies as they can)."""
    picked: list[Mutant] = []
    data = model.read_bytes()
    candidates = list(mutants(model.name, data, SEED + 1, 20 * len(STRATEGIES)))
    for fresh_only in (True, False):
        for m in candidates:
            if len(picked) == count:
                return picked
            if m in picked or (fresh_only and m.strategy in used):
                continue
            if import_outcome(m.data).kind == "accepted":
                picked.append(m)
                used.add(m.strategy)
    return picked


@pytest.mark.qemu
def test_profiling_mutants_ends_cleanly(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    missing = [t for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm") if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: run scripts/setup.sh")
    # A build cache of its own, kept between sessions (the mutants are seeded, so later
    # sessions reuse their builds); the QEMU left-behind check looks for this path.
    cache = session_cache_dir(request, tmp_path_factory, "tinyml-hil-fuzz-build")
    work = tmp_path_factory.mktemp("fuzz-mutants")
    failures = []
    kinds: Counter[str] = Counter()
    used: set[str] = set()
    for model in BUNDLED + SHARED:
        for i, m in enumerate(_survivors(model, PROFILED_PER_MODEL, used)):
            path = work / f"{model.stem}-{i}.tflite"
            path.write_bytes(m.data)
            outcome = profile_outcome(path, cache)
            kinds[outcome.row()] += 1
            if not outcome.clean:
                failures.append((m, outcome))
    assert not failures, _save(failures, work)
    assert sum(kinds.values()) >= len(BUNDLED) * PROFILED_PER_MODEL, kinds
    assert len(used) >= min(len(BUNDLED + SHARED), len(STRATEGIES)), used
