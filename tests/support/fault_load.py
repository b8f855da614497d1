"""Fault runs: a real `serve` process, a steady client load, and what each request got.

`ServeProcess` runs `token-service serve` with its output in a file (a pipe would fill
up under load and stall the service). `Load` sends token requests at a fixed rate
from a thread pool, each on its own short-lived connection, and keeps every outcome
(status, latency, participant id, Retry-After) with the moment it was sent, so a test
can look at the requests sent before, during and after a fault.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import CLI
from tests.support.redis_server import free_port

#: The long fault runs: `make faults` runs them (TOKEN_SERVICE_FAULTS=1); `make test`
#: keeps the Redis-killed runs (both modes) and SIGTERM under load (about a minute).
long_fault_run = pytest.mark.skipif(
    not os.environ.get("TOKEN_SERVICE_FAULTS"), reason="long fault run: `make faults`"
)


@dataclass(frozen=True)
class Outcome:
    #: Seconds since the load started, when the request was sent.
    sent: float
    seconds: float
    #: None when no HTTP answer came (connection refused, timeout).
    status: int | None
    participant_id: str | None = None
    retry_after: str | None = None
    error: str | None = None
    #: The problem's `type` (the last path segment: `ivs-throttled`, ...) of an error.
    problem: str | None = None

    @property
    def answered(self) -> float:
        return self.sent + self.seconds


class ServeProcess:
    def __init__(self, proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
        self.proc = proc
        self.base = base
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve_process(env: Mapping[str, str], log: Path, *args: str) -> Iterator[ServeProcess]:
    """`token-service serve` on a free port, started and answering /healthz."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"serve exited with {proc.returncode}: {log.read_text()[-2000:]}"
                )
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("serve did not answer /healthz within 30s") from None
                time.sleep(0.1)
        yield ServeProcess(proc, base, log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def request_token(
    base: str,
    body: Mapping[str, Any],
    bearer: str,
    timeout: float = 15,
    client: httpx.Client | None = None,
) -> tuple[int | None, float, dict[str, Any], str | None, str | None]:
    """One POST (on `client`, or a fresh connection): status, seconds, body, Retry-After, error."""
    started = time.monotonic()
    try:
        if client is None:
            with httpx.Client(timeout=timeout) as fresh:
                response = fresh.post(
                    f"{base}/v1/participant-tokens",
                    json=dict(body),
                    headers={"Authorization": f"Bearer {bearer}"},
                )
        else:
            response = client.post(
                f"{base}/v1/participant-tokens",
                json=dict(body),
                headers={"Authorization": f"Bearer {bearer}"},
                timeout=timeout,
            )
    except httpx.HTTPError as exc:
        return None, time.monotonic() - started, {}, None, exc.__class__.__name__
    elapsed = time.monotonic() - started
    try:
        data: dict[str, Any] = response.json()
    except ValueError:
        data = {}
    return response.status_code, elapsed, data, response.headers.get("Retry-After"), None


class Load:
    """Token requests at `rate` per second until stopped; every outcome is kept.

    The threads share one keep-alive client (a new `httpx.Client` per request or per
    thread costs the load generator more CPU than the service spends on a request).
    """

    def __init__(
        self,
        base: str,
        body: Mapping[str, Any],
        bearer: str | Callable[[int], str],
        *,
        rate: float = 30,
        threads: int = 32,
        timeout: float = 15,
        fresh_connections: bool = False,
    ) -> None:
        self._base = base
        self._body = body
        self._bearer = bearer
        self._interval = 1.0 / rate
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=threads)
        self._futures: list[Future[None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._outcomes: list[Outcome] = []
        self._started = 0.0
        self._thread = threading.Thread(target=self._dispatch, daemon=True)
        limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
        self._client = httpx.Client(timeout=timeout, limits=limits)
        #: Each request on a new connection (to see a closed listener refuse them).
        self._fresh = fresh_connections

    def now(self) -> float:
        """Seconds since the load started (the clock of `Outcome.sent`)."""
        return time.monotonic() - self._started

    def start(self) -> Load:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> list[Outcome]:
        """Stop sending; wait for every request in flight; the outcomes by send time."""
        self._stop.set()
        self._thread.join()
        for future in list(self._futures):
            future.result()
        self._pool.shutdown()
        self._client.close()
        return self.outcomes()

    def outcomes(self) -> list[Outcome]:
        with self._lock:
            return sorted(self._outcomes, key=lambda o: o.sent)

    def _dispatch(self) -> None:
        n = 0
        while not self._stop.is_set():
            due = self._started + n * self._interval
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self._futures.append(self._pool.submit(self._one, n))
            n += 1

    def _one(self, n: int) -> None:
        bearer = self._bearer(n) if callable(self._bearer) else self._bearer
        sent = self.now()
        status, seconds, data, retry_after, error = request_token(
            self._base, self._body, bearer, self._timeout, None if self._fresh else self._client
        )
        pid = data.get("participantId") if status == 201 else None
        problem = None
        if status != 201 and data.get("type"):
            problem = str(data["type"]).rsplit("/", 1)[-1]
        outcome = Outcome(sent, seconds, status, pid, retry_after, error, problem)
        with self._lock:
            self._outcomes.append(outcome)


def statuses(outcomes: Sequence[Outcome]) -> dict[int | str | None, int]:
    """How many of each status (or error name), for assertion messages and reports."""
    counts: dict[int | str | None, int] = {}
    for o in outcomes:
        key: int | str | None = o.status if o.status is not None else o.error
        counts[key] = counts.get(key, 0) + 1
    return counts


def wait_until(condition: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.05)


@dataclass(frozen=True)
class FaultRun:
    """A load run with one fault: the outcomes, and when the fault began and ended."""

    outcomes: list[Outcome]
    #: When the start action was called (a server being killed may already refuse).
    starting: float
    #: When the fault was in place (the start action returned).
    began: float
    #: When lifting it started (the end action was called): the fault held until then.
    lifting: float
    #: When it was over (the end action returned: a server listening again, ...).
    ended: float

    def before(self) -> list[Outcome]:
        """Answered before the fault started to be put in place: a request answered while
        Redis was being killed may rightly see it gone already."""
        return [o for o in self.outcomes if o.answered < self.starting]

    def during(self, settle: float = 0.2) -> list[Outcome]:
        """Sent once the fault had settled in, answered while it held."""
        return [
            o for o in self.outcomes if self.began + settle < o.sent and o.answered < self.lifting
        ]

    def after(self, recovery: float) -> list[Outcome]:
        """Sent `recovery` seconds or more after the fault was over."""
        return [o for o in self.outcomes if o.sent > self.ended + recovery]


def run_with_fault(
    load: Load,
    start: Callable[[], None],
    end: Callable[[], None],
    *,
    before: float,
    during: float,
    after: float,
) -> FaultRun:
    """Start `load`; `start` the fault after `before` s, `end` it `during` s later; stop
    the load `after` s once it is over."""
    load.start()
    try:
        wait_until(lambda: load.now() >= before, what="load before the fault")
        starting = load.now()
        start()
        began = load.now()
        wait_until(lambda: load.now() >= began + during, what="load during the fault")
    finally:
        lifting = load.now()
        end()
    ended = load.now()
    wait_until(lambda: load.now() >= ended + after, what="load after the fault")
    return FaultRun(load.stop(), starting, began, lifting, ended)


def summary(run: FaultRun) -> str:
    """One line of figures for docs/reliability.md: statuses and latencies by phase."""

    def phase(name: str, outcomes: Sequence[Outcome]) -> str:
        if not outcomes:
            return f"{name}: none"
        slowest = max(o.seconds for o in outcomes)
        ordered = sorted(o.seconds for o in outcomes)
        median = ordered[len(ordered) // 2]
        return f"{name}: {statuses(outcomes)} median {median:.3f}s max {slowest:.3f}s"

    fault = [o for o in run.outcomes if run.began <= o.sent < run.lifting]
    return "FAULT-RUN " + "; ".join(
        [
            phase("all", run.outcomes),
            phase("before", run.before()),
            phase("sent during", fault),
            phase("after", [o for o in run.outcomes if o.sent >= run.ended]),
        ]
    )
