"""A bounded soak: the deployed service at a fixed rate for minutes, memory and connections sampled.

The service as deployed (bench/deployment.py: uvicorn, workers = cores, Redis, limits on
but high, mapping log on) is driven by a separate load-generator process at a fixed rate
(open model, latency from the scheduled send time) well below saturation: by default half
of what a short closed-loop probe reaches. Every interval the load generator reports its
201s, non-201s and latency percentiles, and this process samples, from /proc, each uvicorn
worker's and the master's RSS, open file descriptors and TCP sockets, and Redis's
connected_clients and used_memory.

Verdict, judged on the samples after the warm-up (the first half of the run by default,
so the allocator, the app-JWT verification cache and the connection pools have settled):

- errors: every scheduled request answered 201 (no non-201, no broken connection);
- file descriptors and TCP sockets of each process, less its Redis connections: end -
  start of the window <= 4 (the load generator's keep-alive connections are fixed);
- Redis connections: connected_clients never above the idle service's count plus the
  probe's and the soak's connections plus 2 per worker (each request in flight holds
  at most one pooled connection; a pool keeps its high-water mark, which is not a leak);
- RSS of each process: least-squares slope over the window <= 0.5 MiB/min, and end -
  start of the window <= 2 MiB (at ~700 tokens/s, 0.5 MiB/min is < 13 bytes per token).

Redis used_memory grows by design (one mapping record per token, kept until the token
expires plus the retention): it is reported per token, not judged.

    python bench/soak.py                      # 5 minutes (make soak)
    python bench/soak.py --seconds 10 --interval 1 --output /tmp/soak.md --no-fail
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import uvloop
from deployment import BodyConn, Deployment, deployed, percentile, process_figures
from run import _requests, run_loadgen

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "soak.md"

FD_SLACK = 4
RSS_SLOPE_MIB_PER_MIN = 0.5
RSS_GROWTH_MIB = 2.0
PROBE_CONNECTIONS = 32


# ---------------------------------------------------------------- load generator (own process)


class Tally:
    """Answers of one interval, and of the whole run."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.every: list[float] = []
        self.ok = 0
        self.errors: dict[str, int] = {}
        self.total_ok = 0
        self.total_errors: dict[str, int] = {}

    def answered(self, status: int, latency: float) -> None:
        self.lat.append(latency)
        self.every.append(latency)
        if status == 201:
            self.ok += 1
            self.total_ok += 1
        else:
            self.failed(str(status))

    def failed(self, kind: str) -> None:
        for bucket in (self.errors, self.total_errors):
            bucket[kind] = bucket.get(kind, 0) + 1

    def interval(self, t: float) -> dict[str, Any]:
        """This interval's figures; the next interval starts empty."""
        lat = sorted(self.lat)
        line = {
            "t": round(t, 2),
            "ok": self.ok,
            "errors": self.errors,
            "p50_ms": percentile(lat, 50) * 1000,
            "p99_ms": percentile(lat, 99) * 1000,
            "max_ms": (lat[-1] if lat else 0.0) * 1000,
        }
        self.lat, self.ok, self.errors = [], 0, {}
        return line

    def summary(self, sent: int, elapsed: float) -> dict[str, Any]:
        every = sorted(self.every)
        return {
            "done": True,
            "sent": sent,
            "ok": self.total_ok,
            "errors": self.total_errors,
            "seconds": elapsed,
            "achieved_rate": sent / elapsed,
            "p50_ms": percentile(every, 50) * 1000,
            "p99_ms": percentile(every, 99) * 1000,
            "max_ms": (every[-1] if every else 0.0) * 1000,
        }


async def _soak(spec: Mapping[str, Any]) -> None:
    """Fixed rate for `seconds`; one JSON line per interval, then a summary line."""
    reqs = _requests(spec)
    rate: float = spec["rate"]
    total = int(rate * spec["seconds"])
    interval: float = spec["interval"]
    idle: asyncio.Queue[BodyConn] = asyncio.Queue()
    for _ in range(spec["connections"]):
        idle.put_nowait(await BodyConn.open(spec["port"]))
    tally = Tally()
    start = time.perf_counter() + 0.05

    async def one(i: int, scheduled: float) -> None:
        conn = await idle.get()
        try:
            status, _ = await conn.request(reqs[i % len(reqs)])
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            tally.failed("transport")
            conn.close()
            idle.put_nowait(await BodyConn.open(spec["port"]))
            return
        idle.put_nowait(conn)
        tally.answered(status, time.perf_counter() - scheduled)

    async def reporter() -> None:
        k = 1
        while True:
            await asyncio.sleep(max(0.0, start + k * interval - time.perf_counter()))
            print(json.dumps(tally.interval(k * interval)), flush=True)
            k += 1

    ticker = asyncio.create_task(reporter())
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    ticker.cancel()
    print(json.dumps(tally.interval(elapsed)), flush=True)
    print(json.dumps(tally.summary(total, elapsed)), flush=True)
    # Stay connected until the parent has taken its last sample.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    while not idle.empty():
        idle.get_nowait().close()


def loadgen_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    uvloop.install()
    asyncio.run(_soak(spec))


# ---------------------------------------------------------------- sampling


@dataclass
class Proc:
    rss_kib: int
    fds: int
    tcp: int
    #: TCP connections to Redis (the connection pool's), counted apart from the rest.
    redis: int
    close_wait: int


@dataclass
class Sample:
    t: float
    load: dict[str, Any]
    #: pid -> its figures; the master first.
    procs: dict[int, Proc]
    redis_clients: int
    redis_used: int


def take_sample(
    t: float, load: dict[str, Any], pids: Sequence[int], client: redis.Redis, redis_port: int
) -> Sample:
    figures = process_figures(list(pids), redis_port)
    info = client.info()
    return Sample(
        t=t,
        load=load,
        procs={
            pid: Proc(f.rss_kib, f.fds, f.tcp, f.tcp_to_port, f.tcp_states.get("close_wait", 0))
            for pid, f in figures.items()
        },
        redis_clients=int(info["connected_clients"]),
        redis_used=int(info["used_memory"]),
    )


def soak(
    d: Deployment, args: argparse.Namespace, rate: float, pids: Sequence[int]
) -> tuple[list[Sample], dict[str, Any]]:
    """Run the load generator; sample at each of its interval lines, while it is connected."""
    client = redis.Redis(port=d.redis_port)
    samples = [take_sample(0.0, {}, pids, client, d.redis_port)]
    spec_path = d.workdir / "soak-spec.json"
    spec = {
        **d.spec,
        "rate": rate,
        "seconds": args.seconds,
        "interval": args.interval,
        "connections": args.connections,
    }
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.Popen(
        [sys.executable, __file__, "--loadgen", str(spec_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    summary: dict[str, Any] = {}
    for raw in proc.stdout:
        line = json.loads(raw)
        if line.get("done"):
            summary = line
            proc.stdin.write("sampled\n")  # the load generator may now close its connections
            proc.stdin.close()
            continue
        sample = take_sample(line["t"], line, pids, client, d.redis_port)
        samples.append(sample)
        if args.verbose:
            print(_sample_row(sample, pids), flush=True)
    if proc.wait(timeout=60) != 0 or not summary:
        raise RuntimeError(f"soak load generator failed ({proc.returncode})")
    client.close()
    return samples, summary


# ---------------------------------------------------------------- verdict


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return 60 * sum((t - mx) * (v - my) for t, v in points) / var


@dataclass
class Rule:
    name: str
    figure: str
    bound: str
    passed: bool


def _flat(name: str, before: int, after: int) -> Rule:
    return Rule(name, f"{before} -> {after}", f"growth <= {FD_SLACK}", after - before <= FD_SLACK)


def _process_rules(role: str, pid: int, window: list[Sample], rate: float) -> list[Rule]:
    first, last = window[0].procs[pid], window[-1].procs[pid]
    points = [(s.t, s.procs[pid].rss_kib / 1024) for s in window if pid in s.procs]
    slope = slope_per_minute(points)
    growth = (last.rss_kib - first.rss_kib) / 1024
    return [
        _flat(
            f"{role} open fds, less Redis connections",
            first.fds - first.redis,
            last.fds - last.redis,
        ),
        _flat(
            f"{role} TCP sockets, less Redis connections",
            first.tcp - first.redis,
            last.tcp - last.redis,
        ),
        Rule(
            f"{role} RSS slope",
            f"{slope:+.3f} MiB/min over {len(points)} samples "
            f"({slope * 2**20 / 60 / rate:+.1f} bytes per token)",
            f"<= {RSS_SLOPE_MIB_PER_MIN} MiB/min",
            slope <= RSS_SLOPE_MIB_PER_MIN,
        ),
        Rule(
            f"{role} RSS growth",
            f"{first.rss_kib / 1024:.1f} -> {last.rss_kib / 1024:.1f} MiB ({growth:+.2f})",
            f"<= {RSS_GROWTH_MIB} MiB",
            growth <= RSS_GROWTH_MIB,
        ),
    ]


def judge(o: Outcome) -> list[Rule]:
    window = [s for s in o.samples if s.t >= o.warmup]
    if len(window) < 2:
        window = o.samples[-2:]
    summary = o.summary
    rules = [
        Rule(
            "errors",
            f"{summary['ok']} of {summary['sent']} answered 201; non-201 or broken: "
            f"{summary['errors'] or 'none'}",
            "0 non-201, every request answered",
            not summary["errors"] and summary["ok"] == summary["sent"],
        )
    ]
    for role, pid in zip(_roles(o.pids), o.pids, strict=True):
        if not all(pid in s.procs for s in window):
            rules.append(Rule(f"{role} alive", "process gone", "alive to the end", False))
            continue
        rules += _process_rules(role, pid, window, o.rate)
    # Each request in flight holds at most one pooled Redis connection, and a load
    # generator has at most its connections' worth of requests in flight: over the idle
    # service's count, the pools together never need more than the probe's plus the
    # soak's connections (a pool keeps its high-water mark: which worker got how many
    # of each load's connections differs), plus 2 per worker for background tasks.
    # More means connections are not given back.
    peak = max(s.redis_clients for s in o.samples)
    in_flight = o.probe_connections + o.args.connections
    bound = o.idle_redis_clients + in_flight + 2 * (len(o.pids) - 1)
    rules.append(
        Rule(
            "Redis connected_clients, peak",
            f"{peak} (idle service: {o.idle_redis_clients}; "
            f"window {window[0].redis_clients} -> {window[-1].redis_clients})",
            f"<= idle + {in_flight} in flight + 2 per worker = {bound}",
            peak <= bound,
        )
    )
    return rules


def _roles(pids: Sequence[int]) -> list[str]:
    return ["master", *(f"worker {i + 1}" for i in range(len(pids) - 1))]


# ---------------------------------------------------------------- report


@dataclass
class Outcome:
    args: argparse.Namespace
    rate: float
    #: The closed-loop rate the soak rate was derived from (None: set by --rate).
    probe: float | None
    pids: Sequence[int]
    #: Redis connected_clients with the service up and no load yet.
    idle_redis_clients: int
    #: The probe's connections (0 without a probe).
    probe_connections: int
    samples: list[Sample]
    summary: Mapping[str, Any]
    warmup: float


def _sample_row(s: Sample, pids: Sequence[int]) -> str:
    procs = " · ".join(
        f"{s.procs[p].rss_kib / 1024:.1f}/{s.procs[p].fds}/{s.procs[p].tcp}/{s.procs[p].redis}"
        if p in s.procs
        else "gone"
        for p in pids
    )
    load = s.load
    latency = f"{load['p50_ms']:.1f} / {load['p99_ms']:.1f}" if load else "-"
    errors = sum(load.get("errors", {}).values()) if load else 0
    return (
        f"| {s.t:.0f} | {load.get('ok', '-')} | {errors} | {latency} | {procs} | "
        f"{s.redis_clients} | {s.redis_used / 2**20:.1f} |"
    )


def report(o: Outcome, rules: list[Rule]) -> str:
    args, samples, summary = o.args, o.samples, o.summary
    passed = all(r.passed for r in rules)
    how = "set by --rate"
    if o.probe:
        how = f"{args.fraction:g} of a {o.probe:.0f}/s closed-loop probe"
    redis_growth = samples[-1].redis_used - samples[0].redis_used
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: soak {args.seconds:.0f} s at "
        f"{o.rate:.0f} tokens/s ({how}): **{'PASS' if passed else 'FAIL'}**",
        "",
        f"- machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}; service workers {len(o.pids) - 1}, "
        f"{args.connections} keep-alive connections, sample every {args.interval:g} s, "
        f"judged after a {o.warmup:.0f} s warm-up",
        f"- tokens: {summary['sent']} sent at {summary['achieved_rate']:.0f}/s, "
        f"{summary['ok']} answered 201, non-201 or broken: {summary['errors'] or 'none'}; "
        f"latency p50 {summary['p50_ms']:.2f} ms, p99 {summary['p99_ms']:.2f} ms, "
        f"max {summary['max_ms']:.1f} ms",
        f"- Redis used_memory {samples[0].redis_used / 2**20:.1f} -> "
        f"{samples[-1].redis_used / 2**20:.1f} MiB "
        f"({redis_growth / max(1, summary['ok']):.0f} bytes per token: the mapping records, "
        "kept by design until each token's expiry plus the retention; not judged)",
        "",
        "| rule | figure | bound | result |",
        "|---|---|---|---|",
        *(
            f"| {r.name} | {r.figure} | {r.bound} | {'pass' if r.passed else '**FAIL**'} |"
            for r in rules
        ),
        "",
        "Samples (each process: RSS MiB / open fds / TCP sockets / of which to Redis; "
        + ", ".join(_roles(o.pids))
        + "):",
        "",
        "| t s | 201s | non-201 | p50 / p99 ms | processes | Redis clients | Redis used MiB |",
        "|---|---|---|---|---|---|---|",
        *(_sample_row(s, o.pids) for s in samples),
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=300, help="soak length (default 300)")
    parser.add_argument("--interval", type=float, default=5, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=0, help="tokens/s (default: probe)")
    parser.add_argument("--fraction", type=float, default=0.5, help="of the probed saturation")
    parser.add_argument("--probe-seconds", type=float, default=5)
    parser.add_argument(
        "--warmup", type=float, default=0.5, help="fraction of the run not judged (warm-up)"
    )
    parser.add_argument("--connections", type=int, default=64)
    # More users (so more distinct app JWTs) than the app-JWT verification cache holds
    # (4,096 per worker): the soak goes through its eviction, as a day of real traffic does.
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--stages", type=int, default=50)
    parser.add_argument("--workers", type=int, default=0, help="default: the core count")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when it fails")
    parser.add_argument("--verbose", action="store_true", help="print each sample as taken")
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args.loadgen)
        return
    workers = args.workers or os.cpu_count() or 1
    with deployed(workers=workers, users=args.users, stages=args.stages) as d:
        pids = [d.service.pid, *d.worker_pids()]
        with redis.Redis(port=d.redis_port) as client:
            idle_clients = int(client.info("clients")["connected_clients"])
        probe = None
        rate = args.rate
        if not rate:
            print(
                f"probe: closed loop, {PROBE_CONNECTIONS} connections, "
                f"{args.probe_seconds:.0f} s ...",
                flush=True,
            )
            spec = {**d.spec, "mode": "closed", "connections": PROBE_CONNECTIONS}
            sat = run_loadgen({**spec, "seconds": args.probe_seconds}, d.workdir)
            probe = float(sat["rate"])
            rate = probe * args.fraction
        print(
            f"soak: {rate:.0f} tokens/s for {args.seconds:.0f} s, sampling every "
            f"{args.interval:.0f} s ...",
            flush=True,
        )
        samples, summary = soak(d, args, rate, pids)
    outcome = Outcome(
        args,
        rate,
        probe,
        pids,
        idle_clients,
        PROBE_CONNECTIONS if probe else 0,
        samples,
        summary,
        args.seconds * args.warmup,
    )
    rules = judge(outcome)
    text = report(outcome, rules)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if not args.output.exists():
        args.output.write_text("# Soak results (`make soak`, bench/soak.py)\n\n")
    with args.output.open("a") as handle:
        handle.write(text + "\n")
    if not args.no_fail and not all(r.passed for r in rules):
        sys.exit(1)


if __name__ == "__main__":
    main()
