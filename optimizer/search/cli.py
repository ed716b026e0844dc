"""`hil search CONFIG --out RUN` and `hil search --resume RUN` (docs/search.md).

Registered with the `hil` CLI through the entry-point group ``hil.commands``::

    [project.entry-points."hil.commands"]
    search = "optimizer.search.cli:register"

Exit codes: 0 the budget is spent; 1 an error (bad config, locked run directory, broken
toolchain; message on stderr); 2 bad command line; 130 interrupted (resume it later).
"""

from __future__ import annotations

import argparse

from hil.argtypes import non_negative_int, positive_int
from hil.errors import HilError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `search` subcommand (the `hil.commands` entry-point contract)."""
    p = subparsers.add_parser(
        "search",
        help="search the Pareto front of accuracy, flash, RAM and latency on real boards",
        description="Train, compress and profile candidates proposed by a multi-objective "
        "optimizer until the budget is spent. Everything is recorded in RUN/search.db; a "
        "stopped or killed search continues with --resume RUN. Keys of CONFIG: docs/search.md.",
        epilog="exit codes: 0 done, 1 error, 2 usage, 130 interrupted (resume it)",
    )
    p.add_argument("config", nargs="?", metavar="CONFIG.toml",
                   help="search config, e.g. examples/search-digits-qemu-m4.toml")
    p.add_argument("--out", metavar="RUN", help="run directory to create")
    p.add_argument("--resume", metavar="RUN", help="continue the search in RUN")
    p.add_argument("--budget", type=positive_int, metavar="N",
                   help="number of trials (overrides search.budget; with --resume: raise it)")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="trials evaluated in parallel (overrides search.workers)")
    p.add_argument("--seed", type=non_negative_int, metavar="S", help="overrides search.seed")
    p.add_argument("--algorithm", metavar="NAME",
                   help="ars-mobo, qlognehvi, qnparego, nsga2 or sobol (overrides "
                   "search.algorithm)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run trials as Ray tasks on the cluster at ADDRESS (or 'auto')")
    p.add_argument("--plain", action="store_true",
                   help="plain log lines instead of the live display")
    p.set_defaults(func=search)


def search(args: argparse.Namespace) -> int:
    display = "plain" if args.plain else "auto"
    if args.resume:
        if args.config or args.out:
            raise HilError("give either CONFIG --out RUN (a new search) or --resume RUN, not both")
        if args.seed is not None or args.algorithm is not None:
            raise HilError(
                "--seed and --algorithm cannot change when resuming: a resumed search "
                "continues with its own; start a new run to change them"
            )
        from optimizer.search.store import RunStore

        # The lock first, before the slow imports: a second process is refused at once.
        store = RunStore.resume(args.resume)
        from optimizer.search.loop import resume_search

        summary = resume_search(store, budget=args.budget, workers=args.workers,
                                ray_address=args.ray, display=display)
    else:
        if not args.config or not args.out:
            raise HilError(
                "usage: hil search CONFIG.toml --out RUN (a new search) or "
                "hil search --resume RUN (continue one)"
            )
        from optimizer.search.store import check_new_run

        check_new_run(args.out)  # before the slow imports
        from optimizer.search.loop import start_search

        overrides = {"budget": args.budget, "workers": args.workers, "seed": args.seed,
                     "algorithm": args.algorithm}
        summary = start_search(args.config, args.out, overrides=overrides, ray_address=args.ray,
                               display=display)
    print(
        f"search finished: {summary.finished} of {summary.budget} trials evaluated "
        f"({summary.failed} failed, {summary.feasible} feasible), hypervolume "
        f"{summary.hypervolume:.4f}; everything is in {summary.run_dir}/search.db"
    )
    return 0
