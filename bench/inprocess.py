"""The token route's own CPU, in one process: the app driven through its ASGI entry point.

bench/run.py measures the service as deployed (uvicorn, workers, wrk on the same cores),
whose figures move with whatever else the machine runs. This drives the app `create_app`
builds (the deployed settings: local mode, Redis, limits on but high, the mapping log)
directly, with no server and no socket, and reports the CPU microseconds one token costs
the app, beside one ES384 signature measured in the same run; with `--profile`, where it
goes (cProfile, cumulative). For telling two versions of the token path apart quickly:
uvicorn's own share (~35-85 µs per request here, bench/floor.py) is not in it.

    python bench/inprocess.py                       # 5 rounds of 2,000 tokens, 16 at a time
    python bench/inprocess.py --profile 40          # and the top 40 functions
    python bench/inprocess.py --log-level INFO      # with the audit and access lines written
    python bench/inprocess.py --mode ivs --concurrency 1 --tokens 300 --profile 30 --sort tottime
                                                    # ivs mode: the event loop's side of a call
    python bench/inprocess.py --mode ivs --concurrency 1 --spans
                                                    # wall time per step (the request's spans)
    python bench/inprocess.py --without metrics access-log
                                                    # with those parts switched off
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import logging
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The checkout this script is in, not whichever one the venv has installed editable (the
# bench modules below import token_service too).
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import uvloop  # noqa: E402
from bench_processes import free_port, process, wait_for  # noqa: E402
from deployment import CREDENTIALS, SECRET, redis_server, service_env  # noqa: E402
from floor import signature_cpu_us  # noqa: E402

import token_service.bootstrap.app as composition  # noqa: E402
from token_service.auth import mint_user_token  # noqa: E402
from token_service.bootstrap.app import create_app  # noqa: E402
from token_service.bootstrap.mapping import IssuanceMetrics  # noqa: E402
from token_service.config import load_settings  # noqa: E402
from token_service.keys.usage import RedisKeyUsage  # noqa: E402
from token_service.observability.tracing import use_tracer  # noqa: E402

#: Where the log lines go with --log-level INFO: formatted and written, then dropped.
SINK = open(os.devnull, "w")  # noqa: SIM115 - for the whole run

PATH = "/v1/participant-tokens"


def _scope(token: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


class _StepTimer:
    """Stands in for a tracer: the wall time of every `span(name)` step, per name.

    Turned on with `use_tracer`, as tracing is, so the steps the code already names
    (authenticate, policy, admission, mapping.record, sign, ivs.issue) are timed where
    they happen; `request` is the whole ASGI call around them.
    """

    def __init__(self) -> None:
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.on = False

    @contextlib.contextmanager
    def start_as_current_span(self, name: str, attributes: Any = None) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            if self.on:
                self.durations[name].append(time.perf_counter() - started)

    def report(self) -> dict[str, float]:
        """Median µs per step; `other` is the request's median less the steps' medians."""
        medians = {n: statistics.median(d) * 1e6 for n, d in self.durations.items()}
        total = medians.get("request", 0.0)
        named = sum(v for n, v in medians.items() if n != "request")
        return {**medians, "other": total - named}


_steps: _StepTimer | None = None


async def _drive(
    app: Any,
    requests: list[tuple[str, bytes]],
    total: int,
    concurrency: int,
    *,
    strict: bool = True,
) -> None:
    statuses: dict[int, int] = {}
    counter = iter(range(total))

    async def one(token: str, body: bytes) -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        if _steps is None:
            await app(_scope(token, body), receive, send)
            return
        with _steps.start_as_current_span("request"):
            await app(_scope(token, body), receive, send)

    async def worker() -> None:
        for i in counter:
            await one(*requests[i % len(requests)])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if strict and set(statuses) != {201}:
        raise RuntimeError(f"statuses: {statuses}")


async def _lifespan(app: Any) -> tuple[asyncio.Queue[Any], asyncio.Queue[Any], asyncio.Task[Any]]:
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    outbox: asyncio.Queue[Any] = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    message = await outbox.get()
    if message["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"start-up failed: {message}")
    return inbox, outbox, task


def _identity(app: Any) -> Any:
    return app


def _no_metrics() -> None:
    composition.http_metrics_middleware = lambda metrics: _identity  # type: ignore[assignment]
    for hook in ("limit_decided", "issued", "failed", "recorded"):
        setattr(IssuanceMetrics, hook, lambda self, *args, **kwargs: None)


def _no_request_id() -> None:
    composition.request_id_middleware = _identity


def _no_disconnects() -> None:
    composition.client_disconnect_middleware = _identity


def _no_access_log() -> None:
    composition._access_log = lambda settings: None


def _no_allow_header() -> None:
    def finished(app: Any, settings: Any) -> Any:
        app.access_log = composition._access_log(settings)
        return app

    composition._finished = finished


def _no_key_usage() -> None:
    RedisKeyUsage.record = lambda self, arn, expires_at: None  # type: ignore[method-assign]


#: Parts of the token path `--without` switches off, for what each costs (with
#: bench/instructions.py: the difference in instructions per token). Not a way to run
#: the service: each replaces a name in the composition root before the app is built.
PARTS: dict[str, Any] = {
    "metrics": _no_metrics,  # the HTTP middleware's and the issuance hooks' updates
    "request-id": _no_request_id,  # the X-Request-Id middleware
    "disconnects": _no_disconnects,  # the 499 middleware
    "access-log": _no_access_log,  # the access log around the app
    "allow-header": _no_allow_header,  # the before-send hook fixing OPTIONS' Allow
    "key-usage": _no_key_usage,  # counting tokens per signing key
}


async def _run(args: argparse.Namespace, env: dict[str, str], stages: list[str]) -> dict[str, Any]:
    os.environ.update(CREDENTIALS)  # boto3 reads them from the environment
    settings = load_settings({**env, "TOKEN_SERVICE_LOG_LEVEL": args.log_level})
    app = create_app(settings)
    logging.getLogger().setLevel(args.log_level)
    if args.log_level != "WARNING":
        # The lines are formatted and written, to a sink that costs nothing more.
        handler = logging.StreamHandler(SINK)
        root = logging.getLogger()
        for existing in root.handlers:
            handler.setFormatter(existing.formatter)
        root.handlers = [handler]
    inbox, outbox, task = await _lifespan(app)
    if _steps is not None:
        use_tracer(_steps)  # type: ignore[arg-type]  # times steps, records no span
    tokens = [
        mint_user_token(
            SECRET.encode(), sub=f"bench-user-{i:05d}", roles=["publisher"], ttl_seconds=7200
        )
        for i in range(args.users)
    ]
    requests = [
        (
            token,
            json.dumps(
                {"stageArn": stages[i % len(stages)], "capabilities": ["PUBLISH", "SUBSCRIBE"]}
            ).encode(),
        )
        for i, token in enumerate(tokens)
    ]
    await _drive(app, requests, min(2000, args.tokens), args.concurrency, strict=False)  # warm-up
    gc.collect()
    gc.freeze()
    if args.garbage:
        return await _garbage(app, requests, args)
    profiler = cProfile.Profile() if args.profile else None
    if _steps is not None:
        _steps.on = True
    rounds: list[float] = []
    started = time.perf_counter()
    for _ in range(args.rounds):
        cpu = time.process_time()
        if profiler is not None:
            profiler.enable()
        await _drive(app, requests, args.tokens, args.concurrency)
        if profiler is not None:
            profiler.disable()
        rounds.append((time.process_time() - cpu) / args.tokens * 1e6)
    wall = time.perf_counter() - started
    if _steps is not None:
        _steps.on = False
        use_tracer(None)
    await inbox.put({"type": "lifespan.shutdown"})
    await outbox.get()
    await task
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(args.sort).print_stats(args.profile)
        print(out.getvalue())
    rounds.sort()
    return {
        # The least of the rounds: what the code costs, the machine's other work least mixed in.
        "cpu_us_per_token": rounds[0],
        "median_us": rounds[len(rounds) // 2],
        "tokens_per_s": args.tokens * args.rounds / wall,
    }


async def _garbage(app: Any, requests: list[tuple[str, bytes]], args: argparse.Namespace) -> Any:
    """What the token path leaves for the cyclic collector: objects only a collection frees
    (reference cycles), per token, by type. Every such object makes collections longer
    and more frequent: the pauses that are the tail of the latency at a fixed rate."""
    gc.disable()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await _drive(app, requests, args.tokens, args.concurrency)
        gc.collect()
        kinds: dict[str, int] = defaultdict(int)
        for obj in gc.garbage:
            kinds[type(obj).__qualname__] += 1
        total = len(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
        gc.enable()
    top = sorted(kinds.items(), key=lambda kv: -kv[1])[:20]
    print(f"cyclic garbage: {total / args.tokens:.1f} objects per token")
    for name, count in top:
        print(f"  {count / args.tokens:7.2f}  {name}")
    return {"garbage_per_token": total / args.tokens, "cpu_us_per_token": 0.0, "tokens_per_s": 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--stages", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="runs, each with a fresh app")
    parser.add_argument(
        "--rounds", type=int, default=5, help="measured rounds per run (least kept)"
    )
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument(
        "--mode",
        choices=["local", "ivs"],
        default="local",
        help="ivs: CreateParticipantToken on the emulator (its CPU is in another process; "
        "the boto3 call's in this one's worker thread, which cProfile does not see)",
    )
    parser.add_argument(
        "--spans", action="store_true", help="print the median wall µs of each step"
    )
    parser.add_argument(
        "--garbage",
        action="store_true",
        help="count what the token path leaves to the cyclic collector, per token, by type",
    )
    parser.add_argument(
        "--without",
        nargs="+",
        choices=sorted(PARTS),
        default=[],
        help="switch these parts of the token path off (what each costs)",
    )
    args = parser.parse_args()
    for part in args.without:
        PARTS[part]()
    global _steps  # noqa: PLW0603 - the bench's one switch
    with tempfile.TemporaryDirectory(prefix="inprocess-") as tmp, redis_server(tmp) as redis_port:
        emulator_port = free_port()
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        python = sys.executable
        command = [python, "-m", "token_service", "emulator", "--port", str(emulator_port)]
        with process([*command, "--no-quotas", "--log-level", "warning"], {}) as emulator:
            wait_for(f"{emulator_url}/_emulator/health", emulator)
            env = service_env(emulator_url, Path(tmp), redis_port)
            if args.mode == "ivs":
                # The budget far above what is sent: this measures the path, not the quota.
                env |= {
                    "TOKEN_SERVICE_MODE": "ivs",
                    "TOKEN_SERVICE_IVS_TOKEN_RATE": "1000000/second",
                }
            subprocess.run(
                [python, "-m", "token_service", "keys", "rotate"],
                env={**os.environ, **env},
                capture_output=True,
                check=True,
            )
            ivs = boto3.client(
                "ivs-realtime",
                endpoint_url=emulator_url,
                region_name="us-east-1",
                **{k.lower(): v for k, v in CREDENTIALS.items()},
            )
            stages = [
                ivs.create_stage(name=f"inprocess-{i}")["stage"]["arn"] for i in range(args.stages)
            ]
            for run in range(args.repeat):
                _steps = _StepTimer() if args.spans else None
                signature = min(signature_cpu_us(0.3) for _ in range(5))
                result = uvloop.run(_run(args, env, stages))
                result["signature_cpu_us"] = signature
                result["app_over_signature"] = result["cpu_us_per_token"] / signature
                if args.mode == "ivs":
                    result["wall_ms_per_token"] = 1000 * args.concurrency / result["tokens_per_s"]
                if _steps is not None:
                    result |= {f"step_us.{n}": v for n, v in _steps.report().items()}
                print(json.dumps({"run": run, **{k: round(v, 2) for k, v in result.items()}}))


if __name__ == "__main__":
    main()
