"""Tracing: a request carrying a W3C `traceparent` is traced through every hop (the server
span, authentication and its JWKS fetch, the policy, the admission script, the signature,
the IVS call), its access-log line carries the trace id, and nothing secret rides along.

The spans land in the SDK's in-memory exporter, given to `create_app` as a test's tracer
provider; the service builds the same provider from `OTEL_TRACES_EXPORTER` (tested in
tests/unit/config/test_tracing_settings.py and, as a process, below).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.http.conftest import ADMIN_TOKEN, MintUserToken, bearer
from tests.support.jwks_server import JwksServer, running_jwks_server
from token_service.config import load_settings
from token_service.observability.logs import JsonFormatter
from token_service.observability.tracing import span, tracing_on

pytestmark = pytest.mark.usefixtures("signing_key")
URL = "/v1/participant-tokens"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(spans: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider
    provider.shutdown()


class _Lines(logging.Handler):
    """Access-log lines formatted as they are written (inside the request, where the
    trace id is current), as the service's JSON handler writes them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def access_lines() -> Iterator[list[dict[str, Any]]]:
    handler = _Lines()
    logger = logging.getLogger("token_service.access")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def traced_app(make_app: Callable[..., Litestar], provider: TracerProvider) -> Litestar:
    return make_app(tracer_provider=provider)


async def _token_request(app: Litestar, user_token: MintUserToken, stage_arn: str) -> Any:
    async with AsyncTestClient(app=app) as client:
        response = await client.post(
            URL,
            json={"stageArn": stage_arn},
            headers={**bearer(user_token()), "traceparent": TRACEPARENT},
        )
    assert response.status_code == 201, response.text
    return response


def _by_name(finished: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in finished}


def _server_span(finished: tuple[ReadableSpan, ...]) -> ReadableSpan:
    (server,) = [s for s in finished if s.name.startswith("POST ")]
    return server


async def test_a_token_request_continues_the_callers_trace(
    traced_app: Litestar, spans: InMemorySpanExporter, user_token: MintUserToken, stage_arn: str
) -> None:
    await _token_request(traced_app, user_token, stage_arn)

    server = _server_span(spans.get_finished_spans())
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == PARENT_SPAN_ID


async def test_the_server_span_is_named_by_the_route_template(
    traced_app: Litestar, spans: InMemorySpanExporter, user_token: MintUserToken, stage_arn: str
) -> None:
    await _token_request(traced_app, user_token, stage_arn)

    server = _server_span(spans.get_finished_spans())
    assert server.name == "POST /v1/participant-tokens"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/participant-tokens"


async def test_each_step_of_a_local_token_is_a_child_of_the_server_span(
    traced_app: Litestar, spans: InMemorySpanExporter, user_token: MintUserToken, stage_arn: str
) -> None:
    await _token_request(traced_app, user_token, stage_arn)

    finished = spans.get_finished_spans()
    server = _server_span(finished)
    steps = _by_name(finished)
    for step in ("authenticate", "policy", "admission", "sign"):
        assert step in steps, sorted(steps)
        assert steps[step].context.trace_id == server.context.trace_id
        assert steps[step].parent is not None
        assert steps[step].parent.span_id == server.context.span_id


async def test_no_span_per_asgi_send_or_receive(
    traced_app: Litestar, spans: InMemorySpanExporter, user_token: MintUserToken, stage_arn: str
) -> None:
    await _token_request(traced_app, user_token, stage_arn)

    names = [span.name for span in spans.get_finished_spans()]
    assert not [name for name in names if name.endswith(("http send", "http receive"))]


async def test_the_access_log_line_carries_the_trace_id(
    traced_app: Litestar,
    user_token: MintUserToken,
    stage_arn: str,
    access_lines: list[dict[str, Any]],
) -> None:
    await _token_request(traced_app, user_token, stage_arn)

    (line,) = [line for line in access_lines if line.get("event") == "http_request"]
    assert line["traceId"] == TRACE_ID
    assert line["route"] == "/v1/participant-tokens"
    assert line["status"] == 201


async def test_no_span_holds_a_token_or_the_authorization_header(
    traced_app: Litestar, spans: InMemorySpanExporter, user_token: MintUserToken, stage_arn: str
) -> None:
    app_jwt = user_token()
    async with AsyncTestClient(app=traced_app) as client:
        response = await client.post(
            URL,
            json={"stageArn": stage_arn},
            headers={**bearer(app_jwt), "traceparent": TRACEPARENT},
        )
    participant_token = response.json()["token"]

    for finished in spans.get_finished_spans():
        attributes = finished.attributes or {}
        text = json.dumps({k: str(v) for k, v in attributes.items()}) + finished.name
        assert app_jwt not in text
        assert participant_token not in text
        assert "authorization" not in text.lower()


async def test_an_ivs_mode_token_has_a_span_for_the_create_participant_token_call(
    make_app: Callable[..., Litestar],
    provider: TracerProvider,
    spans: InMemorySpanExporter,
    env: dict[str, str],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    app = make_app(
        settings=load_settings({**env, "TOKEN_SERVICE_MODE": "ivs"}), tracer_provider=provider
    )

    await _token_request(app, user_token, stage_arn)

    finished = spans.get_finished_spans()
    server = _server_span(finished)
    (call,) = [s for s in finished if s.name.endswith("CreateParticipantToken")]
    assert call.context.trace_id == server.context.trace_id
    assert "ivs.issue" in _by_name(finished)


async def test_a_jwks_fetch_made_for_a_request_is_in_its_trace(
    make_app: Callable[..., Litestar],
    provider: TracerProvider,
    spans: InMemorySpanExporter,
    env: dict[str, str],
    stage_arn: str,
) -> None:
    issuer, audience = "https://idp.example.com/realms/app", "ivs-token-service"
    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in "ab")

    def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
        return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "RS256"}

    with running_jwks_server([jwk(old, "k1")]) as idp:
        settings = load_settings(
            {k: v for k, v in env.items() if k != "TOKEN_SERVICE_AUTH_SHARED_SECRET"}
            | {
                "TOKEN_SERVICE_AUTH_JWKS_URL": idp.url,
                "TOKEN_SERVICE_AUTH_ISSUER": issuer,
                "TOKEN_SERVICE_AUTH_AUDIENCE": audience,
            }
        )
        app = make_app(settings=settings, tracer_provider=provider)
        now = int(time.time())
        claims = {"iss": issuer, "aud": audience, "sub": "u", "iat": now, "exp": now + 300}
        # Signed with a key the provider has only just published: the request fetches it.
        token = jwt.encode(claims, new, algorithm="RS256", headers={"kid": "k2"})
        async with AsyncTestClient(app=app) as client:
            _publish(idp, [jwk(old, "k1"), jwk(new, "k2")])
            spans.clear()
            response = await client.post(
                URL,
                json={"stageArn": stage_arn},
                headers={**bearer(token), "traceparent": TRACEPARENT},
            )
    assert response.status_code == 201, response.text

    finished = spans.get_finished_spans()
    (fetch,) = [s for s in finished if s.name == "jwks.fetch"]
    assert f"{fetch.context.trace_id:032x}" == TRACE_ID
    assert fetch.parent is not None
    assert fetch.parent.span_id == _by_name(finished)["authenticate"].context.span_id


def _publish(idp: JwksServer, keys: list[dict[str, Any]]) -> None:
    idp.set_keys(keys)


async def test_openmetrics_scrape_shows_the_trace_of_an_issuance_as_an_exemplar(
    traced_app: Litestar, user_token: MintUserToken, stage_arn: str
) -> None:
    async with AsyncTestClient(app=traced_app) as client:
        await client.post(
            URL,
            json={"stageArn": stage_arn},
            headers={**bearer(user_token()), "traceparent": TRACEPARENT},
        )
        scraped = await client.get(
            "/metrics",
            headers={"Accept": "application/openmetrics-text; version=1.0.0", **_admin()},
        )

    assert scraped.headers["content-type"].startswith("application/openmetrics-text")
    assert f'# {{trace_id="{TRACE_ID}"}}' in scraped.text
    assert scraped.text.rstrip().endswith("# EOF")


def _admin() -> dict[str, str]:
    return bearer(ADMIN_TOKEN)


async def test_with_tracing_off_a_request_makes_no_span(
    make_app: Callable[..., Litestar], user_token: MintUserToken, stage_arn: str
) -> None:
    app = make_app()

    async with AsyncTestClient(app=app) as client:
        response = await client.post(
            URL, json={"stageArn": stage_arn}, headers=bearer(user_token())
        )
        steps = (span("authenticate"), span("sign"))

    assert response.status_code == 201
    assert not tracing_on()
    assert steps[0] is steps[1]  # the one shared no-op context manager
    assert "OpenTelemetryPlugin" not in {type(plugin).__name__ for plugin in app.plugins}
