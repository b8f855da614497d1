"""token_service/bootstrap/heap.py: a serving worker's collector settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from token_service.bootstrap.heap import FULL_COLLECTION_EVERY, freeze_startup_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    """The test process's thresholds and permanent generation, as they were."""
    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()
    yield
    gc.set_threshold(*thresholds)
    if gc.get_freeze_count() > frozen:
        gc.unfreeze()


def test_objects_alive_at_start_up_are_never_scanned_again(restored_collector: None) -> None:
    survivor = {"built": "at start-up"}
    freeze_startup_heap()
    assert gc.get_freeze_count() > 0
    assert not any(obj is survivor for obj in gc.get_objects())


def test_the_full_collection_waits_for_100_middle_ones(restored_collector: None) -> None:
    freeze_startup_heap()
    assert gc.get_threshold()[2] == FULL_COLLECTION_EVERY == 100


def test_the_young_generations_keep_their_thresholds(restored_collector: None) -> None:
    young, middle, _ = gc.get_threshold()
    freeze_startup_heap()
    assert gc.get_threshold()[:2] == (young, middle)
