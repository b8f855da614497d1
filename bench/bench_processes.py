"""Processes for the benchmarks: free ports, starting a command, waiting for it to answer.

Shared by bench/run.py and bench/ivs_latency.py, which are run as scripts (so this
module is imported from the bench directory itself).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@contextmanager
def process(
    args: Sequence[str], env: Mapping[str, str], *, stderr: int = subprocess.DEVNULL
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        list(args), env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=stderr
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
