"""CLI: argument errors, exit codes for budgets/mismatch/fit, clean error messages, `hil boards`."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from test_report import make_report

from hil import cli
from hil.errors import ModelTooLargeError
from hil.report import JSON_CONTRACT_KEYS, Budgets, Report

profile_module = importlib.import_module("hil.profile")


@pytest.fixture
def fake_profile(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Replace the measurement with a canned Report; record the arguments it was called with."""
    seen: dict[str, object] = {}

    def fake(model: str, board: str, **kwargs: object) -> Report:
        seen.update(kwargs, model=model, board=board)
        limits = Budgets.coerce(kwargs["budgets"])  # type: ignore[arg-type]
        return make_report(budgets=limits.verdicts(4.6875, 12_000, 40_000), **seen.pop("extra", {}))

    monkeypatch.setattr(profile_module, "profile", fake)
    return seen


def test_profile_passes_options_and_writes_json(
    fake_profile: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    code = cli.main(
        [
            "profile",
            "m.tflite",
            "--board",
            "qemu-m0",
            "--runs",
            "3",
            "--warmup",
            "0",
            "--seed",
            "7",
            "--json",
            str(out),
            "--quiet",
        ]
    )
    assert code == cli.EXIT_OK
    assert fake_profile["board"] == "qemu-m0" and fake_profile["runs"] == 3
    assert fake_profile["warmup"] == 0 and fake_profile["seed"] == 7
    assert fake_profile["progress"] is False
    assert json.loads(out.read_text()).keys() >= JSON_CONTRACT_KEYS
    assert capsys.readouterr().out == ""  # --quiet: no table


def test_table_is_printed_without_quiet(
    fake_profile: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["profile", "m.tflite"]) == cli.EXIT_OK
    assert "tiny on qemu-m4" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        (["--max-latency-ms", "5"], cli.EXIT_OK),
        (["--max-latency-ms", "4"], cli.EXIT_BUDGET),
        (["--max-ram-kb", "11"], cli.EXIT_BUDGET),
        (["--max-flash-kb", "39"], cli.EXIT_BUDGET),
        (["--max-flash-kb", "40", "--max-ram-kb", "12"], cli.EXIT_OK),
    ],
)
def test_budgets_set_the_exit_code(
    fake_profile: dict[str, object], capsys: pytest.CaptureFixture[str], flags: list[str], code: int
) -> None:
    assert cli.main(["profile", "m.tflite", "--quiet", *flags]) == code
    if code == cli.EXIT_BUDGET:
        assert "over budget" in capsys.readouterr().err


def test_output_mismatch_wins_over_budgets(
    fake_profile: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_profile["extra"] = {"max_abs_diff": 3.0}
    assert cli.main(["profile", "m.tflite", "--quiet", "--max-latency-ms", "1"]) == (
        cli.EXIT_MISMATCH
    )
    assert "3 LSB" in capsys.readouterr().err


def test_model_too_large_has_its_own_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def too_large(*args: object, **kwargs: object) -> Report:
        raise ModelTooLargeError("model 'big' does not fit: it needs 300 KiB of RAM")

    monkeypatch.setattr(profile_module, "profile", too_large)
    assert cli.main(["profile", "big.tflite", "--quiet"]) == cli.EXIT_TOO_LARGE
    err = capsys.readouterr().err
    assert err.startswith("error: model 'big' does not fit") and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["profile"],
        ["profile", "m.tflite", "--runs", "0"],
        ["profile", "m.tflite", "--warmup", "-1"],
        ["profile", "m.tflite", "--max-latency-ms", "-3"],
        ["profile", "m.tflite", "--bogus"],
        ["nonsense"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == cli.EXIT_USAGE
    assert "usage:" in capsys.readouterr().err


def _error_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main(argv) == cli.EXIT_ERROR
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_unknown_board_lists_the_boards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"\0" * 64)
    msg = _error_of(["profile", str(model), "--board", "no-such-board", "--quiet"], capsys)
    assert "no-such-board" in msg and "qemu-m4" in msg


def test_missing_and_corrupt_model_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.tflite"
    assert str(missing) in _error_of(["profile", str(missing), "--quiet"], capsys)
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x1c\0\0\0TFL3" + b"\xff" * 200)
    assert "corrupt or truncated" in _error_of(["profile", str(corrupt), "--quiet"], capsys)
    npy = tmp_path / "x.npy"
    assert "x.npy" in _error_of(["profile", str(missing), "--input", str(npy), "--quiet"], capsys)


def test_boards_lists_every_board(capsys: pytest.CaptureFixture[str]) -> None:
    from hil.boards import list_boards

    assert cli.main(["boards"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    for board in list_boards():
        assert board.name in out
    assert "MHz" in out and "KiB" in out
