from __future__ import annotations

import itertools
import json
from pathlib import Path

from optimizer.bench import main


def test_bench_writes_table_json_and_plot(tmp_path: Path, capsys) -> None:
    out, png = tmp_path / "out.json", tmp_path / "out.png"
    code = main(
        [
            "--problem",
            "branin-currin",
            "--algorithms",
            "sobol,nsga2",
            "--budget",
            "30",
            "--seeds",
            "2",
            "--json",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result["results"]) == {"sobol", "nsga2"}
    hv = result["results"]["nsga2"]["hv"]
    assert len(hv) == 2 and all(len(run) == 30 for run in hv)
    assert all(a <= b for run in hv for a, b in itertools.pairwise(run))
    assert png.stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "HV@25" in printed and "HV@30" in printed and "nsga2" in printed


def test_bench_reports_bad_names_without_traceback(capsys) -> None:
    assert main(["--problem", "zdt9", "--budget", "5", "--seeds", "1"]) == 2
    assert "unknown problem 'zdt9'" in capsys.readouterr().out
    assert main(["--problem", "dtlz2", "--algorithms", "tpe", "--seeds", "1"]) == 2
