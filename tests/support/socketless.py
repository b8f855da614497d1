"""A transport that touches no socket, for driving uvicorn's HTTP protocol by hand."""

from __future__ import annotations

import asyncio
from typing import Any

PEER = ("127.0.0.1", 50000)
LOCAL = ("127.0.0.1", 8080)


class SocketlessTransport(asyncio.Transport):
    """What uvicorn's protocol asks of a transport besides its writes: the two addresses,
    pausing and resuming reads, whether it can end the stream. Subclasses keep the writes."""

    def can_write_eof(self) -> bool:
        return True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": PEER, "sockname": LOCAL}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass
