"""token_service/cli/workers.py: one listening socket per worker, in one SO_REUSEPORT group."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import SIGNALS

from token_service.cli import workers
from token_service.cli.workers import (
    CannotListen,
    SlotSupervisor,
    balances_by_reuse_port,
    bind,
    resolve_free,
    slot_sockets,
)

pytestmark = pytest.mark.skipif(
    not balances_by_reuse_port(), reason="SO_REUSEPORT balances connections on Linux only"
)

LOCAL = "127.0.0.1"


@pytest.fixture
def opened() -> Iterator[list[socket.socket]]:
    """Sockets a test opens, closed after it."""
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def _slots(count: int, opened: list[socket.socket]) -> list[socket.socket]:
    (address,) = resolve_free([(LOCAL, 0)])
    listeners = [slot_sockets([address])[0] for _ in range(count)]
    opened.extend(listeners)
    return listeners


def _accept_all(listener: socket.socket, opened: list[socket.socket]) -> int:
    listener.setblocking(False)
    accepted = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return accepted
        opened.append(conn)
        accepted += 1


def test_every_slot_listens_on_the_same_port_with_a_socket_of_its_own(
    opened: list[socket.socket],
) -> None:
    listeners = _slots(3, opened)
    assert len({sock.getsockname() for sock in listeners}) == 1
    assert len({sock.fileno() for sock in listeners}) == 3


def test_port_zero_is_resolved_once_for_every_slot() -> None:
    (address,) = resolve_free([(LOCAL, 0)])
    assert address[1] != 0


def test_connections_are_spread_over_every_slot(opened: list[socket.socket]) -> None:
    listeners = _slots(2, opened)
    port = listeners[0].getsockname()[1]
    for _ in range(200):
        opened.append(socket.create_connection((LOCAL, port)))
    counts = [_accept_all(listener, opened) for listener in listeners]
    assert sum(counts) == 200
    # A hash of the addresses: 100 each on average; below 50 is ~13 standard deviations off.
    assert min(counts) >= 50, counts


def test_a_port_held_by_another_listener_is_refused(opened: list[socket.socket]) -> None:
    other = socket.socket()
    opened.append(other)
    other.bind((LOCAL, 0))
    other.listen()
    with pytest.raises(OSError, match="in use"):
        resolve_free([(LOCAL, other.getsockname()[1])])


def test_a_port_held_by_another_reuse_port_group_is_refused(
    opened: list[socket.socket],
) -> None:
    """SO_REUSEPORT alone would let a second service on the same port take half the
    connections without a word."""
    taken = _slots(1, opened)[0].getsockname()
    with pytest.raises(OSError, match="in use"):
        resolve_free([taken])


class FakeProcess:
    """Stands for uvicorn's worker process: records the sockets it was given."""

    started: ClassVar[list[FakeProcess]] = []

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self.sockets = sockets
        self.alive = True
        self.exitcode: int | None = None
        self.pid = len(FakeProcess.started)
        self.terminated = False

    def start(self) -> None:
        FakeProcess.started.append(self)

    def is_alive(self, timeout: float = 5) -> bool:
        return self.alive

    def wait_until_ready(self, timeout: float, should_exit: Any = None) -> bool:
        return True

    def kill(self) -> None:
        self.alive = False

    def join(self) -> None:
        pass

    def terminate(self) -> None:
        self.terminated = True
        self.alive = False


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlotSupervisor]:
    FakeProcess.started = []
    monkeypatch.setattr(workers, "Process", FakeProcess)
    # uvicorn's supervisor takes over the process's signals: given back after the test.
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    config = uvicorn.Config("tests:app", workers=2)
    made = SlotSupervisor(config, [(LOCAL, 0), (LOCAL, 0)])
    made.init_processes()
    yield made
    made.close_slots()
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def fake(process: object) -> FakeProcess:
    assert isinstance(process, FakeProcess)
    return process


def _ports(sockets: list[socket.socket]) -> list[int]:
    return [sock.getsockname()[1] for sock in sockets]


def test_each_worker_gets_its_own_slot_with_every_listener(supervisor: SlotSupervisor) -> None:
    first, second = FakeProcess.started
    assert first.sockets is supervisor.slots[0]
    assert second.sockets is supervisor.slots[1]
    assert _ports(first.sockets) == _ports(second.sockets)
    assert len(set(_ports(first.sockets))) == 2  # the public and the admin listener


def test_a_dead_worker_is_replaced_on_its_own_slot(supervisor: SlotSupervisor) -> None:
    fake(supervisor.processes[1]).alive = False
    supervisor.keep_subprocess_alive()
    replacement = FakeProcess.started[-1]
    assert fake(supervisor.processes[1]) is replacement
    assert replacement.sockets is supervisor.slots[1]


def test_a_worker_that_failed_to_start_stops_the_supervisor(
    supervisor: SlotSupervisor,
) -> None:
    failed = fake(supervisor.processes[0])
    failed.alive = False
    failed.exitcode = STARTUP_FAILURE
    supervisor.keep_subprocess_alive()
    assert supervisor.should_exit.is_set()
    assert len(FakeProcess.started) == 2


def test_sighup_replaces_each_worker_on_the_same_slot(supervisor: SlotSupervisor) -> None:
    old = [fake(process) for process in supervisor.processes]
    supervisor.restart_all()
    assert all(process.terminated for process in old)
    new = [fake(process) for process in supervisor.processes]
    assert not set(new) & set(old)
    assert [process.sockets for process in new] == supervisor.slots


def test_sigttin_adds_a_worker_with_a_new_slot_in_the_group(supervisor: SlotSupervisor) -> None:
    supervisor.handle_ttin()
    added = FakeProcess.started[-1]
    assert len(supervisor.slots) == 3
    assert added.sockets is supervisor.slots[2]
    assert _ports(added.sockets) == _ports(supervisor.slots[0])


def test_sigttou_retires_the_last_worker_and_closes_its_slot(
    supervisor: SlotSupervisor,
) -> None:
    last = fake(supervisor.processes[-1])
    retired = supervisor.slots[-1]
    supervisor.handle_ttou()
    assert last.terminated
    assert len(supervisor.slots) == 1
    assert all(sock.fileno() == -1 for sock in retired)


def test_stopping_closes_the_supervisors_copies_of_the_listeners(
    supervisor: SlotSupervisor,
) -> None:
    supervisor.terminate_all()
    assert all(sock.fileno() == -1 for slot in supervisor.slots for sock in slot)
    assert all(process.terminated for process in FakeProcess.started)


def test_binding_a_port_in_use_names_the_address(opened: list[socket.socket]) -> None:
    other = socket.socket()
    opened.append(other)
    other.bind((LOCAL, 0))
    port = other.getsockname()[1]
    with pytest.raises(CannotListen, match=f"cannot listen on {LOCAL}:{port}: .*in use") as got:
        bind(LOCAL, port)
    assert got.value.port == port
