"""The process heap of a serving worker: start-up objects kept out of the collector's way.

A worker holds over 100,000 long-lived objects once its app is built (botocore's service
models, Litestar's routes, the OpenAPI document, module globals). CPython's full (oldest
generation) collection walks every one of them, 50 to 80 ms on this kind of machine, and
it runs every few thousand requests: those pauses were the p99 of the throughput
benchmark. `gc.freeze()` moves everything alive at start-up into a permanent generation
the collector never scans; objects made per request are still collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect start-up garbage once, then exempt the survivors from later collections.

    Call it when the app is built and before the server accepts requests, in the process
    that serves them (each worker builds its own app).
    """
    gc.collect()
    gc.freeze()
