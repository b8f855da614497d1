"""Local-mode throughput: the service's token rate against the raw ES384 signing rate.

One run on one machine:

1. the baseline: PyJWT `jwt.encode` ES384 of realistic participant-token claims with a
   P-384 key object, on as many threads as cores (cryptography releases the GIL);
2. a private redis-server, the IVS emulator, `keys rotate`, then `token-service serve`
   in local mode as deployed (uvicorn, workers = cores, Redis, limits on but high,
   mapping log on);
3. a separate load-generator process (`python bench/run.py --loadgen ...`, raw HTTP/1.1
   keep-alive over asyncio, precomputed requests with valid app JWTs over many users
   and stages) measures the saturation rate (closed loop; wrk when installed), then
   p50/p99 at half that rate (open model: fixed-rate schedule, latency counted from the
   scheduled send time; bench/fixed_rate.c when a C compiler is installed);
4. Redis commands per token from INFO commandstats, worker RSS at start and end;
5. the floor of the same run: bench/floor_admission_app.py (one Litestar route doing the
   service's admission script and one signature; no authentication, policy, metrics or
   logging) served the same way (uvicorn, same workers each with its own listening socket,
   same Redis; bench/floor_serve.py), through the same two loops: its saturation rate
   and CPU per token (counted as the service's), and its p50/p99 at half of that. What
   the service cannot beat on this machine at this hour, for the throughput and for the
   tail;
6. appends the figures to bench/RESULTS.md.

    python bench/run.py                        # full run (a few minutes)
    python bench/run.py --quick --output /tmp/r.md
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import jwt
import redis
import uvloop
from bench_processes import free_port, process, wait_for
from cryptography.hazmat.primitives.asymmetric import ec
from deployment import BodyConn, child_pids, deployed, served_connections, warm_stages

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "RESULTS.md"
PATH = "/v1/participant-tokens"


# ---------------------------------------------------------------- baseline


def baseline_rate(threads: int, seconds: float) -> tuple[float, float]:
    """ES384 `jwt.encode` per second over `threads` threads for `seconds`, and the CPU
    microseconds one signature costs (this process's CPU time over the count)."""
    key = ec.generate_private_key(ec.SECP384R1())
    now = int(time.time())
    claims = {
        "exp": now + 43200,
        "iat": now,
        "jti": "Yx2Jm0aB3c4D",
        "resource": "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl",
        "topic": "AbCdEfGhIjKl",
        "events_url": "wss://global.events.live-video.net",
        "whip_url": "https://AbCdEfGhIjKl.global-bm.whip.live-video.net",
        "user_id": "bench-user-00042",
        "attributes": {"displayName": "user 42"},
        "capabilities": {"allow_publish": True, "allow_subscribe": True},
        "version": "1.0",
    }
    headers = {"kid": "arn:aws:ivs:us-east-1:123456789012:public-key/AbCdEfGh"}
    counts = [0] * threads
    stop = threading.Event()

    def work(index: int) -> None:
        n = 0
        while not stop.is_set():
            jwt.encode(claims, key, algorithm="ES384", headers=headers)
            n += 1
        counts[index] = n

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started, cpu_started = time.perf_counter(), time.process_time()
    for t in workers:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in workers:
        t.join()
    total = max(1, sum(counts))
    cpu_us = (time.process_time() - cpu_started) / total * 1e6
    return total / (time.perf_counter() - started), cpu_us


# ---------------------------------------------------------------- load generator


def _requests(spec: Mapping[str, Any]) -> list[bytes]:
    out = []
    for i, token in enumerate(spec["tokens"]):
        stage = spec["stages"][i % len(spec["stages"])]
        body = json.dumps({"stageArn": stage, "capabilities": ["PUBLISH", "SUBSCRIBE"]}).encode()
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def _closed(spec: Mapping[str, Any]) -> dict[str, Any]:
    reqs = _requests(spec)
    conns = [await BodyConn.open(spec["port"]) for _ in range(spec["connections"])]
    ok = 0
    bad: dict[int, int] = {}
    end = time.perf_counter() + spec["seconds"]

    async def loop(conn: BodyConn, offset: int) -> None:
        nonlocal ok
        i = offset
        while time.perf_counter() < end:
            status, _ = await conn.request(reqs[i % len(reqs)])
            i += 7
            if status == 201:
                ok += 1
            else:
                bad[status] = bad.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(c, i) for i, c in enumerate(conns)))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.writer.close()
    return {"ok": ok, "errors": bad, "seconds": elapsed, "rate": ok / elapsed}


async def _open(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Fixed-rate schedule; latency from the scheduled time (no coordinated omission)."""
    reqs = _requests(spec)
    rate: float = spec["rate"]
    total = int(rate * spec["seconds"])
    idle: asyncio.Queue[BodyConn] = asyncio.Queue()
    for _ in range(spec["connections"]):
        idle.put_nowait(await BodyConn.open(spec["port"]))
    latencies: list[float] = []
    sent_at: list[float] = []
    bad: dict[int, int] = {}
    start = time.perf_counter() + 0.05

    async def one(i: int, scheduled: float) -> None:
        conn = await idle.get()
        status, _ = await conn.request(reqs[i % len(reqs)])
        latencies.append(time.perf_counter() - scheduled)
        sent_at.append(scheduled)
        idle.put_nowait(conn)
        if status != 201:
            bad[status] = bad.get(status, 0) + 1

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    by_second: dict[int, list[float]] = {}
    for scheduled_at, latency in zip(sent_at, latencies, strict=True):
        by_second.setdefault(int(scheduled_at - start), []).append(latency)
    seconds_p99 = sorted(_percentile(sorted(values), 99) for values in by_second.values())
    latencies.sort()

    def pct(q: float) -> float:
        return _percentile(latencies, q)

    return {
        "sent": total,
        "errors": bad,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": latencies[-1] * 1000,
        # Steady queueing raises every second's tail; a stall of the machine, a few seconds'.
        "second_p99_median_ms": seconds_p99[len(seconds_p99) // 2],
        "seconds_over_10ms": sum(p99 > 10 for p99 in seconds_p99),
        "seconds": len(seconds_p99),
        "achieved_rate": total / (time.perf_counter() - start),
    }


def _percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile of sorted seconds, in milliseconds."""
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000


def stall_probe_main(seconds: float) -> None:
    """How late a process that only sleeps 5 ms at a time wakes up, for `seconds`: the
    scheduling delay anything on this machine sees at that moment, whatever it runs."""
    gc.disable()
    late: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        before = time.perf_counter()
        time.sleep(0.005)
        late.append(time.perf_counter() - before - 0.005)
    late.sort()
    print(json.dumps({"p99_ms": _percentile(late, 99), "max_ms": late[-1] * 1000}))


def loadgen_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    # The generator's own garbage collections would show up as the service's latency.
    gc.collect()
    gc.freeze()
    gc.disable()
    uvloop.install()
    result = asyncio.run(_closed(spec) if spec["mode"] == "closed" else _open(spec))
    print(json.dumps(result))


def run_loadgen(spec: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """Run the load generator as its own process; return its JSON result and its CPU time."""
    path = workdir / "spec.json"
    path.write_text(json.dumps(spec))
    started = time.perf_counter()
    command = [sys.executable, __file__, "--loadgen", str(path)]
    result = _json_line_of(command, spec["seconds"] + 120, "load generator")
    result["wall"] = time.perf_counter() - started
    return result


def _json_line_of(command: list[str], timeout: float, what: str) -> dict[str, Any]:
    """Run a generator; its result is the last line it prints, in JSON."""
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed: {proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_wrk(spec: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """The closed loop with wrk (C, one thread) instead of the Python load generator.

    Same precomputed requests and connection count; `wrk_tokens.lua` cycles through them
    and counts statuses. The Python generator spends ~150-300 µs of CPU per request on
    this machine, taken from the same cores as the service; wrk spends a few.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    path = workdir / "requests.txt"
    lines = (r.decode().replace("\r", "\\r").replace("\n", "\\n") for r in _requests(spec))
    path.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    proc = subprocess.run(
        [
            *(wrk, "-t1", f"-c{spec['connections']}", f"-d{spec['seconds']:.0f}s"),
            *("--timeout", "10s", "-s", str(Path(__file__).parent / "wrk_tokens.lua")),
            f"http://127.0.0.1:{spec['port']}{PATH}",
        ],
        env={**os.environ, "BENCH_REQUESTS": str(path)},
        capture_output=True,
        text=True,
        timeout=spec["seconds"] + 60,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr or proc.stdout}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    statuses = {int(k): v for k, v in summary["statuses"].items()}
    ok = statuses.pop(201, 0)
    if summary["socket_errors"]:
        statuses[0] = summary["socket_errors"]
    return {
        "ok": ok,
        "errors": statuses,
        "seconds": summary["seconds"],
        "rate": ok / summary["seconds"],
        "wall": time.perf_counter() - started,
        "generator": "wrk",
    }


def run_fixed_rate_c(spec: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """The fixed-rate run with bench/fixed_rate.c (compiled here, once per run directory):
    the Python generator's open model for a few microseconds of CPU per request instead of
    ~150-300, taken from the cores the service runs on."""
    binary = workdir / "fixed_rate"
    if not binary.exists():
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise RuntimeError("no C compiler for bench/fixed_rate.c (apt-get install gcc)")
        source = Path(__file__).parent / "fixed_rate.c"
        subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], check=True)
    path = workdir / "requests.bin"
    path.write_bytes(b"".join(b"%d\n%s" % (len(r), r) for r in _requests(spec)))
    command = [str(binary), str(spec["port"]), str(spec["rate"]), str(spec["seconds"])]
    command += [str(spec["connections"]), str(path)]
    result = _json_line_of(command, spec["seconds"] + 120, "bench/fixed_rate.c")
    result["errors"] = {int(status): count for status, count in result["errors"].items()}
    return result


# ---------------------------------------------------------------- processes


def redis_calls(port: int) -> tuple[int, dict[str, int]]:
    client = redis.Redis(port=port)
    stats = client.info("commandstats")
    client.close()
    per = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    return sum(per.values()), per


def redis_pid(port: int) -> int:
    client = redis.Redis(port=port)
    pid = int(client.info("server")["process_id"])
    client.close()
    return pid


def issued_total(port: int) -> int:
    """Tokens the service says it issued (`/metrics`, summed over every worker)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return round(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("token_service_tokens_issued_total")
        )
    )


def redis_figures(
    before: Mapping[str, int], after: Mapping[str, int], requests: int
) -> dict[str, Any]:
    """Commands per token between two INFO commandstats (INFO itself left out).

    `requests`: the token requests the service handled in between, from its own count:
    a load generator stops counting at its deadline, with requests still in flight.
    """
    per_delta = {
        k: v - before.get(k, 0)
        for k, v in after.items()
        if v - before.get(k, 0) > 0 and k != "info"
    }
    requests = max(1, requests)
    return {
        "redis_commands": per_delta,
        "redis_per_token": sum(per_delta.values()) / requests,
        "evalsha_per_token": per_delta.get("evalsha", 0) / requests,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of proc(5) (utime, stime), counted after the ")" of the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU time of this process's waited-for children (the load generator runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def start_profile(path: Path | None, pid: int, seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy one worker over the saturation run, as collapsed stacks (text)."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if path is None or spy is None:
        return None
    return subprocess.Popen(
        [
            *(spy, "record", "--nonblocking", "--format", "raw", "--rate", "500"),
            *("-d", str(int(seconds)), "-p", str(pid), "-o", str(path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# ---------------------------------------------------------------- the run


def closed_loop(args: argparse.Namespace, spec: Mapping[str, Any], tmp: Path) -> dict[str, Any]:
    """`args.connections` connections sending back to back for `args.seconds`: wrk when
    asked or installed, else the Python generator."""
    closed = {**spec, "mode": "closed", "connections": args.connections, "seconds": args.seconds}
    if args.loadgen_kind == "wrk" or (args.loadgen_kind == "auto" and shutil.which("wrk")):
        return run_wrk(closed, tmp)
    return {**run_loadgen(closed, tmp), "generator": "python"}


def fixed_rate(
    args: argparse.Namespace, spec: Mapping[str, Any], rate: float, tmp: Path, pids: list[int]
) -> dict[str, Any]:
    """`rate` requests per second on a fixed schedule for `args.seconds`: p50, p99, max,
    and how many of the generator's connections each of `pids` served (read once they are
    all open: a worker holding most of them takes most of the requests)."""
    open_loop = {**spec, "mode": "open", "rate": rate, "seconds": args.seconds}
    spread: list[int] = []
    done = threading.Event()

    def sample() -> None:
        # Every quarter second, the fullest reading kept: the generator opens its
        # connections once it has started, and closes them as it ends.
        while not done.wait(0.25):
            counts = sorted(served_connections(pids, spec["port"]).values(), reverse=True)
            if sum(counts) > sum(spread):
                spread[:] = counts

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    probe = subprocess.Popen(
        [sys.executable, __file__, "--stall-probe", str(args.seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        open_loop["connections"] = args.connections * 4
        compiler = shutil.which("cc") or shutil.which("gcc")
        if args.fixed_rate_kind == "c" or (args.fixed_rate_kind == "auto" and compiler):
            result = run_fixed_rate_c(open_loop, tmp)
        else:
            result = {**run_loadgen(open_loop, tmp), "generator": "python"}
    finally:
        done.set()
        sampler.join()
        stalls, _ = probe.communicate(timeout=args.seconds + 30)
    return {**result, "connections_per_worker": spread, "stall_probe": json.loads(stalls)}


def measured_closed_loop(
    args: argparse.Namespace,
    spec: Mapping[str, Any],
    tmp: Path,
    watched: Mapping[str, list[int]],
) -> tuple[dict[str, Any], dict[str, float]]:
    """The closed loop, and the CPU time each group of `watched` processes (and the load
    generator) spent per request meanwhile: the same accounting for the service and its
    floor, so the two compare by CPU as well as by rate (the rate moves with whatever
    else the machine runs; the CPU per token much less)."""
    cpu_before = {name: sum(map(cpu_seconds, p)) for name, p in watched.items()}
    loadgen_before = children_cpu_seconds()
    sat = closed_loop(args, spec, tmp)
    issued = max(1, sat["ok"] + sum(sat["errors"].values()))
    cpu = {
        **{
            name: (sum(map(cpu_seconds, p)) - cpu_before[name]) / issued * 1e6
            for name, p in watched.items()
        },
        "load generator": (children_cpu_seconds() - loadgen_before) / issued * 1e6,
    }
    return sat, cpu


def saturate(
    args: argparse.Namespace,
    base: Mapping[str, Any],
    tmp: Path,
    pids: list[int],
    *,
    redis_port: int,
    result: dict[str, Any],
) -> dict[str, Any]:
    """The closed-loop run: tokens per second, Redis commands and CPU per token."""
    per_before, issued_before = redis_calls(redis_port)[1], issued_total(base["port"])
    print(f"saturation: closed loop, {args.connections} connections, {args.seconds}s ...")
    spy = start_profile(args.profile, max(pids, key=rss_kib), args.seconds)
    watched = {"workers": pids, "redis": [redis_pid(redis_port)]}
    sat, result["cpu_us_per_token"] = measured_closed_loop(args, base, tmp, watched)
    if spy is not None:
        spy.wait(timeout=60)
    result["saturation"] = sat
    time.sleep(0.5)  # the requests in flight at the generator's deadline finish
    handled = issued_total(base["port"]) - issued_before + sum(sat["errors"].values())
    result.update(redis_figures(per_before, redis_calls(redis_port)[1], handled))
    per_delta = result["redis_commands"]
    print(f"  {sat['rate']:.0f} tokens/s, errors {sat['errors']}, redis {per_delta}")
    print(f"  CPU per token (µs): {result['cpu_us_per_token']}")
    return sat


def floor_run(
    args: argparse.Namespace,
    base: Mapping[str, Any],
    tmp: Path,
    *,
    workers: int,
    redis_port: int,
) -> dict[str, Any]:
    """The admission floor app through the service's own two loops, right after them."""
    port = free_port()
    here = Path(__file__).resolve().parent
    command = [sys.executable, str(here / "floor_serve.py")]
    command += ["floor_admission_app:litestar_admission_app", str(port), str(workers)]
    env = {"FLOOR_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    spec = {**base, "port": port}
    print(f"floor: bench/floor_admission_app.py, {workers} workers ...")
    with process(command, env) as server:
        wait_for(f"http://127.0.0.1:{port}/", server)
        run_loadgen({**spec, "mode": "closed", "connections": 16, "seconds": 2}, tmp)
        pids = child_pids(server.pid) if workers > 1 else [server.pid]
        watched = {"workers": pids, "redis": [redis_pid(redis_port)]}
        sat, cpu = measured_closed_loop(args, spec, tmp, watched)
        half = fixed_rate(args, spec, sat["rate"] / 2, tmp, pids)
    print(
        f"  {sat['rate']:.0f}/s; at half: p50 {half['p50_ms']:.2f} ms, p99 {half['p99_ms']:.2f} ms"
    )
    print(f"  CPU per token (µs): {cpu}")
    return {"saturation": sat, "half": half, "cpu_us_per_token": cpu}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    workers = args.workers or cores
    result: dict[str, Any] = {"cores": cores, "workers": workers}
    print(f"baseline: ES384 jwt.encode on {cores} threads for {args.baseline_seconds}s ...")
    result["baseline"], result["signature_cpu_us"] = baseline_rate(cores, args.baseline_seconds)
    print(f"  {result['baseline']:.0f} signatures/s")
    with deployed(
        workers=workers, users=args.users, stages=args.stages, stderr=subprocess.PIPE
    ) as deployment:
        service, tmp, redis_port = deployment.service, deployment.workdir, deployment.redis_port
        time.sleep(1.0)
        pids = deployment.worker_pids()
        rss_start = {pid: rss_kib(pid) for pid in pids}
        base = deployment.spec

        print(f"warm-up: one token per stage ({len(deployment.stages)}), then 3 s of load ...")
        warm_stages(deployment)
        run_loadgen(
            {**base, "mode": "closed", "connections": 16, "seconds": min(3, args.seconds)}, tmp
        )
        sat = saturate(args, base, tmp, pids, redis_port=redis_port, result=result)
        half = sat["rate"] / 2
        print(f"fixed rate {half:.0f}/s for {args.seconds}s ...")
        result["half"] = fixed_rate(args, base, half, tmp, pids)
        h = result["half"]
        print(f"  p50 {h['p50_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms, errors {h['errors']}")
        result["rss_kib"] = {pid: (rss_start[pid], rss_kib(pid)) for pid in pids}
        if service.poll() is not None and service.stderr is not None:
            print(service.stderr.read().decode()[-2000:], file=sys.stderr)
        if not args.no_floor:
            result["floor"] = floor_run(args, base, tmp, workers=workers, redis_port=redis_port)
    result["ratio"] = result["saturation"]["rate"] / result["baseline"]
    result["cpu_ratio"] = result["signature_cpu_us"] / sum(result["cpu_us_per_token"].values())
    return result


def report(result: Mapping[str, Any], label: str) -> str:
    sat, half = result["saturation"], result["half"]
    versions = ", ".join(
        f"{name} {version(name)}"
        for name in ("cryptography", "PyJWT", "litestar", "uvicorn", "redis")
    )
    rss = "; ".join(
        f"pid {pid}: {a / 1024:.1f} -> {b / 1024:.1f} MiB"
        for pid, (a, b) in result["rss_kib"].items()
    )
    cpu_per_token = ", ".join(
        f"{name} {value:.0f}" for name, value in result["cpu_us_per_token"].items()
    )
    return "\n".join(
        [
            f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {label}",
            "",
            f"- machine: {result['cores']} cores ({platform.machine()}), "
            f"Python {platform.python_version()}, {versions}; service workers {result['workers']}",
            f"- baseline ES384 `jwt.encode`, {result['cores']} threads: "
            f"**{result['baseline']:.0f}/s**",
            f"- saturation (closed loop, {sat['seconds']:.0f} s, {sat['generator']}): "
            f"**{sat['rate']:.0f} tokens/s** "
            f"({sat['ok']} issued, non-201: {sat['errors'] or 'none'})",
            f"- ratio service / baseline: **{result['ratio']:.2f}** (target 0.45, issue 24)",
            f"- CPU per token at saturation (µs): {cpu_per_token}; one ES384 signature: "
            f"{result['signature_cpu_us']:.0f} µs (the baseline's CPU time per signature)",
            f"- CPU ratio (one signature's CPU / all CPU per token): "
            f"**{result['cpu_ratio']:.2f}**: the throughput ratio a machine with nothing else "
            f"running would show, since both rates are then CPU-bound; it moves much less "
            f"than the rate ratio when other work shares the cores",
            f"- fixed rate {half['achieved_rate']:.0f}/s (half of saturation, "
            f"{half.get('generator', 'python')} generator): "
            f"p50 **{half['p50_ms']:.2f} ms**, p99 **{half['p99_ms']:.2f} ms**, "
            f"max {half['max_ms']:.1f} ms "
            f"(target p99 < 10 ms; non-201: {half['errors'] or 'none'}); the generator's "
            f"connections per worker: {_spread(half)}; {_tail(half)}",
            f"- Redis round trips (EVALSHA) per token: **{result['evalsha_per_token']:.3f}**; "
            f"commands per token counting those run inside the script: "
            f"{result['redis_per_token']:.2f} ({result['redis_commands']})",
            f"- worker RSS start -> end: {rss}",
            *_floor_lines(result),
            "",
        ]
    )


def _floor_lines(result: Mapping[str, Any]) -> list[str]:
    floor = result.get("floor")
    if floor is None:
        return []
    sat, half = floor["saturation"], floor["half"]
    return [
        f"- the floor in the same run (bench/floor_admission_app.py: Litestar, the admission "
        f"script, one signature; no authentication, policy, metrics or logging; same "
        f"workers, Redis and generators): saturation **{sat['rate']:.0f}/s** "
        f"(ratio {sat['rate'] / result['baseline']:.2f}; the service "
        f"{result['saturation']['rate'] / sat['rate']:.2f} of it); at half that "
        f"({half['achieved_rate']:.0f}/s): p50 {half['p50_ms']:.2f} ms, "
        f"p99 **{half['p99_ms']:.2f} ms** (non-201: {half['errors'] or 'none'}; "
        f"connections per worker: {_spread(half)}; {_tail(half)})",
        *_floor_cpu_line(result),
    ]


def _floor_cpu_line(result: Mapping[str, Any]) -> list[str]:
    """The floor's CPU per token beside the service's: where the service's extra CPU is
    (its workers, Redis, the generator), in figures the machine's noise moves little."""
    floor = result["floor"].get("cpu_us_per_token")
    if floor is None:
        return []
    service = result["cpu_us_per_token"]
    parts = ", ".join(f"{name} {floor[name]:.0f} (service {service[name]:.0f})" for name in floor)
    floor_ratio = result["signature_cpu_us"] / sum(floor.values())
    return [
        f"- the floor's CPU per token at saturation (µs): {parts}; its CPU ratio "
        f"**{floor_ratio:.2f}** (the service's {result['cpu_ratio']:.2f}, "
        f"{result['cpu_ratio'] / floor_ratio:.2f} of it)",
    ]


def _tail(half: Mapping[str, Any]) -> str:
    """Whether the tail is steady or made by a few seconds, and what a process doing
    nothing but sleeping saw meanwhile."""
    probe = half["stall_probe"]
    return (
        f"p99 of each second: median {half['second_p99_median_ms']:.1f} ms, "
        f"{half['seconds_over_10ms']} of {half['seconds']} seconds over 10 ms; a 5 ms "
        f"sleeper woke up to {probe['max_ms']:.1f} ms late (p99 {probe['p99_ms']:.1f} ms)"
    )


def _spread(half: Mapping[str, Any]) -> str:
    return "/".join(map(str, half.get("connections_per_worker") or [])) or "not read"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--stall-probe", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="tiny counts (smoke test)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--baseline-seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--stages", type=int, default=50)
    parser.add_argument("--workers", type=int, default=0, help="default: the core count")
    parser.add_argument("--label", default="local mode throughput")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--loadgen-kind",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="saturation load generator: wrk when installed (auto), or the Python one",
    )
    parser.add_argument(
        "--fixed-rate-kind",
        choices=("auto", "c", "python"),
        default="auto",
        help="fixed-rate load generator: bench/fixed_rate.c when a C compiler is installed "
        "(auto), or the Python one",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy one worker during saturation (collapsed stacks)"
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the floor app's run (step 5)")
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args.loadgen)
        return
    if args.stall_probe:
        stall_probe_main(args.stall_probe)
        return
    if args.quick:
        args.seconds, args.baseline_seconds, args.users, args.stages = 1.0, 0.5, 20, 3
        args.connections = 4
    random.seed(1)
    result = measure(args)
    text = report(result, args.label)
    print(text)
    if not args.output.exists():
        args.output.write_text("# Local-mode throughput results (`make bench`, bench/run.py)\n\n")
    with args.output.open("a") as handle:
        handle.write(text + "\n")


if __name__ == "__main__":
    main()
