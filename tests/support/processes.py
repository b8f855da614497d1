"""Run `token-service` commands as real processes, the way an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO

import boto3
import httpx

CLI = [sys.executable, "-m", "token_service"]


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for_http(url: str, timeout: float = 30, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode}: {output[-2000:]}")
        try:
            httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
        else:
            return
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@contextmanager
def background(
    *args: str, env: Mapping[str, str], output: IO[str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`token-service <args>` running; its output piped, or written to `output` (a file a
    test reads while it runs: a pipe nobody reads fills up and blocks the process)."""
    proc = subprocess.Popen(
        [*CLI, *args],
        env={**os.environ, **env},
        stdout=output if output is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def create_stage(emulator_url: str, name: str) -> str:
    """A stage in the emulator, through boto3 as any IVS client would create one."""
    client = boto3.client(
        "ivs-realtime",
        endpoint_url=emulator_url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    return str(client.create_stage(name=name)["stage"]["arn"])
