"""Request ids: the OS's randomness read a pool at a time, never handed out twice."""

from __future__ import annotations

import os
import threading

import pytest

from token_service.observability.logs import RandomHex, new_request_id


def test_a_request_id_is_sixteen_hex_digits() -> None:
    request_id = new_request_id()

    assert len(request_id) == 16
    int(request_id, 16)


def test_ids_drawn_past_the_end_of_a_pool_come_from_a_fresh_one() -> None:
    ids = RandomHex(4, pool=16)

    drawn = [ids() for _ in range(12)]

    assert len(set(drawn)) == 12
    assert all(len(i) == 8 for i in drawn)


def test_threads_drawing_at_once_never_get_the_same_id() -> None:
    ids = RandomHex(8, pool=64)
    drawn: list[str] = []

    def draw() -> None:
        drawn.extend(ids() for _ in range(2000))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(drawn)) == len(drawn) == 8000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_does_not_hand_out_its_parents_next_ids() -> None:
    new_request_id()  # the pool is read and holds the parent's next ids
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, to the parent
        os.close(read_end)
        os.write(write_end, new_request_id().encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)

    assert child_id != new_request_id()


def test_a_pool_smaller_than_one_id_is_refused() -> None:
    with pytest.raises(ValueError, match="at most pool"):
        RandomHex(8, pool=4)
