"""What the service adds to a CreateParticipantToken call: ivs mode vs. boto3 directly.

Starts the IVS emulator and `token-service serve` (ivs mode) as their own processes,
plus a private redis-server when one is installed (the budget and rate limits then
live in Redis, as in production). This process is the load generator: one request
at a time, alternating a direct boto3 CreateParticipantToken on the emulator and a
`POST /v1/participant-tokens` through the service (which makes the same call), so
both see the same machine in the same moment. The added latency at a percentile is
the service's latency minus the direct call's at that percentile.

The emulator runs without quotas and the service's budget is set far above them,
so nothing waits for a budget slot: this measures overhead, not the quota.

    python bench/ivs_latency.py                      # 2000 pairs, writes the results
    python bench/ivs_latency.py --requests 50 --output /tmp/x.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import boto3
from bench_processes import free_port, process, wait_for
from botocore.config import Config
from raw_http import RawHttp

from token_service.auth import mint_user_token

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "ivs_latency.md"
SECRET = "bench-shared-secret-" + "b" * 32
TARGET_MS = 1.0
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


@contextmanager
def redis_server() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    with (
        tempfile.TemporaryDirectory() as workdir,
        process(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
            {},
        ),
    ):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure(requests: int, warmup: int, use_redis: bool) -> dict[str, object]:
    python = sys.executable
    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_server()) if use_redis else None
        emulator_port, service_port = free_port(), free_port()
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        emulator = stack.enter_context(
            process(
                [
                    *(python, "-m", "token_service", "emulator", "--port", str(emulator_port)),
                    *("--no-quotas", "--log-level", "warning"),
                ],
                {},
            )
        )
        wait_for(f"{emulator_url}/_emulator/health", emulator)
        env = {
            **CREDENTIALS,
            "TOKEN_SERVICE_MODE": "ivs",
            "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator_url,
            "TOKEN_SERVICE_AWS_REGION": "us-east-1",
            "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
            "TOKEN_SERVICE_KEYS_DIR": stack.enter_context(tempfile.TemporaryDirectory()),
            "TOKEN_SERVICE_RATE_LIMIT_USER": "1000000/second",
            "TOKEN_SERVICE_RATE_LIMIT_IP": "1000000/second",
            "TOKEN_SERVICE_RATE_LIMIT_STAGE": "1000000/second",
            "TOKEN_SERVICE_IVS_TOKEN_RATE": "1000000/second",
            "TOKEN_SERVICE_LOG_LEVEL": "WARNING",
        }
        if redis_url is not None:
            env["TOKEN_SERVICE_REDIS_URL"] = redis_url
        service = stack.enter_context(
            process([python, "-m", "token_service", "serve", "--port", str(service_port)], env)
        )
        service_url = f"http://127.0.0.1:{service_port}"
        wait_for(f"{service_url}/healthz", service)

        # The same client configuration the service builds (one attempt, keep-alive).
        ivs = boto3.session.Session(region_name="us-east-1", **_boto_credentials()).client(
            "ivs-realtime",
            endpoint_url=emulator_url,
            config=Config(retries={"total_max_attempts": 1}, tcp_keepalive=True),
        )
        stage_arn = ivs.create_stage(name="bench")["stage"]["arn"]
        token = mint_user_token(SECRET.encode(), sub="bench-user", ttl_seconds=3600)
        # A raw keep-alive client: httpx's own Python would count as the service's time.
        http = RawHttp(service_port)
        stack.callback(http.close)
        issue = RawHttp.encode(
            "POST",
            "/v1/participant-tokens",
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            json.dumps({"stageArn": stage_arn}).encode(),
        )
        health = RawHttp.encode("GET", "/healthz")

        def direct() -> float:
            started = time.perf_counter()
            ivs.create_participant_token(
                stageArn=stage_arn, userId="bench-user", duration=60, capabilities=["SUBSCRIBE"]
            )
            return time.perf_counter() - started

        def through_service() -> float:
            started = time.perf_counter()
            status, body = http.send(issue)
            elapsed = time.perf_counter() - started
            if status != 201:
                raise RuntimeError(f"service answered {status}: {body.decode(errors='replace')}")
            return elapsed

        def floor() -> float:
            started = time.perf_counter()
            http.send(health)
            return time.perf_counter() - started

        for _ in range(warmup):
            direct()
            through_service()
            floor()
        direct_times: list[float] = []
        service_times: list[float] = []
        floor_times: list[float] = []
        for i in range(requests):
            # Alternate which goes first, so neither always follows the other.
            if i % 2:
                direct_times.append(direct())
                service_times.append(through_service())
            else:
                service_times.append(through_service())
                direct_times.append(direct())
            floor_times.append(floor())
    return {
        "direct": direct_times,
        "service": service_times,
        "floor": floor_times,
        "redis": redis_url is not None,
    }


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def report(results: Mapping[str, object], requests: int, warmup: int) -> str:
    direct: list[float] = results["direct"]  # type: ignore[assignment]
    service: list[float] = results["service"]  # type: ignore[assignment]
    floor: list[float] = results["floor"]  # type: ignore[assignment]

    def ms(value: float) -> str:
        return f"{value * 1000:.2f}"

    rows = []
    for label, q in (("median", 50.0), ("p90", 90.0), ("p99", 99.0)):
        d, s = percentile(direct, q), percentile(service, q)
        rows.append(f"| {label} | {ms(d)} | {ms(s)} | {ms(s - d)} |")
    added_median = percentile(service, 50) - percentile(direct, 50)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    verdict = "met" if added_median * 1000 < TARGET_MS else "NOT met"
    store = "Redis (private redis-server)" if results["redis"] else "process memory (no Redis)"
    return "\n".join(
        [
            "# IVS mode: latency the service adds to CreateParticipantToken",
            "",
            f"Recorded {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by "
            "`python bench/ivs_latency.py` (see its docstring for the method).",
            "",
            f"- machine: {os.cpu_count()} CPUs, {platform.platform()}, "
            f"Python {platform.python_version()}; load average at the end {load} "
            "(other work on the machine shows up in every figure)",
            f"- {requests} request pairs after {warmup} warm-up pairs, one at a time, "
            "alternating: boto3 CreateParticipantToken straight to the emulator, and "
            "`POST /v1/participant-tokens` through `token-service serve` in ivs mode",
            f"- rate limits, budget and caches: {store}; the load generator, the service "
            "and the emulator are three processes on the same machine",
            "",
            "| | direct boto3 (ms) | through the service (ms) | added (ms) |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            f"Target: under {TARGET_MS:g} ms added at the median: **{verdict}** "
            f"({added_median * 1000:.2f} ms). Mean direct {ms(statistics.fmean(direct))} ms, "
            f"through the service {ms(statistics.fmean(service))} ms.",
            "",
            "For scale, the floor of any request to the service from this load generator "
            f"(`GET /healthz`, same connection): median {ms(percentile(floor, 50))} ms, "
            f"p99 {ms(percentile(floor, 99))} ms.",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured request pairs")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured pairs first")
    parser.add_argument("--no-redis", action="store_true", help="run the service without Redis")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    results = measure(args.requests, args.warmup, use_redis=not args.no_redis)
    text = report(results, args.requests, args.warmup)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
