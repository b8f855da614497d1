"""The process heap of a serving worker: start-up objects kept out of the collector's way,
and the full collection made rare.

A worker holds over 100,000 long-lived objects once its app is built (botocore's service
models, Litestar's routes, the OpenAPI document, module globals). CPython's full (oldest
generation) collection walks every one of them, 50 to 80 ms on this kind of machine, and
it runs every few thousand requests: those pauses were the p99 of the throughput
benchmark. `gc.freeze()` moves everything alive at start-up into a permanent generation
the collector never scans; objects made per request are still collected as before.

What stays in the oldest generation is what the worker builds while serving, mostly its
caches (an app user's verified JWT: ~5 objects each, a few thousand users): ~15,000
objects, which a full collection walked in 4-9 ms here, about twice a second per worker
under load (`bench/run.py` at ~1,200 tokens/s, 33-35 such pauses in 15 s), and freed
nothing: the token path leaves no reference cycles (`bench/inprocess.py --garbage`: 0.0
objects per token). A request arriving during a pause waits it out, so they were a
visible part of the 99th percentile at a fixed rate. The oldest generation is now
collected after 100 collections of the middle one instead of 10 (CPython's default):
0-1 such pauses in the same runs; the young generations keep their defaults, so garbage
cycles (an exception's traceback and its frames) are still freed within milliseconds.
"""

from __future__ import annotations

import gc
from typing import Final

#: Collections of the middle generation between two full collections (CPython's: 10).
FULL_COLLECTION_EVERY: Final = 100


def freeze_startup_heap() -> None:
    """Collect start-up garbage once, exempt the survivors from later collections, and make
    the full collection rare.

    Call it when the app is built and before the server accepts requests, in the process
    that serves them (each worker builds its own app).
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
