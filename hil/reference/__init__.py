"""The reference side of the correctness check, and the inputs of a profiling run.

- `inputs`: seeded random inputs and the user's .npy files, checked against the model's input
  tensors as the bench's own importer reads them (no interpreter involved).
- `interpreters`: the reference interpreters, LiteRT (BUILTIN_REF kernels) and TFLM (its
  reference kernels on the host), behind one protocol.
- `runner` / `worker`: every interpreter run happens in a child, `python -P -m
  hil.reference.worker`, fed over a pipe: an interpreter that aborts or hangs costs a child,
  never the bench, and the caller's `__main__` is never re-imported.
- `check`: which reference(s) to ask (`auto`, `litert`, `tflm`, `both`) and the verdict.

Importing this package imports neither ai-edge-litert nor tflite-micro nor TensorFlow.
"""

from hil.reference.check import CHOICES, CheckResult, check_outputs
from hil.reference.inputs import (
    ModelSource,
    TensorSpec,
    check_inputs,
    input_specs,
    load_npy_inputs,
    output_specs,
    random_inputs,
)
from hil.reference.runner import (
    DEFAULT_TIMEOUT_S,
    ReferenceRun,
    reference_outputs,
    reference_tensors,
    run_reference,
)

__all__ = [
    "CHOICES",
    "DEFAULT_TIMEOUT_S",
    "CheckResult",
    "ModelSource",
    "ReferenceRun",
    "TensorSpec",
    "check_inputs",
    "check_outputs",
    "input_specs",
    "load_npy_inputs",
    "output_specs",
    "random_inputs",
    "reference_outputs",
    "reference_tensors",
    "run_reference",
]
