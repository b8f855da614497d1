"""Worker processes that share the connections evenly: one listening socket per worker.

uvicorn's supervisor hands every worker the same listening socket. A new connection then
goes to whichever worker's event loop the kernel wakes first, and that worker accepts
everything queued at that moment (asyncio and uvloop accept until the queue is empty).
Measured here (`bench/run.py`'s generator opening 128 keep-alive connections to two
workers, six times): splits from 62/66 to 8/120. A worker that holds 94% of the
connections serves 94% of the requests while the other idles: at half the service's
saturation rate it runs near its own saturation, and its queue is the tail (p99 at half
rate, median of nine interleaved runs: 26.6 ms with the shared socket, 18.3 ms with one
per worker; bench/RESULTS.md, 2026-12-06).

Here each worker slot gets its own socket per listener, all bound to the same address
with `SO_REUSEPORT`: the kernel spreads new connections over the slots by a hash of
their addresses (the same 128 connections, six times: 49/79 at worst). The
sockets are created, bound and put to listening by this supervisor process, which keeps
them: a worker that dies, or is replaced on SIGHUP, hands its slot's sockets to its
successor, with the connections queued on them. Nothing queued is dropped but when a
slot is retired (SIGTTOU): its queued connections are reset, as on any closed listener.

Linux only: elsewhere `SO_REUSEPORT` does not balance (BSD, macOS) or does not exist
(Windows), and `serve` shares one socket as uvicorn does.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Sequence

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from token_service.bootstrap.server import BACKLOG

log = logging.getLogger(__name__)

Address = tuple[str, int]


def balances_by_reuse_port() -> bool:
    """Whether this platform spreads connections over `SO_REUSEPORT` listeners."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


class CannotListen(OSError):
    """A listening address that could not be bound (in use, not ours, not an address)."""

    def __init__(self, host: str, port: int, exc: OSError) -> None:
        super().__init__(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}")
        self.port = port


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound TCP socket that worker processes inherit; `reuse_port`: in the address's
    `SO_REUSEPORT` group. Raises `CannotListen` naming the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # A restarted server must not wait for the old one's TIME_WAIT connections.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotListen(host, port, exc) from None
    sock.set_inheritable(True)
    return sock


def resolve_free(addresses: Sequence[Address]) -> list[Address]:
    """Each address with its port resolved (0: a free one), checked free of any other
    socket.

    Checked with a plain bind, which fails on a port held by any socket, `SO_REUSEPORT` or
    not: `SO_REUSEPORT` alone would let a second service started by mistake on the same
    port join this one's group and take half of its connections, silently.
    """
    resolved = []
    for host, port in addresses:
        with bind(host, port) as probe:
            resolved.append((host, probe.getsockname()[1]))
    return resolved


def slot_sockets(addresses: Sequence[Address]) -> list[socket.socket]:
    """One listening socket per address, in the address's `SO_REUSEPORT` group."""
    sockets: list[socket.socket] = []
    try:
        for host, port in addresses:
            sock = bind(host, port, reuse_port=True)
            sockets.append(sock)
            # Listening from here on: the slot is in the group before its worker starts, and
            # keeps its queue while a worker is replaced.
            sock.listen(BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class SlotSupervisor(Multiprocess):
    """uvicorn's supervisor (restarts, SIGHUP, SIGTTIN/SIGTTOU, SIGTERM), with worker i
    always served by slot i's sockets.

    The methods that start workers are uvicorn's, each with its slot's sockets where
    uvicorn passes the one shared list.
    """

    def __init__(self, config: uvicorn.Config, addresses: Sequence[Address]) -> None:
        # Bound first: a port in use fails here, before uvicorn takes over the signals.
        self.addresses = resolve_free(addresses)
        self.slots = [slot_sockets(self.addresses) for _ in range(config.workers)]
        super().__init__(config, sockets=[])

    def _start(self, slot: int) -> Process:
        process = Process(self.config, self.slots[slot])
        process.start()
        return process

    def init_processes(self) -> None:
        for slot in range(self.processes_num):
            self.processes.append(self._start(slot))

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for slot, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung: killed; dead: nothing happens
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # The app or its configuration is broken: every restart would fail alike.
                log.error(
                    "worker failed to start; stopping",
                    extra={"event": "worker_failed_to_start", "pid": process.pid},
                )
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.warning(
                "worker died; restarting it on its listening sockets",
                extra={"event": "worker_restarted", "pid": process.pid, "slot": slot},
            )
            self.processes[slot] = self._start(slot)

    def restart_all(self) -> None:
        """SIGHUP: each worker replaced by a new one on the same slot, ready before the old
        one is stopped (both accept from the slot meanwhile)."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start(slot)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    log.error(
                        "new worker not ready in time; restart aborted",
                        extra={"event": "worker_restart_aborted", "pid": new.pid},
                    )
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def handle_ttin(self) -> None:
        self.slots.append(slot_sockets(self.addresses))
        self.processes_num += 1
        self.processes.append(self._start(len(self.slots) - 1))

    def handle_ttou(self) -> None:
        if self.processes_num <= 1:
            log.info("one worker left: SIGTTOU ignored", extra={"event": "workers_at_minimum"})
            return
        self.processes_num -= 1
        process = self.processes.pop()
        process.terminate()
        process.join()
        for sock in self.slots.pop():
            sock.close()

    def terminate_all(self) -> None:
        # Ours closed first: once every worker has closed its copy, the listeners are gone
        # and new connections are refused, not queued for no one.
        self.close_slots()
        super().terminate_all()

    def close_slots(self) -> None:
        for slot in self.slots:
            for sock in slot:
                sock.close()
