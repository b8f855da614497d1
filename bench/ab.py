"""Two versions of the service, compared by CPU per token in paired, interleaved bursts.

A change worth 2-3% of a token's CPU is lost in this machine's noise when two full runs
of bench/run.py are compared: other work on the shared cores moves a run's CPU per token
by 5-10%. Here both versions are deployed side by side (each with its own Redis and
emulator, the same workers, users and stages) and take turns: short closed-loop bursts
(wrk, or the Python generator), A then B then B then A..., so whatever the machine does
meanwhile falls on both alike. Each burst gives the workers' CPU per token and the load
generator's (a smaller answer, or fewer writes, costs the client less too); the report
is the median of B/A over the pairs, and how many pairs had B cheaper.

    python bench/ab.py --before /path/to/checkout-a            # A: that checkout, B: this one
    python bench/ab.py --before /tmp/a --after /tmp/b --pairs 12 --seconds 4

A checkout is any directory holding a `token_service` package of this repository (a
`git worktree add` of another commit); it runs with this environment's dependencies.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from deployment import Deployment, deployed, warm_stages
from run import measured_closed_loop, run_loadgen

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def deployed_from(checkout: Path, args: argparse.Namespace) -> Iterator[Deployment]:
    """The service of `checkout` (its processes import it first), deployed and warmed."""
    with ExitStack() as stack:
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(checkout)
        try:
            d = stack.enter_context(
                deployed(workers=args.workers, users=args.users, stages=args.stages)
            )
        finally:
            # Only the processes started above are the checkout's.
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved
        warm_stages(d)
        run_loadgen({**d.spec, "mode": "closed", "connections": 16, "seconds": 2}, d.workdir)
        yield d


def burst(args: argparse.Namespace, d: Deployment) -> dict[str, float]:
    """One closed-loop burst: tokens per second, and CPU µs per token (workers, generator),
    counted as bench/run.py counts them."""
    sat, cpu = measured_closed_loop(args, d.spec, d.workdir, {"workers": d.worker_pids()})
    if sat["errors"]:
        raise RuntimeError(f"non-201 answers in a burst: {sat['errors']}")
    return {"rate": sat["rate"], "workers": cpu["workers"], "generator": cpu["load generator"]}


def compare(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        a = stack.enter_context(deployed_from(args.before.resolve(), args))
        b = stack.enter_context(deployed_from(args.after.resolve(), args))
        pairs: list[tuple[dict[str, float], dict[str, float]]] = []
        for i in range(args.pairs):
            # ABBA: neither version always runs first (a machine warming or cooling
            # during the run would otherwise favour one).
            if i % 2 == 0:
                on_a = burst(args, a)
                on_b = burst(args, b)
            else:
                on_b = burst(args, b)
                on_a = burst(args, a)
            pairs.append((on_a, on_b))
            print(json.dumps({"pair": i, "a": pairs[-1][0], "b": pairs[-1][1]}))
    return summary(pairs)


def summary(pairs: list[tuple[dict[str, float], dict[str, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"pairs": len(pairs)}
    for figure in ("workers", "generator", "rate"):
        ratios = [b[figure] / a[figure] for a, b in pairs]
        out[figure] = {
            "a_median": statistics.median(a[figure] for a, _ in pairs),
            "b_median": statistics.median(b[figure] for _, b in pairs),
            "b_over_a_median": statistics.median(ratios),
            "b_lower_in": sum(r < 1 for r in ratios),
        }
    return out


def report(result: Mapping[str, Any], args: argparse.Namespace) -> str:
    lines = [f"A/B in {result['pairs']} pairs of {args.seconds:g} s bursts (A {args.before}):"]
    for figure, unit in (("workers", "µs/token"), ("generator", "µs/token"), ("rate", "/s")):
        f = result[figure]
        lines.append(
            f"- {figure}: A {f['a_median']:.0f} {unit}, B {f['b_median']:.0f} {unit}; "
            f"B/A median {f['b_over_a_median']:.3f}, B lower in {f['b_lower_in']} "
            f"of {result['pairs']}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="checkout A")
    parser.add_argument("--after", type=Path, default=ROOT, help="checkout B (this one)")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--stages", type=int, default=50)
    parser.add_argument("--loadgen-kind", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args()
    started = time.monotonic()
    print(report(compare(args), args))
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
