"""The checks file: cases it expands to, defaults, and errors that name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from check_support import write_checks

from hil.check.config import CheckConfigError, load_checks


def test_models_boards_and_budgets_expand_to_cases(tmp_path: Path) -> None:
    path = write_checks(
        tmp_path,
        """
runs = 2
baseline = "base/line.json"
[tolerance]
latency = "+2%"
flash = "+1 KiB"

[[check]]
model = "models/*.tflite"
boards = ["qemu-m4", "qemu-m0"]
max_latency_ms = 60
max_ram_kb = 16
[check.tolerance]
ram = "+512"

[[check]]
name = "dscnn-tight"
model = "models/digits-dscnn.tflite"
max_lsb_diff = 0
runs = 5
""",
    )
    checks = load_checks(path)
    assert [c.id for c in checks.cases] == [
        "digits-dscnn/qemu-m4",
        "digits-dscnn/qemu-m0",
        "digits-mobilenetv3/qemu-m4",
        "digits-mobilenetv3/qemu-m0",
        "dscnn-tight/qemu-m4",  # default board
    ]
    first, *_, last = checks.cases
    assert first.model_label == "models/digits-dscnn.tflite"
    assert first.budgets == {"max_latency_ms": 60.0, "max_ram_kb": 16.0}
    assert first.runs == 2 and last.runs == 5 and first.warmup == 1
    assert last.max_lsb_diff == 0 and first.max_lsb_diff == 1
    assert checks.baseline == tmp_path / "base" / "line.json"
    # File tolerances, overridden per check; unset metrics allow no increase.
    assert first.tolerances["latency"].percent == 2.0
    assert first.tolerances["flash"].amount == 1024
    assert first.tolerances["ram"].amount == 512
    assert last.tolerances["ram"].amount == 0
    assert first.tolerances["lsb"].amount == 0


def test_paths_are_relative_to_the_checks_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_checks(tmp_path, '[[check]]\nmodel = "models/digits-dscnn.tflite"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (case,) = load_checks(path).cases
    assert case.model == tmp_path / "models" / "digits-dscnn.tflite"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", "needs at least one [[check]]"),
        ("[[check]]\nboards = ['qemu-m4']\n", "missing 'model'"),
        (
            "[[check]]\nmodel = 'models/digits-dscnn.tflite'\nmax_latency = 5\n",
            "check #1 (models/digits-dscnn.tflite): unknown key 'max_latency'; allowed keys "
            "here: model, name",
        ),
        ("runz = 3\n[[check]]\nmodel = 'models/x.tflite'\n", "unknown key 'runz'"),
        (
            "[[check]]\nmodel = 'models/digits-dscnn.tflite'\nmax_ram_kb = -1\n",
            "'max_ram_kb' must be a positive number of KiB, not -1",
        ),
        (
            "[[check]]\nmodel = 'models/digits-dscnn.tflite'\nmax_flash_kb = '32'\n",
            "'max_flash_kb' must be a positive number of KiB, not '32'",
        ),
        (
            "[[check]]\nmodel = 'models/digits-dscnn.tflite'\nmax_lsb_diff = 2\n",
            "'max_lsb_diff' must be a number from 0 to 1",
        ),
        (
            "[[check]]\nmodel = 'models/digits-dscnn.tflite'\nboards = ['qemu-m7']\n",
            "'boards': unknown board 'qemu-m7'; known boards: nano33ble, pico, qemu-m0, qemu-m4",
        ),
        ("[[check]]\nmodel = 'models/nope.tflite'\n", "model 'models/nope.tflite' does not exist"),
        ("[[check]]\nmodel = 'models/*.onnx'\n", "pattern 'models/*.onnx' matches no file"),
        (
            "[[check]]\nmodel = 'models/*.tflite'\nname = 'both'\n",
            "'name' names one model but 'model' gives 2",
        ),
        (
            "[[check]]\nmodel = 'models/digits-dscnn.tflite'\n"
            "[[check]]\nmodel = 'models/digits-dscnn.tflite'\nmax_ram_kb = 9\n",
            "check #2 (models/digits-dscnn.tflite): case 'digits-dscnn/qemu-m4' is already "
            "defined by check #1",
        ),
        (
            "[tolerance]\nlatency = '-2%'\n[[check]]\nmodel = 'models/digits-dscnn.tflite'\n",
            "'tolerance.latency' must be a percentage",
        ),
        (
            "[tolerance]\nflash = '+2 ms'\n[[check]]\nmodel = 'models/digits-dscnn.tflite'\n",
            "'tolerance.flash' unit 'ms' does not fit flash",
        ),
        (
            "[tolerance]\nspeed = '1'\n[[check]]\nmodel = 'models/digits-dscnn.tflite'\n",
            "'tolerance.speed' unknown metric 'speed'; tolerances exist for latency, ram, flash",
        ),
        ("runs = 0\n[[check]]\nmodel = 'models/digits-dscnn.tflite'\n", "'runs' must be an"),
        (
            "[[check]]\nmodel = 'models/digits-dscnn.tflite'\nbackends = ['cmsis-nn', 'nope']\n",
            "'backends': unknown backend 'nope'; known: own, cmsis-nn, tflm",
        ),
        ("[[check]\nmodel = 1\n", "is not valid TOML"),
    ],
)
def test_errors_name_the_key_and_what_is_allowed(tmp_path: Path, body: str, expected: str) -> None:
    path = write_checks(tmp_path, body)
    with pytest.raises(CheckConfigError) as info:
        load_checks(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_a_missing_checks_file_says_where_to_find_an_example(tmp_path: Path) -> None:
    with pytest.raises(CheckConfigError, match=r"does not exist; see examples/checks.toml"):
        load_checks(tmp_path / "none.toml")


def test_the_bundled_example_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "checks.toml"
    checks = load_checks(example)
    assert checks.cases and checks.baseline is not None
    assert {c.board for c in checks.cases} <= {"qemu-m4", "qemu-m0"}
