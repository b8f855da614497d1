"""The token path's multiplexed Redis connection, against real redis-server processes.

Each scenario runs on uvloop, the service's event loop, bounded by its own timeouts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.redis_server import RedisProcess, free_port
from token_service.infra.lane import LaneScript, RedisLane

_T = TypeVar("_T")

ECHO = LaneScript.of("return ARGV[1]")
SHAPES = LaneScript.of("return {1, 'two', false, {3, 'four'}}")
FAILS = LaneScript.of("return redis.error_reply('refused by the script')")
WRITES = LaneScript.of("redis.call('SET', KEYS[1], ARGV[1]) return 1")


def run(scenario: Callable[[], Awaitable[_T]]) -> _T:
    async def bounded() -> _T:
        async with asyncio.timeout(20):
            return await scenario()

    return uvloop.run(bounded())


async def with_lane(url: str, body: Callable[[RedisLane], Awaitable[_T]], **options: Any) -> _T:
    lane = RedisLane(url, **options)
    try:
        return await body(lane)
    finally:
        await lane.close()


def test_a_script_reply_keeps_its_integers_strings_nils_and_nesting(clean_redis: str) -> None:
    reply = run(lambda: with_lane(clean_redis, lambda lane: lane.run(SHAPES, [], [])))

    assert reply == [1, b"two", None, [3, b"four"]]


def test_a_script_error_is_raised_as_a_response_error(clean_redis: str) -> None:
    with pytest.raises(redis.ResponseError, match="refused by the script"):
        run(lambda: with_lane(clean_redis, lambda lane: lane.run(FAILS, [], [])))


def test_concurrent_calls_each_get_their_own_reply(clean_redis: str) -> None:
    async def body(lane: RedisLane) -> list[Any]:
        return await asyncio.gather(*(lane.run(ECHO, [], [f"call-{i}"]) for i in range(500)))

    replies = run(lambda: with_lane(clean_redis, body))

    assert replies == [f"call-{i}".encode() for i in range(500)]


class CountingTransport:
    """Forwards to the lane's transport, counting the writes."""

    def __init__(self, inner: asyncio.Transport) -> None:
        self.inner = inner
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_calls_made_in_one_event_loop_turn_leave_in_one_write(clean_redis: str) -> None:
    async def body(lane: RedisLane) -> int:
        await lane.run(ECHO, [], ["connect first"])
        protocol = lane._protocol
        assert protocol is not None
        assert protocol.transport is not None
        counting = CountingTransport(protocol.transport)
        protocol.transport = counting  # type: ignore[assignment]
        await asyncio.gather(*(lane.run(ECHO, [], [str(i)]) for i in range(50)))
        return counting.writes

    assert run(lambda: with_lane(clean_redis, body)) == 1


def test_a_script_redis_no_longer_has_is_sent_again_whole(clean_redis: str) -> None:
    async def body(lane: RedisLane) -> tuple[Any, Any]:
        first = await lane.run(ECHO, [], ["before"])
        await lane.command("SCRIPT", "FLUSH")
        return first, await lane.run(ECHO, [], ["after"])

    assert run(lambda: with_lane(clean_redis, body)) == (b"before", b"after")


def test_a_call_abandoned_on_timeout_leaves_later_replies_matched(server: RedisProcess) -> None:
    async def body(lane: RedisLane) -> Any:
        await lane.run(ECHO, [], ["warm"])
        server.pause()
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await lane.run(ECHO, [], ["abandoned"])
        finally:
            server.resume()
        return await lane.run(ECHO, [], ["wanted"])

    assert run(lambda: with_lane(server.url, body)) == b"wanted"


def test_a_call_past_its_timeout_fails_and_later_replies_stay_matched(
    server: RedisProcess,
) -> None:
    async def body(lane: RedisLane) -> tuple[float, Any]:
        await lane.run(ECHO, [], ["warm"])
        server.pause()
        started = asyncio.get_running_loop().time()
        try:
            with pytest.raises(TimeoutError):
                await lane.run(ECHO, [], ["late"], timeout=0.1)
            waited = asyncio.get_running_loop().time() - started
        finally:
            server.resume()
        return waited, await lane.run(ECHO, [], ["wanted"], timeout=5)

    waited, reply = run(lambda: with_lane(server.url, body))

    assert 0.09 <= waited < 1.0
    assert reply == b"wanted"


def test_a_shorter_timeout_sent_later_fails_first(server: RedisProcess) -> None:
    async def body(lane: RedisLane) -> list[str]:
        await lane.run(ECHO, [], ["warm"])
        server.pause()
        failed: list[str] = []

        async def call(name: str, seconds: float) -> None:
            try:
                await lane.run(ECHO, [], [name], timeout=seconds)
            except TimeoutError:
                failed.append(name)

        patient = asyncio.ensure_future(call("patient", 0.6))
        await asyncio.sleep(0.01)
        hasty = asyncio.ensure_future(call("hasty", 0.1))
        await asyncio.sleep(0.3)
        seen = list(failed)
        server.resume()
        await asyncio.gather(patient, hasty)
        return seen

    # Only the later, shorter call has failed by then; the first one is answered.
    assert run(lambda: with_lane(server.url, body)) == ["hasty"]


def test_a_timeout_shorter_than_connecting_to_a_frozen_redis_ends_the_call(
    server: RedisProcess,
) -> None:
    async def body(lane: RedisLane) -> float:
        server.pause()
        started = asyncio.get_running_loop().time()
        try:
            with pytest.raises(TimeoutError):
                await lane.run(ECHO, [], ["never"], timeout=0.1)
            return asyncio.get_running_loop().time() - started
        finally:
            server.resume()

    # The connection's own set-up timeout is 2 s: the call's 0.1 s ends it first.
    assert run(lambda: with_lane(server.url, body, connect_timeout=2.0)) < 1.0


def test_calls_within_their_timeout_are_answered(clean_redis: str) -> None:
    async def body(lane: RedisLane) -> list[Any]:
        return await asyncio.gather(*(lane.run(ECHO, [], [str(i)], timeout=5) for i in range(100)))

    assert run(lambda: with_lane(clean_redis, body)) == [str(i).encode() for i in range(100)]


def test_calls_waiting_when_redis_dies_fail_as_connection_errors(server: RedisProcess) -> None:
    async def body(lane: RedisLane) -> list[BaseException | Any]:
        await lane.run(ECHO, [], ["warm"])
        server.pause()
        calls = [asyncio.ensure_future(lane.run(ECHO, [], [str(i)])) for i in range(5)]
        await asyncio.sleep(0.05)
        server.stop()
        return await asyncio.gather(*calls, return_exceptions=True)

    outcomes = run(lambda: with_lane(server.url, body))

    assert all(isinstance(o, redis.ConnectionError) for o in outcomes), outcomes


def test_the_next_call_after_a_restart_connects_again(server: RedisProcess) -> None:
    async def body(lane: RedisLane) -> Any:
        await lane.run(ECHO, [], ["before"])
        server.stop()
        with pytest.raises(redis.ConnectionError):
            await lane.run(ECHO, [], ["while down"])
        server.start()
        return await lane.run(ECHO, [], ["after"])

    assert run(lambda: with_lane(server.url, body)) == b"after"


def test_a_connection_silent_longer_than_stale_seconds_is_dropped(server: RedisProcess) -> None:
    async def body(lane: RedisLane) -> tuple[BaseException | Any, Any]:
        await lane.run(ECHO, [], ["warm"])
        server.pause()
        stuck = asyncio.ensure_future(lane.run(ECHO, [], ["stuck"]))
        await asyncio.sleep(0.3)
        try:
            # The next caller finds the oldest call waiting too long: a new connection.
            with pytest.raises(redis.ConnectionError):
                await lane.run(ECHO, [], ["drops it"])
        finally:
            server.resume()
        outcome = (await asyncio.gather(stuck, return_exceptions=True))[0]
        return outcome, await lane.run(ECHO, [], ["fresh"])

    stuck, fresh = run(lambda: with_lane(server.url, body, stale_seconds=0.2))

    assert isinstance(stuck, redis.ConnectionError)
    assert fresh == b"fresh"


def test_connections_a_frozen_redis_never_set_up_are_closed_not_kept(
    server: RedisProcess,
) -> None:
    async def body(lane: RedisLane) -> int:
        server.pause()
        try:
            for _ in range(3):
                with pytest.raises(redis.ConnectionError, match="timed out"):
                    await lane.run(ECHO, [], ["while frozen"])
        finally:
            server.resume()
        assert await lane.run(ECHO, [], ["thawed"]) == b"thawed"
        await asyncio.sleep(0.2)  # Redis reads whatever the earlier attempts left
        # Counted while this process (and any connection it kept) is still alive.
        listing = await lane.command("CLIENT", "LIST")
        assert isinstance(listing, bytes)
        return listing.count(b"name=token-service-lane ")

    assert run(lambda: with_lane(server.url, body, connect_timeout=0.1)) == 1


def test_the_lane_connects_with_the_urls_user_and_password() -> None:
    password = secrets.token_hex(16)
    process = RedisProcess(None, "--requirepass", password).start()
    try:
        url = f"redis://default:{password}@127.0.0.1:{process.port}/0"
        assert run(lambda: with_lane(url, lambda lane: lane.run(ECHO, [], ["in"]))) == b"in"
    finally:
        process.close()


def test_a_wrong_password_is_a_connection_error_that_does_not_repeat_it() -> None:
    password = secrets.token_hex(16)
    process = RedisProcess(None, "--requirepass", password).start()
    wrong = secrets.token_hex(16)
    try:
        url = f"redis://default:{wrong}@127.0.0.1:{process.port}/0"
        with pytest.raises(redis.ConnectionError) as caught:
            run(lambda: with_lane(url, lambda lane: lane.run(ECHO, [], ["in"])))
    finally:
        process.close()

    assert wrong not in str(caught.value)
    assert "refused" in str(caught.value)


def test_the_lane_writes_into_the_urls_database(server: RedisProcess) -> None:
    url = f"redis://127.0.0.1:{server.port}/3"
    run(lambda: with_lane(url, lambda lane: lane.run(WRITES, ["lane-db"], ["three"])))

    assert redis.Redis(port=server.port, db=3).get("lane-db") == b"three"
    assert redis.Redis(port=server.port, db=0).get("lane-db") is None


def test_the_lane_connects_over_a_unix_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    process = RedisProcess(None, "--unixsocket", str(socket_path)).start()
    try:
        url = f"unix://{socket_path}"
        reply = run(lambda: with_lane(url, lambda lane: lane.run(ECHO, [], ["unix"])))
    finally:
        process.close()

    assert reply == b"unix"


def test_the_lane_names_itself_in_client_list(clean_redis: str) -> None:
    async def body(lane: RedisLane) -> Any:
        await lane.run(ECHO, [], ["named"])
        return await lane.command("CLIENT", "GETNAME")

    assert run(lambda: with_lane(clean_redis, body)) == b"token-service-lane"


def test_a_cluster_url_is_refused() -> None:
    with pytest.raises(ValueError, match="Cluster"):
        RedisLane("redis+cluster://127.0.0.1:7000")


# ------------------------------------------------------------------ TLS (rediss://)


def write_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for localhost / 127.0.0.1, as PEM files."""
    now = datetime.now(UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca_cert = certificate("test CA", ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = certificate("localhost", server_key, ca_name, ca_key, ca=False)
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "server.pem", "key.pem"))
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RedisProcess, Path]]:
    ca, cert, key = write_tls_files(tmp_path)
    port = free_port()
    tls = ["--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    tls += ["--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"]
    # TLS on the process's port; the later --port 0 turns plain TCP off.
    process = RedisProcess(port, *tls, "--port", "0").start()
    try:
        yield process, ca
    finally:
        process.close()


def test_the_lane_speaks_tls_and_verifies_the_server_against_the_urls_ca(
    tls_server: tuple[RedisProcess, Path],
) -> None:
    process, ca = tls_server
    url = f"rediss://localhost:{process.port}/0?ssl_ca_certs={ca}"

    assert run(lambda: with_lane(url, lambda lane: lane.run(ECHO, [], ["tls"]))) == b"tls"


def test_the_lane_refuses_a_tls_server_its_ca_did_not_sign(
    tls_server: tuple[RedisProcess, Path], tmp_path: Path
) -> None:
    process, _ = tls_server
    (tmp_path / "other").mkdir()
    other_ca, _, _ = write_tls_files(tmp_path / "other")
    url = f"rediss://localhost:{process.port}/0?ssl_ca_certs={other_ca}"

    with pytest.raises(redis.ConnectionError, match="cannot connect"):
        run(lambda: with_lane(url, lambda lane: lane.run(ECHO, [], ["tls"])))
