"""The lane's reading of replies (in order, however the bytes are split) and of URLs."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
import redis

from token_service.infra.lane import _endpoint, _Protocol, pack

REPLIES = b"*3\r\n:1\r\n$3\r\nabc\r\n*-1\r\n" + b"$-1\r\n" + b"-ERR nope\r\n" + b"+OK\r\n"


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True


def outcomes(chunks: list[bytes], calls: int) -> tuple[list[Any], Transport]:
    async def scenario() -> tuple[list[Any], Transport]:
        protocol, transport = _Protocol(), Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        futures = [protocol.send(b"PING") for _ in range(calls)]
        for chunk in chunks:
            protocol.data_received(chunk)
        await asyncio.sleep(0)
        return await asyncio.gather(*futures, return_exceptions=True), transport

    return asyncio.run(scenario())


def test_replies_resolve_the_calls_in_the_order_they_were_sent() -> None:
    replies, _ = outcomes([REPLIES], 4)

    assert replies[:3] == [[1, b"abc", None], None, replies[2]]
    assert isinstance(replies[2], redis.ResponseError)
    assert replies[3] == b"OK"


def test_replies_split_at_every_byte_read_the_same_as_whole() -> None:
    whole, _ = outcomes([REPLIES], 4)
    split, _ = outcomes([REPLIES[i : i + 1] for i in range(len(REPLIES))], 4)

    assert [repr(r) for r in split] == [repr(r) for r in whole]


def test_a_reply_nobody_asked_for_drops_the_connection() -> None:
    replies, transport = outcomes([b":1\r\n:2\r\n"], 1)

    assert replies == [1]
    assert transport.aborted


def test_an_unknown_reply_type_fails_the_waiting_calls_and_drops_the_connection() -> None:
    replies, transport = outcomes([b"~2\r\n:1\r\n:2\r\n"], 2)

    assert all(isinstance(r, redis.ConnectionError) for r in replies)
    assert transport.aborted


def test_commands_are_sent_as_arrays_of_bulk_strings() -> None:
    assert pack([b"EVALSHA", "ab", 2]) == b"*3\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n"


@pytest.mark.parametrize("value", ["ünïcödé", "with\r\nnewline", ""])
def test_arguments_keep_any_bytes_by_their_length(value: str) -> None:
    encoded = value.encode()

    assert pack([value]) == b"*1\r\n$%d\r\n%s\r\n" % (len(encoded), encoded)


def test_a_command_sent_on_a_lost_connection_fails_at_once() -> None:
    async def scenario() -> BaseException | None:
        protocol = _Protocol()
        protocol.connection_made(Transport())  # type: ignore[arg-type]
        protocol.connection_lost(None)
        return protocol.send(b"PING").exception()

    assert isinstance(asyncio.run(scenario()), redis.ConnectionError)


def test_a_rediss_url_verifies_the_servers_certificate_and_name_by_default() -> None:
    endpoint = _endpoint("rediss://cache.example.internal:6380/0")

    assert endpoint.ssl is not None
    assert endpoint.ssl.verify_mode == ssl.CERT_REQUIRED
    assert endpoint.ssl.check_hostname


def test_a_rediss_url_keeps_redis_pys_tls_options() -> None:
    endpoint = _endpoint("rediss://app:secret@cache.example.internal:6380/2?ssl_cert_reqs=none")

    assert endpoint.ssl is not None
    assert endpoint.ssl.verify_mode == ssl.CERT_NONE
    assert (endpoint.username, endpoint.password, endpoint.db) == ("app", "secret", 2)


def test_a_unix_url_connects_to_its_socket_path_and_database() -> None:
    endpoint = _endpoint("unix:///run/redis/redis.sock?db=3")

    assert (endpoint.host, endpoint.path, endpoint.db, endpoint.ssl) == (
        None,
        "/run/redis/redis.sock",
        3,
        None,
    )
