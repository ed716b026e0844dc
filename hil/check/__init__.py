"""`hil check`: model regression guards for CI, on QEMU or boards, with CI-server reports.

A TOML checks file (`config`) lists models, boards and budgets; the runner profiles every
model x board through `hil.profile` in parallel (`runner`), judges budgets and correctness
(`result`) and regressions against a baseline (`baseline`), and the results become one table
(`table`), JUnit XML (`junit`), JSON (the baseline format) and markdown (`markdown`).
The user guide, with CI workflows, is docs/ci.md.

Exit codes of `hil check` (the most serious case wins, in this order; 0-5 mean what they mean
for `hil profile`):
  1  a case could not be measured, or the checks file or baseline is unusable
  4  outputs differ from the reference by more than the case's max_lsb_diff
  5  a model does not fit its board
  6  correctness was not checked (no reference interpreter could run the model)
  3  a budget is exceeded
  7  a figure regressed beyond its tolerance over the baseline
  0  every case passed (flaky passes included, reported as flaky)
  2  bad command line; 130 interrupted
"""

from hil.check.config import CheckCase, CheckConfigError, CheckFile, load_checks
from hil.check.result import CaseResult, exit_code
from hil.check.runner import run_checks

__all__ = [
    "CaseResult",
    "CheckCase",
    "CheckConfigError",
    "CheckFile",
    "exit_code",
    "load_checks",
    "run_checks",
]
