"""Running the HTTP service under uvicorn: its listeners, worker processes and stop.

- One listening socket, or two when `TOKEN_SERVICE_ADMIN_PORT` is set. Both run the same
  app in the same process (one set of clients, one lifespan, one metrics registry);
  the app tells them apart by the local port (`http/listeners.py`).
- One worker runs in this process; more run as uvicorn's spawned workers, each building
  its own app from the environment. On Linux each worker has its own listening sockets
  in one `SO_REUSEPORT` group, so the kernel spreads connections evenly (`cli/workers.py`);
  elsewhere they share the sockets bound here. Above one worker, Prometheus
  multiprocess mode is switched on so `/metrics` sums every worker.
- SIGTERM (or Ctrl-C): the listeners close at once (new connections are refused),
  requests in flight get `TOKEN_SERVICE_SHUTDOWN_TIMEOUT_SECONDS` to finish, then the
  app's lifespan closes Redis, httpx and boto3.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from token_service.bootstrap.server import serving_app, uvicorn_config
from token_service.cli.environment import environment
from token_service.cli.workers import (
    CannotListen,
    SlotSupervisor,
    balances_by_reuse_port,
    bind,
)
from token_service.config import Settings, check_can_serve, load_settings
from token_service.errors import ConfigurationError
from token_service.observability.logs import configure_logging

log = logging.getLogger(__name__)

#: The variable prometheus_client reads at import time to store values in shared files.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Where multi-worker processes build their app: from the environment, like the parent.
APP_FACTORY = "token_service.cli.serve:guarded_app_from_environment"


def app_from_environment() -> Any:
    """Factory for the ASGI server's workers: each process builds its own app."""
    # Imported here, not at the top: prometheus_client picks its value store when first
    # imported, and `prepare_multiprocess_metrics` must have set it up before that.
    from token_service.bootstrap.app import create_app  # noqa: PLC0415
    from token_service.bootstrap.heap import freeze_startup_heap  # noqa: PLC0415
    from token_service.bootstrap.keys import check_key_ring  # noqa: PLC0415

    settings = load_settings(environment())
    configure_logging(settings.logging.level, settings.logging.format)
    check_can_serve(settings)
    check_key_ring(settings)
    app = create_app(settings)
    freeze_startup_heap()
    return app


def guarded_app_from_environment() -> Any:
    """The workers' factory: `app_from_environment`, cut-off requests answered 503."""
    return serving_app(app_from_environment())


@dataclass(frozen=True)
class Listen:
    """Where and how to listen: the settings, with the command line's overrides applied."""

    host: str
    port: int
    workers: int
    admin_port: int | None
    shutdown_timeout_seconds: int
    keep_alive_seconds: int
    head_timeout_seconds: int
    body_timeout_seconds: int
    send_timeout_seconds: int

    @classmethod
    def of(
        cls,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
    ) -> Listen:
        server = settings.server
        return cls(
            host=host if host is not None else server.host,
            port=port if port is not None else server.port,
            workers=workers if workers is not None else server.workers,
            admin_port=server.admin_port,
            shutdown_timeout_seconds=server.shutdown_timeout_seconds,
            keep_alive_seconds=server.keep_alive_seconds,
            head_timeout_seconds=server.head_timeout_seconds,
            body_timeout_seconds=server.body_timeout_seconds,
            send_timeout_seconds=server.send_timeout_seconds,
        )


def prepare_multiprocess_metrics(workers: int) -> Path | None:
    """Above one worker, point prometheus_client at a clean directory shared by workers.

    Must run before any worker starts: prometheus_client picks its value store at
    import. An operator's `PROMETHEUS_MULTIPROC_DIR` is used (and emptied: files of an
    earlier run would count twice); otherwise a fresh temporary directory.
    """
    configured = os.environ.get(MULTIPROC_ENV)
    if workers == 1 and not configured:
        return None
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="token-service-metrics-"))
        # Ours alone: gone with the process (workers are stopped before exit handlers run).
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def run(listen: Listen, app: Any | None = None) -> int:
    """Serve until SIGTERM or SIGINT. `app`: the built app for one worker; None: workers
    build their own from the environment (required above one worker)."""
    addresses = [(listen.host, listen.port)]
    if listen.admin_port is not None:
        addresses.append((listen.host, listen.admin_port))
    config = uvicorn_config(
        serving_app(app) if app is not None else APP_FACTORY,
        host=listen.host,
        port=listen.port,
        workers=listen.workers,
        shutdown_timeout_seconds=listen.shutdown_timeout_seconds,
        keep_alive_seconds=listen.keep_alive_seconds,
        head_timeout_seconds=listen.head_timeout_seconds,
        body_timeout_seconds=listen.body_timeout_seconds,
        send_timeout_seconds=listen.send_timeout_seconds,
    )
    # Above one worker on Linux, each worker gets listeners of its own (cli/workers.py),
    # bound by the supervisor; otherwise the workers share the ones bound here.
    slotted = listen.workers > 1 and balances_by_reuse_port()
    sockets: list[socket.socket] = []
    try:
        supervisor = SlotSupervisor(config, addresses) if slotted else None
        if not slotted:
            for host, port in addresses:
                sockets.append(bind(host, port))
    except CannotListen as exc:
        for sock in sockets:  # the public listener, when the admin port failed
            sock.close()
        # A port in use (another instance, another service) or not ours: which setting and
        # why, not a traceback.
        setting = (
            "TOKEN_SERVICE_ADMIN_PORT"
            if exc.port == listen.admin_port
            else "TOKEN_SERVICE_PORT (--port)"
        )
        raise ConfigurationError([f"{setting}: {exc.strerror}"]) from None
    log.info(
        "listening",
        extra={
            "event": "listening",
            "host": listen.host,
            "port": listen.port,
            "adminPort": listen.admin_port,
            "workers": listen.workers,
            "listenersPerWorker": slotted,
        },
    )
    try:
        if supervisor is not None:
            # The supervisor passes SIGTERM on to every worker and waits for them.
            supervisor.run()
        elif listen.workers == 1:
            _run_one(uvicorn.Server(config), sockets)
        else:
            Multiprocess(config, sockets=sockets).run()
    finally:
        if supervisor is not None:
            supervisor.close_slots()
        for sock in sockets:
            sock.close()
    log.info("stopped", extra={"event": "stopped"})
    return 0


def _run_one(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
    """Run one server; a stop signal ends it gracefully and the process then exits 0.

    uvicorn handles SIGTERM/SIGINT itself while it runs, and afterwards re-raises the
    signal to the handler it found: this one, so the process does not die of the signal
    it already handled (an orchestrator sees exit status 0, not 143).
    """

    def stop(_signum: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=sockets)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
