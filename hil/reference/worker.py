"""The child that runs a reference interpreter: `python -m hil.reference.worker`.

Reads one pickled request from stdin, `{"reference": name, "model": bytes, "inputs": [arrays],
"arena_bytes": int}`, and writes one pickled answer to stdout: `{"outputs": [arrays]}` or
`{"refused": message}`, both with `"version"`. A request with `"tensors": [indices]` asks for
those tensors, intermediate ones included, and gets `{"tensors": {index: array}}`. Anything
else (an abort, a signal, a traceback) is the parent's to explain (`hil.reference.runner`).

It is started with `python -m`, not multiprocessing, so it never imports the caller's
`__main__`: a user's script without an `if __name__ == "__main__":` guard is not re-run.
"""

from __future__ import annotations

import os
import pickle
import sys


def main() -> int:
    """Serve one request; stdout carries only the answer (native prints go to stderr)."""
    answer_fd = os.dup(1)
    os.dup2(2, 1)  # whatever the interpreters print (C or Python) must not corrupt the answer
    sys.stdout = sys.stderr
    request = pickle.load(sys.stdin.buffer)

    from hil.reference.interpreters import INTERPRETERS, Refused, package_version

    interp = INTERPRETERS[request["reference"]]
    answer: dict[str, object] = {"version": package_version(interp.package)}
    try:
        if request.get("tensors") is not None:  # --layers-diff: intermediate tensors too
            if not hasattr(interp, "run_tensors"):
                raise Refused(f"{interp.title} cannot keep intermediate tensors; use litert")
            answer["tensors"] = interp.run_tensors(
                request["model"], request["inputs"], request["tensors"]
            )
        else:
            answer["outputs"] = interp.run(
                request["model"], request["inputs"], request["arena_bytes"]
            )
    except Refused as exc:
        answer["refused"] = str(exc)
    with os.fdopen(answer_fd, "wb") as out:
        pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
