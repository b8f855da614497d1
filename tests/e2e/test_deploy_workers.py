"""`serve` as deployed at scale: two worker processes and admin routes on their own port.

One service runs for the module (TOKEN_SERVICE_WORKERS=2, TOKEN_SERVICE_ADMIN_PORT set);
the public port does not serve /admin or /metrics; a scrape of any worker counts the
requests of every worker (Prometheus multiprocess mode); SIGTERM stops every worker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.server import EmulatorServer
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import background, run_cli, wait_for_http
from tests.support.redis_server import free_port

SECRET = "workers-shared-secret-" + "w" * 32
ADMIN_TOKEN = "workers-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    emulator = EmulatorServer(options=EmulatorOptions()).start()
    public, admin = free_port(), free_port()
    env = {
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator.url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_KEYS_DIR": str(tmp_path_factory.mktemp("keys")),
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
        "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
        "TOKEN_SERVICE_PORT": str(public),
        "TOKEN_SERVICE_ADMIN_PORT": str(admin),
        "TOKEN_SERVICE_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("metrics")),
        "TOKEN_SERVICE_LOG_FORMAT": "json",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    try:
        assert run_cli("keys", "rotate", env=env).returncode == 0
        with background("serve", env=env) as proc:
            public_url = f"http://127.0.0.1:{public}"
            admin_url = f"http://127.0.0.1:{admin}"
            wait_for_http(f"{public_url}/healthz", timeout=60, proc=proc)
            wait_for_http(f"{admin_url}/healthz", timeout=60, proc=proc)
            yield {
                "proc": proc,
                "public": public_url,
                "admin": admin_url,
                "metrics_dir": Path(env["PROMETHEUS_MULTIPROC_DIR"]),
            }
    finally:
        emulator.stop(wait=False)


def get(url: str, **kwargs: object) -> httpx.Response:
    # A new connection per request, so the kernel hands requests to either worker.
    with httpx.Client(timeout=10) as client:
        return client.get(url, **kwargs)  # type: ignore[arg-type]


def admin_requests_counted(admin_url: str) -> float:
    text = get(f"{admin_url}/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "token_service_http_requests":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("path") == "/admin/keys":
                    total += sample.value
    return total


def test_public_port_does_not_serve_admin_routes(service: dict[str, object]) -> None:
    assert get(f"{service['public']}/admin/keys", headers=ADMIN).status_code == 404


def test_public_port_does_not_serve_metrics(service: dict[str, object]) -> None:
    assert get(f"{service['public']}/metrics").status_code == 404


def test_admin_port_serves_admin_routes(service: dict[str, object]) -> None:
    assert get(f"{service['admin']}/admin/keys", headers=ADMIN).status_code == 200


def test_admin_port_does_not_serve_the_token_api(service: dict[str, object]) -> None:
    response = httpx.post(f"{service['admin']}/v1/participant-tokens", json={}, timeout=10)
    assert response.status_code == 404


def test_every_scrape_counts_the_requests_of_every_worker(service: dict[str, object]) -> None:
    admin_url = str(service["admin"])
    before = admin_requests_counted(admin_url)
    for _ in range(30):
        assert get(f"{admin_url}/admin/keys", headers=ADMIN).status_code == 200
    scrapes = {admin_requests_counted(admin_url) - before for _ in range(6)}
    assert scrapes == {30.0}


def test_a_multi_worker_scrape_has_no_created_series(service: dict[str, object]) -> None:
    assert get(f"{service['admin']}/admin/keys", headers=ADMIN).status_code == 200
    text = get(f"{service['admin']}/metrics").text
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert "token_service_http_requests_total" in names
    assert not {n for n in names if n.endswith("_created")}


def test_a_multi_worker_in_progress_gauge_sums_the_workers(service: dict[str, object]) -> None:
    text = get(f"{service['admin']}/metrics").text
    (family,) = [
        f
        for f in text_string_to_metric_families(text)
        if f.name == "token_service_http_requests_in_progress"
    ]
    assert family.samples
    assert {frozenset(s.labels) for s in family.samples} == {frozenset({"method", "path"})}


def test_workers_share_the_metrics_directory(service: dict[str, object]) -> None:
    metrics_dir = service["metrics_dir"]
    assert isinstance(metrics_dir, Path)
    assert list(metrics_dir.glob("*.db"))


def _children(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


ESTABLISHED, LISTEN = "01", "0A"


def _sockets_on(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets in `state` whose local port is `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes  # gone
    for fd in fds:
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def _connections_by_process(pids: list[int], port: int) -> dict[int, int]:
    inodes = _sockets_on(port, ESTABLISHED)
    return {pid: len(_socket_inodes(pid) & inodes) for pid in pids}


def _workers(parent: int) -> list[int]:
    """The supervisor's worker processes (multiprocessing's resource tracker left out)."""
    workers = []
    for pid in _children(parent):
        try:
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
        except OSError:
            continue  # gone since the listing
    return workers


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_new_connections_are_spread_over_both_workers(service: dict[str, object]) -> None:
    """Each worker has a listener of its own (cli/workers.py): with one shared socket, the
    first worker to wake took most of a burst of connections (up to 120 of 128)."""
    proc = service["proc"]
    assert isinstance(proc, subprocess.Popen)
    port = int(str(service["public"]).rsplit(":", 1)[1])
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
    try:
        deadline = time.monotonic() + 10
        while True:
            counts = _connections_by_process(_children(proc.pid), port)
            if sum(counts.values()) == 64 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        shares = sorted(count for count in counts.values() if count)
        # A hash of the addresses: 32 each on average; below 12 is 5 standard deviations off.
        assert len(shares) == 2, counts
        assert shares[0] >= 12, counts
    finally:
        for connection in connections:
            connection.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_worker_is_replaced_on_its_own_listening_socket(
    service: dict[str, object],
) -> None:
    """The supervisor keeps each worker's listening socket: the replacement takes over the
    socket (and any connection queued on it) rather than a new one."""
    proc = service["proc"]
    assert isinstance(proc, subprocess.Popen)
    public = str(service["public"])
    port = int(public.rsplit(":", 1)[1])
    listening = _sockets_on(port, LISTEN)
    assert len(listening) == 2  # one per worker
    victim = _workers(proc.pid)[0]
    (its_socket,) = _socket_inodes(victim) & listening
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        workers = [pid for pid in _workers(proc.pid) if pid != victim]
        if len(workers) == 2 and any(its_socket in _socket_inodes(pid) for pid in workers):
            break
        assert time.monotonic() < deadline, "no worker took over the killed one's socket"
        time.sleep(0.2)
    assert _sockets_on(port, LISTEN) == listening
    wait_for_http(f"{public}/healthz", timeout=60, proc=proc)
    assert all(get(f"{public}/healthz").status_code == 200 for _ in range(20))


def test_sigterm_stops_every_worker_and_the_parent(service: dict[str, object]) -> None:
    # Last in the module: it ends the shared service.
    proc = service["proc"]
    assert isinstance(proc, subprocess.Popen)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    output = proc.stdout.read() if proc.stdout else ""
    assert output.count('"event": "clients_closed"') == 2
