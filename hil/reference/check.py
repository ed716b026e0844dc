"""The correctness check: which reference(s) to ask, and what their answers say about the
device's outputs.

Choices (`hil.profile(reference=...)`, `hil profile --reference`):
- `auto` (default): LiteRT; when LiteRT cannot run the model (it refuses it, crashes or hangs),
  TFLM, and the check's note says why.
- `litert`, `tflm`: that reference only.
- `both`: both, each reported; the check passes only when both ran and both agree.
The check is never skipped silently: when no asked-for reference can run the model its status
is "not done" with the reasons, and the caller still gets every other figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hil.errors import HilError
from hil.measure import MAX_LSB_DIFF
from hil.reference.runner import DEFAULT_TIMEOUT_S, ReferenceRun, run_reference, title
from hil.report import CHECK_FAILED, CHECK_NOT_DONE, CHECK_PASSED, ReferenceCheck

#: What `reference=` accepts.
CHOICES: tuple[str, ...] = ("auto", "litert", "tflm", "both")

#: Expected outputs -> (exact-match rate, max abs diff in LSB) of the device's outputs.
Compare = Callable[[list[np.ndarray]], tuple[float, float]]


@dataclass(frozen=True)
class CheckResult:
    """The whole check: its status, who checked, why (when it matters), worst figures."""

    status: str
    reference: str  # the references that checked, joined by '+'; "" when none could
    note: str
    exact_rate: float  # NaN when not done
    max_abs_diff: float  # NaN when not done
    checks: list[ReferenceCheck]


def check_outputs(
    model: bytes,
    inputs: list[np.ndarray],
    compare: Compare,
    choice: str = "auto",
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> CheckResult:
    """Run the reference(s) `choice` names on `inputs` and judge the device's outputs with
    `compare`. Raises HilError only for an unknown choice: a reference that cannot run the
    model makes the check "not done", never an exception."""
    if choice not in CHOICES:
        raise HilError(f"unknown reference {choice!r}: choose one of {', '.join(CHOICES)}")
    names = {"auto": ["litert"], "both": ["litert", "tflm"]}.get(choice, [choice])
    checks = [_check(run_reference(n, model, inputs, timeout=timeout), compare) for n in names]
    fell_back = choice == "auto" and checks[0].status == CHECK_NOT_DONE
    if fell_back:
        checks.append(_check(run_reference("tflm", model, inputs, timeout=timeout), compare))

    ran = [c for c in checks if c.status != CHECK_NOT_DONE]
    if any(c.status == CHECK_FAILED for c in ran):
        status = CHECK_FAILED
    elif not ran or (len(ran) < len(checks) and not fell_back):
        status = CHECK_NOT_DONE
    else:
        status = CHECK_PASSED
    note = "; ".join(f"{title(c.reference)}: {c.note}" for c in checks if c.note)
    if not ran:
        note = f"no reference could run the model, so its outputs were not checked. {note}"
    elif status == CHECK_NOT_DONE:
        note = f"not every reference asked for could run the model. {note}"
    elif fell_back:
        note = (
            f"checked with {title(ran[0].reference)}: {title(checks[0].reference)} could not "
            f"run the model ({checks[0].note})"
        )
    rates = [c.exact_rate for c in ran if c.exact_rate is not None]
    diffs = [c.max_abs_diff for c in ran if c.max_abs_diff is not None]
    return CheckResult(
        status,
        "+".join(c.reference for c in ran),
        note,
        min(rates) if rates else math.nan,
        max(diffs) if diffs else math.nan,
        checks,
    )


def _check(run: ReferenceRun, compare: Compare) -> ReferenceCheck:
    if run.outputs is None:
        return ReferenceCheck(run.reference, run.version, CHECK_NOT_DONE, None, None, run.problem)
    try:
        exact, worst = compare(run.outputs)
    except HilError as exc:  # e.g. output counts or sizes differ: the two disagree on the model
        return ReferenceCheck(run.reference, run.version, CHECK_FAILED, 0.0, math.inf, str(exc))
    status = CHECK_PASSED if worst <= MAX_LSB_DIFF else CHECK_FAILED
    return ReferenceCheck(run.reference, run.version, status, exact, worst, "")
