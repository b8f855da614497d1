"""Serves a floor app the way `token-service serve` serves the service above one worker:
uvicorn workers (httptools, uvloop), each with a listening socket of its own in one
`SO_REUSEPORT` group (token_service/cli/workers.py), so the floor and the service get
the same spread of connections over their workers.

    python bench/floor_serve.py floor_admission_app:litestar_admission_app PORT WORKERS
"""

from __future__ import annotations

import sys

import uvicorn

from token_service.cli.workers import SlotSupervisor, balances_by_reuse_port


def main() -> None:
    app, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    config = uvicorn.Config(
        app,
        factory=True,
        workers=workers,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
    )
    if workers > 1 and balances_by_reuse_port():
        SlotSupervisor(config, [("127.0.0.1", port)]).run()
    else:
        config.port = port
        uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
