"""An IVS endpoint answering 200 with a malformed body (seen when the emulator died under
load; a proxy in front of IVS can do the same) is IVS failing: 502 with a problem document
and a log line, never a 500, and nothing of the answer in the log.

The upstream is a real HTTP server on loopback that answers every operation with the body a
test sets; the service's own boto3 adapter talks to it over HTTP.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from token_service.errors import UpstreamFailed
from token_service.http.problems import status_for
from token_service.ivs.client import Ivs

STAGE_ARN = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
KEY_ARN = "arn:aws:ivs:us-east-1:123456789012:public-key/AbCdEf123456"
LEAKED = "eyJhbGciOiJFUzM4NCJ9.leaked-token-text.sig"


class HostileUpstream:
    """Answers every POST with 200 and `body` (JSON)."""

    def __init__(self) -> None:
        self.body: Any = {}
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                payload = json.dumps(upstream.body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[HostileUpstream]:
    server = HostileUpstream()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def ivs(upstream: HostileUpstream) -> Iterator[Ivs]:
    client = boto3.session.Session().client(
        "ivs-realtime",
        endpoint_url=upstream.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=BotoConfig(retries={"max_attempts": 1}),
    )
    adapter = Ivs(client, workers=1)
    try:
        yield adapter
    finally:
        adapter.close()


CREATE_TOKEN_ANSWERS = {
    "empty object": {},
    "no participantToken": {"somethingElse": {"token": LEAKED}},
    "participantToken null": {"participantToken": None},
    "participantToken a string": {"participantToken": LEAKED},
    "no token": {"participantToken": {"participantId": "p1"}},
    "token null": {"participantToken": {"participantId": "p1", "token": None}},
    "token empty": {"participantToken": {"participantId": "p1", "token": ""}},
    "no participantId": {"participantToken": {"token": LEAKED}},
    "a list": [LEAKED],
}


async def _create(ivs: Ivs) -> object:
    return await ivs.create_participant_token(
        stage_arn=STAGE_ARN,
        user_id="u",
        duration_minutes=60,
        capabilities=("PUBLISH",),
        attributes={},
    )


@pytest.mark.parametrize("answer", CREATE_TOKEN_ANSWERS.values(), ids=CREATE_TOKEN_ANSWERS.keys())
async def test_a_malformed_create_participant_token_answer_is_a_502_logged_without_its_content(
    upstream: HostileUpstream, ivs: Ivs, answer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.body = answer

    with (
        caplog.at_level(logging.WARNING, logger="token_service.ivs.client"),
        pytest.raises(UpstreamFailed) as failed,
    ):
        await _create(ivs)

    assert status_for(failed.value) == 502
    assert "CreateParticipantToken" in failed.value.detail
    logged = [r for r in caplog.records if r.name == "token_service.ivs.client"]
    assert any("CreateParticipantToken" in r.getMessage() for r in logged)
    assert not any(LEAKED in r.getMessage() for r in caplog.records)


OTHER_OPERATIONS = {
    "GetStage without stage": ("get_stage", (STAGE_ARN,), {}),
    "GetStage with stage null": ("get_stage", (STAGE_ARN,), {"stage": None}),
    "GetStage without the arn": (
        "get_stage",
        (STAGE_ARN,),
        {"stage": {"endpoints": {"events": "wss://e", "whip": "https://w"}}},
    ),
    "GetPublicKey without publicKey": ("get_public_key", (KEY_ARN,), {}),
    "GetPublicKey with arn null": ("get_public_key", (KEY_ARN,), {"publicKey": {"arn": None}}),
    "ImportPublicKey without publicKey": ("import_public_key", ("pem", "name"), {}),
    "ListPublicKeys with a key without arn": (
        "list_public_keys",
        (),
        {"publicKeys": [{"name": "k"}]},
    ),
}


@pytest.mark.parametrize("case", OTHER_OPERATIONS.values(), ids=OTHER_OPERATIONS.keys())
async def test_a_malformed_answer_to_any_read_operation_is_a_502(
    upstream: HostileUpstream, ivs: Ivs, case: tuple[str, tuple[Any, ...], Any]
) -> None:
    method, args, answer = case
    upstream.body = answer

    with pytest.raises(UpstreamFailed) as failed:
        await getattr(ivs, method)(*args)

    assert status_for(failed.value) == 502
