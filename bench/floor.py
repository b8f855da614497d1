"""The floor under the throughput ratio: what HTTP alone costs on this machine.

`make bench` (bench/run.py) reports the service's CPU per token beside the CPU of one
ES384 signature. This measures, in one run, what any Python service on the same stack
spends per request before doing anything of its own:

1. one ES384 `jwt.encode` (CPU time of a single thread);
2. uvicorn (httptools, uvloop, one worker, as the service runs it) serving a plain ASGI
   app that reads a token-shaped POST and answers a token-sized body, driven by wrk:
   CPU per request of the server and of wrk;
3. the same with a one-route Litestar app (body decoded into a struct);
4. that Litestar route doing what no design of the token route can leave out: the
   service's own admission script (bans, three rate limits, the mapping record: the
   one Redis round trip per token issue 9 asks for) against a private redis-server,
   and one ES384 signature. CPU per token of the server, Redis and wrk.

From these, the best throughput ratio any design could reach here, with the load
generator on the same cores: signature / (signature + server floor + wrk) for 2 and 3,
before any authentication, policy, Redis or logging; signature / (server + Redis + wrk)
for 4, before authentication, policy, metrics and logging. The service's own ratio is
measured by bench/run.py; this bounds it.

    python bench/floor.py                 # ~1 minute; appends to bench/results/floor.md
    python bench/floor.py --seconds 2 --output /tmp/floor.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import jwt
from bench_processes import free_port, process, wait_for
from cryptography.hazmat.primitives.asymmetric import ec
from deployment import redis_server
from run import children_cpu_seconds, cpu_seconds, redis_pid

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "floor.md"
BODY = (
    '{"stageArn":"arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl",'
    '"capabilities":["PUBLISH"]}'
)
WRK_SCRIPT = f"""
wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {"e" * 300}"
"""


def signature_cpu_us(seconds: float) -> float:
    key = ec.generate_private_key(ec.SECP384R1())
    claims = {"sub": "x", "topic": "AbCdEfGhIjKl", "attributes": {"a": "b"}, "version": "1.0"}
    count, started = 0, time.process_time()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        jwt.encode(claims, key, algorithm="ES384", headers={"kid": "k"})
        count += 1
    return (time.process_time() - started) / count * 1e6


def server_floor(
    app: str,
    factory: bool,
    seconds: float,
    workdir: Path,
    redis_port: int | None = None,
) -> dict[str, float]:
    """CPU per request of uvicorn serving `app`, of wrk driving it, and of Redis if used."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), app, "--port", str(port)]
    args += ["--http", "httptools", "--loop", "uvloop", "--no-access-log"]
    args += ["--log-level", "warning", *(["--factory"] if factory else [])]
    script = workdir / "floor.lua"
    script.write_text(WRK_SCRIPT)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    url = f"http://127.0.0.1:{port}/v1/participant-tokens"
    command = [wrk, "-t1", "-c16", "--timeout", "10s", "-s", str(script)]
    env = {} if redis_port is None else {"FLOOR_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    redis = 0 if redis_port is None else redis_pid(redis_port)
    with process(args, env) as server:
        wait_for(f"http://127.0.0.1:{port}/", server)
        subprocess.run([*command, "-d2s", url], capture_output=True, check=True)  # warm-up
        server_before, wrk_before = cpu_seconds(server.pid), children_cpu_seconds()
        redis_before = cpu_seconds(redis) if redis else 0.0
        out = subprocess.run(
            [*command, f"-d{seconds:.0f}s", url], capture_output=True, text=True, check=True
        ).stdout
        server_cpu = cpu_seconds(server.pid) - server_before
        wrk_cpu = children_cpu_seconds() - wrk_before
        redis_cpu = cpu_seconds(redis) - redis_before if redis else 0.0
    if "Non-2xx" in out:
        raise RuntimeError(f"{app} answered errors under wrk:\n{out}")
    requests = int(next(line for line in out.splitlines() if "requests in" in line).split()[0])
    return {
        "server_us": server_cpu / requests * 1e6,
        "wrk_us": wrk_cpu / requests * 1e6,
        "redis_us": redis_cpu / requests * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    signature = signature_cpu_us(max(1.0, args.seconds / 2))
    print(f"one ES384 signature: {signature:.0f} µs of CPU")
    with tempfile.TemporaryDirectory() as tmp:
        floors = {
            "plain ASGI on uvicorn": server_floor(
                "floor_apps:raw_app", False, args.seconds, Path(tmp)
            ),
            "one-route Litestar on uvicorn": server_floor(
                "floor_apps:litestar_app", True, args.seconds, Path(tmp)
            ),
        }
        with redis_server(tmp) as port:
            admission = server_floor(
                "floor_admission_app:litestar_admission_app", True, args.seconds, Path(tmp), port
            )
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: the HTTP floor",
        "",
        f"- machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}; load average at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"- one ES384 signature: **{signature:.0f} µs** of CPU",
    ]
    for name, floor in floors.items():
        ceiling = signature / (signature + floor["server_us"] + floor["wrk_us"])
        lines.append(
            f"- {name}: server **{floor['server_us']:.0f} µs** per request, wrk "
            f"{floor['wrk_us']:.0f} µs; a service doing nothing but this and one signature "
            f"could reach at most a ratio of **{ceiling:.2f}**"
        )
    total = admission["server_us"] + admission["redis_us"] + admission["wrk_us"]
    lines.append(
        "- one-route Litestar + the service's admission script (one EVALSHA: bans, three "
        "limits, the mapping record) + one signature: server "
        f"**{admission['server_us']:.0f} µs** per token (the signature included), Redis "
        f"{admission['redis_us']:.0f} µs, wrk {admission['wrk_us']:.0f} µs; a token route "
        "doing only this, with no authentication, policy, metrics or logging, could reach "
        f"at most a ratio of **{signature / total:.2f}**"
    )
    text = "\n".join([*lines, ""])
    print(text)
    if not args.output.exists():
        args.output.write_text("# The HTTP floor under the throughput ratio (bench/floor.py)\n\n")
    with args.output.open("a") as handle:
        handle.write(text + "\n")


if __name__ == "__main__":
    main()
