"""The service as deployed, for the bench runs (throughput, soak, uniqueness), and what /proc
shows of it.

`deployed()` starts a private redis-server, the IVS emulator,
`keys rotate`, stages, and `token-service serve` in local mode (uvicorn, workers = cores,
Redis, limits on but high, mapping log on), with app JWTs for many users. `ProcessFigures`
reads a process's RSS, open file descriptors and TCP sockets from /proc.
`BodyConn` is a raw HTTP/1.1 keep-alive connection that keeps the response body.

Imported by bench/run.py, bench/soak.py and bench/uniqueness.py, which are run as scripts
from the bench directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from bench_processes import free_port, process, wait_for

from token_service.auth import mint_user_token

# ---------------------------------------------------------------- the deployment

SECRET = "bench-shared-secret-" + "t" * 32
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


@contextmanager
def redis_server(workdir: str) -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir]
    with process(args, {}):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        yield port


def service_env(emulator_url: str, tmp: Path, redis_port: int) -> dict[str, str]:
    """Local mode as deployed: Redis for limits (on, set high) and the mapping log."""
    return {
        **CREDENTIALS,
        "TOKEN_SERVICE_MODE": "local",
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator_url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
        "TOKEN_SERVICE_KEYS_DIR": str(tmp / "keys"),
        "TOKEN_SERVICE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "TOKEN_SERVICE_RATE_LIMIT_USER": "1000000/second",
        "TOKEN_SERVICE_RATE_LIMIT_IP": "1000000/second",
        "TOKEN_SERVICE_RATE_LIMIT_STAGE": "1000000/second",
        "TOKEN_SERVICE_LOG_LEVEL": "WARNING",
    }


@dataclass
class Deployment:
    service: subprocess.Popen[bytes]
    service_port: int
    redis_port: int
    workdir: Path
    tokens: list[str]
    stages: list[str]
    workers: int = 1

    @property
    def spec(self) -> dict[str, Any]:
        """What a load generator needs to build its requests (see run._requests)."""
        return {"port": self.service_port, "tokens": self.tokens, "stages": self.stages}

    def worker_pids(self) -> list[int]:
        """uvicorn's worker processes (children of the master, less the resource tracker);
        with one worker, the `serve` process itself serves."""
        if self.workers == 1:
            return [self.service.pid]
        return child_pids(self.service.pid)


def child_pids(parent: int) -> list[int]:
    """A supervisor's worker processes: its children, less multiprocessing's resource
    tracker."""
    out = subprocess.run(
        ["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split() if "resource_tracker" not in _cmdline(int(p))]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@contextmanager
def deployed(
    *, workers: int, users: int, stages: int, stderr: int = subprocess.DEVNULL
) -> Iterator[Deployment]:
    """Redis, the emulator, a key, stages, app JWTs and the service; `stderr=PIPE` keeps
    the service's error output to show if it dies during a run."""
    python = sys.executable
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        redis_port = stack.enter_context(redis_server(str(tmp)))
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
        env = service_env(emulator_url, tmp, redis_port)
        rotated = subprocess.run(
            [python, "-m", "token_service", "keys", "rotate"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if rotated.returncode != 0:
            raise RuntimeError(f"keys rotate failed: {rotated.stderr}")
        ivs = boto3.client(
            "ivs-realtime",
            endpoint_url=emulator_url,
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        arns = [ivs.create_stage(name=f"bench-{i}")["stage"]["arn"] for i in range(stages)]
        tokens = [
            mint_user_token(
                SECRET.encode(), sub=f"bench-user-{i:05d}", roles=["publisher"], ttl_seconds=7200
            )
            for i in range(users)
        ]
        service = stack.enter_context(
            process(
                [
                    *(python, "-m", "token_service", "serve"),
                    *("--port", str(service_port), "--workers", str(workers)),
                ],
                env,
                stderr=stderr,
            )
        )
        wait_for(f"http://127.0.0.1:{service_port}/healthz", service)
        deployment = Deployment(service, service_port, redis_port, tmp, tokens, arns, workers)
        deadline = time.monotonic() + 30
        while len(deployment.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        yield deployment


def warm_stages(deployment: Deployment) -> None:
    """One token per stage, sequentially, so every stage's endpoints are cached before
    anything is measured.

    An uncached stage costs a GetStage call under the lookup budget
    (`TOKEN_SERVICE_IVS_LOOKUP_RATE`, 3/s by default): a run starting with 50 uncached
    stages spends its first ~17 s answering 503 (`retry shortly`) and waiting for slots,
    which is not the steady state a bench measures. Each stage is asked until it answers
    201, after the `Retry-After` a 503 names. (Not for bench/uniqueness.py: it counts
    every mapping record against the 201s it saw.)
    """
    url = f"http://127.0.0.1:{deployment.service_port}/v1/participant-tokens"
    with httpx.Client(timeout=10) as client:
        for i, arn in enumerate(deployment.stages):
            token = deployment.tokens[i % len(deployment.tokens)]
            for _ in range(100):
                answer = client.post(
                    url, headers={"Authorization": f"Bearer {token}"}, json={"stageArn": arn}
                )
                if answer.status_code == 201:
                    break
                if answer.status_code != 503:
                    raise RuntimeError(f"warming {arn}: {answer.status_code} {answer.text}")
                time.sleep(float(answer.headers.get("retry-after", "1")) / 4)
            else:
                raise RuntimeError(f"warming {arn}: still 503 after 100 attempts")


# ---------------------------------------------------------------- /proc


_TCP_STATES = {"01": "established", "08": "close_wait", "0A": "listen"}


def _tcp_rows() -> Iterator[list[str]]:
    """The columns of every TCP socket of this namespace (/proc/net/tcp and tcp6): local
    address, remote address, state, ..., inode."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            yield line.split()


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def _tcp_sockets() -> dict[int, tuple[str, int]]:
    """Socket inode -> (TCP state name, remote port), for every TCP socket of this namespace."""
    return {
        int(cols[9]): (_TCP_STATES.get(cols[3], "other"), _port(cols[2])) for cols in _tcp_rows()
    }


def served_connections(pids: list[int], port: int) -> dict[int, int]:
    """How many established connections to local `port` each process holds."""
    served = {int(cols[9]) for cols in _tcp_rows() if cols[3] == "01" and _port(cols[1]) == port}
    counts: dict[int, int] = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        count = 0
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue  # closed between the listing and the readlink
            count += link.startswith("socket:[") and int(link[8:-1]) in served
        counts[pid] = count
    return counts


@dataclass
class ProcessFigures:
    rss_kib: int
    fds: int
    #: TCP sockets, all of them, then those connected to the given port (Redis's).
    tcp: int
    tcp_to_port: int
    #: TCP sockets by state (established, close_wait, listen, other).
    tcp_states: dict[str, int] = field(default_factory=dict)


def process_figures(pids: list[int], port: int = 0) -> dict[int, ProcessFigures]:
    """RSS, open descriptors and TCP sockets of each process (gone processes left out).

    `port`: also count the TCP sockets connected to this remote port (a connection pool's).
    """
    sockets = _tcp_sockets()
    out: dict[int, ProcessFigures] = {}
    for pid in pids:
        try:
            rss = next(
                int(line.split()[1])
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")
            )
            links = []
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
                except OSError:
                    continue  # closed between the listing and the readlink
        except (OSError, StopIteration):
            continue
        states: dict[str, int] = {}
        to_port = 0
        for link in links:
            if link.startswith("socket:["):
                found = sockets.get(int(link[8:-1]))
                if found is not None:
                    states[found[0]] = states.get(found[0], 0) + 1
                    to_port += found[1] == port
        out[pid] = ProcessFigures(rss, len(links), sum(states.values()), to_port, states)
    return out


# ---------------------------------------------------------------- HTTP


class BodyConn:
    """One keep-alive HTTP/1.1 connection; `request` answers (status, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> BodyConn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        self.writer.write(data)
        # The whole head in one read: a readline per header costs the load generator CPU
        # that the service on the same cores would otherwise get.
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        at = head.lower().find(b"\r\ncontent-length:")
        length = int(head[at + 17 : head.index(b"\r\n", at + 2)]) if at >= 0 else 0
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]
