"""`EmulatorServer`: the emulator under uvicorn in a background thread (tests, `serve --dev`)."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn

from ivs_realtime_emulator.app import create_emulator_app
from ivs_realtime_emulator.options import EmulatorOptions

_START_TIMEOUT_SECONDS = 10.0


def _serve(server: uvicorn.Server) -> None:
    try:
        server.run()
    except SystemExit:
        # uvicorn exits when it cannot bind; start() sees the thread end and raises.
        return


class EmulatorServer:
    """A running emulator: `start()` returns once it listens; `url` is where to reach it.

    Port 0 picks a free port. The server runs its own event loop in a daemon
    thread, so talk to it over HTTP only, never through its objects.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, options: EmulatorOptions | None = None
    ) -> None:
        self.host = host
        self.options = options or EmulatorOptions()
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running")
        return self._port

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", ""):  # noqa: S104 - names "every interface", not a bind here
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> EmulatorServer:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        config = uvicorn.Config(
            create_emulator_app(self.options),
            host=self.host,
            port=self._requested_port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            # Clients keep connections alive; do not let them delay stop().
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=_serve, args=(server,), name="ivs-emulator", daemon=True)
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(
                    f"the emulator could not start on {self.host}:{self._requested_port}"
                )
            if time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError("the emulator did not start in time")
            time.sleep(0.005)
        self._port = int(server.servers[0].sockets[0].getsockname()[1])
        self._server, self._thread = server, thread
        return self

    def stop(self, wait: bool = True) -> None:
        """Ask the server to exit; with `wait`, return once it has (about 0.2 s).

        `wait=False` returns at once while uvicorn winds down in its daemon thread,
        which is what a per-test fixture wants: nothing reuses the port.
        """
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        if wait:
            self._thread.join(timeout=_START_TIMEOUT_SECONDS)
        self._server = self._thread = None
        self._port = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
