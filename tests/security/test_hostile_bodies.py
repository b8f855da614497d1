"""Hostile request bodies and headers on POST /v1/participant-tokens (and the exchange
route, which shares the strict body decoder), as a client sees them.

What is refused is a 400 problem naming the field (`errors[0].field`); what is
accepted must reach the participant exactly as sent, read the way the real web
client reads a token (`amazon-ivs-web-broadcast`: split on ".", base64url, `atob`,
`JSON.parse`; the claims JSON is ASCII-only so `atob`'s Latin-1 and UTF-8 agree), and
the emulator's join must accept the token and show the same user id and attributes.

Malformed JSON of other kinds (truncated, not an object, empty, wrong field types)
is in tests/http/test_token_request_errors.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from ivs_realtime_emulator.server import EmulatorServer
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import SHARED_SECRET, bearer
from tests.security.conftest import serving
from tests.support.tools import needs_tool
from token_service.auth import mint_user_token
from token_service.bootstrap.app import create_app
from token_service.config import load_settings
from token_service.http.head_limits import MAX_HEAD_BYTES

pytestmark = pytest.mark.asyncio(loop_scope="module")

URL = "/v1/participant-tokens"
ADMIN = "security-admin-token-0123456789"
JSON = {"Content-Type": "application/json"}
#: IVS counts attribute keys plus values in UTF-8 bytes and wants them under 1 KiB
#: (docs/ivs-facts.md, "The self-signed token": "at most 1 KB in all"): 1023 is the most accepted.
ATTRIBUTES_MAX_BYTES = 1023
Client = AsyncTestClient[Litestar]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(module_env: dict[str, str], module_ivs: Any) -> AsyncIterator[Client]:
    settings = load_settings(
        module_env
        | {"TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET, "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN}
    )
    async with AsyncTestClient(app=create_app(settings, ivs_client=module_ivs)) as test_client:
        yield test_client


def user(sub: str = "body-user") -> str:
    return mint_user_token(SHARED_SECRET.encode(), sub=sub, roles=["publisher"])


def web_client_claims(token: str) -> dict[str, Any]:
    """The claims as amazon-ivs-web-broadcast reads them: base64url to base64, `atob`
    (bytes as Latin-1 code points), `JSON.parse`."""
    segment = token.split(".")[1]
    standard = segment.replace("-", "+").replace("_", "/") + "=" * (-len(segment) % 4)
    claims: dict[str, Any] = json.loads(base64.b64decode(standard).decode("latin-1"))
    return claims


def raw_claims(token: str) -> bytes:
    segment = token.split(".")[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def post_raw(client: Client, content: bytes, headers: dict[str, str] | None = None) -> Any:
    declared = JSON if headers is None else headers
    return await client.post(URL, content=content, headers=bearer(user()) | declared)


def body_with(stage_arn: str, attributes_json: str) -> bytes:
    """A request body whose attributes object is given as raw JSON text."""
    return f'{{"stageArn": "{stage_arn}", "attributes": {attributes_json}}}'.encode()


def attributes_of_size(size: int) -> dict[str, str]:
    """Attributes taking exactly `size` bytes of UTF-8 (keys plus values), with 1-, 2-,
    3- and 4-byte characters, so bytes and characters differ."""
    attributes = {"emoji": "🎤" * 50, "euro": "€" * 50, "umlaut": "ü" * 50}
    used = sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items())
    attributes["pad"] = "x" * (size - used - len(b"pad"))
    assert sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items()) == size
    return attributes


# -- refused: 400 naming the field ------------------------------------------------------

#: (id, body with {arn} for the stage ARN, field, words the message contains).
REFUSED_BODIES = [
    ("utf8: invalid byte", b'{"stageArn": "{arn}", "attributes": {"k": "\xff"}}', "body", "UTF-8"),
    (
        "utf8: overlong encoding of /",
        b'{"stageArn": "{arn}", "attributes": {"k": "\xc0\xaf"}}',
        "body",
        "UTF-8",
    ),
    (
        "utf8: encoded surrogate",
        b'{"stageArn": "{arn}", "attributes": {"k": "\xed\xa0\x80"}}',
        "body",
        "UTF-8",
    ),
    (
        "utf8: truncated sequence",
        b'{"stageArn": "{arn}", "attributes": {"k": "\xe2\x82"}}',
        "body",
        "UTF-8",
    ),
    (
        "utf8: invalid byte in a key",
        b'{"stageArn": "{arn}", "attributes": {"\xfe": "v"}}',
        "body",
        "UTF-8",
    ),
    ("nesting: 5000 arrays", b"[" * 5000 + b"]" * 5000, "body", ""),
    ("nesting: 2000 objects", b'{"a": ' * 2000 + b"1" + b"}" * 2000, "a", "unknown field"),
    (
        "nesting: inside attributes",
        b'{"stageArn": "{arn}", "attributes": {"k": ' + b"[" * 3000 + b"]" * 3000 + b"}}",
        "attributes",
        "",
    ),
    ("bom: before the JSON", b'\xef\xbb\xbf{"stageArn": "{arn}"}', "body", "JSON"),
    (
        "duplicate: stageArn",
        b'{"stageArn": "{arn}", "stageArn": "{arn}"}',
        "stageArn",
        "duplicate key",
    ),
    (
        "duplicate: stageArn, the second another stage",
        b'{"stageArn": "{arn}", "stageArn": "arn:aws:ivs:us-east-1:123456789012:stage/Other"}',
        "stageArn",
        "duplicate key",
    ),
    (
        "duplicate: attribute key",
        b'{"stageArn": "{arn}", "attributes": {"role": "viewer", "role": "host"}}',
        "attributes.role",
        "duplicate key",
    ),
    (
        "duplicate: key spelled with an escape",
        b'{"stageArn": "{arn}", "attributes": {"role": "viewer", "r\\u006fle": "host"}}',
        "attributes.role",
        "duplicate key",
    ),
    (
        "duplicate: keys starting with a colon, spaced differently",
        b'{"stageArn": "{arn}", "attributes": {"a": "v", ":x": "1", "b" : "w" , ":x": "2"}}',
        "attributes.:x",
        "duplicate key",
    ),
    (
        "control: raw C1 (NEL as UTF-8) in a value",
        b'{"stageArn": "{arn}", "attributes": {"k": "a\xc2\x85b"}}',
        "attributes.k",
        "control character",
    ),
    (
        "surrogate: lone high in a value",
        b'{"stageArn": "{arn}", "attributes": {"k": "\\ud800"}}',
        "attributes.k",
        "lone surrogate",
    ),
    (
        "surrogate: lone low in a value",
        b'{"stageArn": "{arn}", "attributes": {"k": "a\\udc00b"}}',
        "attributes.k",
        "lone surrogate",
    ),
    (
        "surrogate: pair in the wrong order",
        b'{"stageArn": "{arn}", "attributes": {"k": "\\udfa4\\ud83c"}}',
        "attributes.k",
        "lone surrogate",
    ),
    (
        "surrogate: lone in a key",
        b'{"stageArn": "{arn}", "attributes": {"k\\ud800": "v"}}',
        "attributes.k\\ud800",
        "lone surrogate",
    ),
    (
        "control: NUL in a value",
        b'{"stageArn": "{arn}", "attributes": {"k": "a\\u0000b"}}',
        "attributes.k",
        "control character",
    ),
    (
        "control: NUL in a key",
        b'{"stageArn": "{arn}", "attributes": {"a\\u0000b": "v"}}',
        "attributes.a\\u0000b",
        "control character",
    ),
    (
        "control: newline in a value",
        b'{"stageArn": "{arn}", "attributes": {"k": "line\\nforged"}}',
        "attributes.k",
        "control character",
    ),
    (
        "control: tab in a value",
        b'{"stageArn": "{arn}", "attributes": {"k": "a\\tb"}}',
        "attributes.k",
        "control character",
    ),
    (
        "control: DEL in a value",
        b'{"stageArn": "{arn}", "attributes": {"k": "a\\u007fb"}}',
        "attributes.k",
        "control character",
    ),
    (
        "control: C1 (NEL) in a value",
        b'{"stageArn": "{arn}", "attributes": {"k": "a\\u0085b"}}',
        "attributes.k",
        "control character",
    ),
    ("control: NUL in stageArn", b'{"stageArn": "{arn}\\u0000"}', "stageArn", "control character"),
]


@pytest.mark.parametrize(
    ("content", "field", "words"),
    [
        pytest.param(content, field, words, id=name)
        for name, content, field, words in REFUSED_BODIES
    ],
)
async def test_hostile_body_is_400_naming_the_field(
    client: Client, stage_arn: str, content: bytes, field: str, words: str
) -> None:
    response = await post_raw(client, content.replace(b"{arn}", stage_arn.encode()))
    body = problem(response, 400)
    assert body["errors"][0]["field"].startswith(field), body
    assert words in body["errors"][0]["message"], body


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        pytest.param(None, "required", id="missing"),
        pytest.param("text/plain", "application/json", id="text/plain"),
        pytest.param("application/x-www-form-urlencoded", "application/json", id="form"),
        pytest.param("multipart/form-data; boundary=x", "application/json", id="multipart"),
        pytest.param("application/xml", "application/json", id="xml"),
        pytest.param("application/json; charset=iso-8859-1", "utf-8", id="latin-1 charset"),
        pytest.param("application/json; charset=utf-16", "utf-8", id="utf-16 charset"),
    ],
)
async def test_body_not_declared_as_utf8_json_is_415_naming_content_type(
    client: Client, stage_arn: str, content_type: str | None, message: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await post_raw(client, json.dumps({"stageArn": stage_arn}).encode(), headers)
    body = problem(response, 415)
    assert body["type"].endswith("/unsupported-media-type")
    error = body["errors"][0]
    assert error["field"] == "Content-Type"
    assert message in error["message"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=UTF-8",
        'application/json;charset="utf-8"',
        "application/merge-patch+json",
    ],
)
async def test_json_content_types_are_accepted(
    client: Client, stage_arn: str, content_type: str
) -> None:
    content = json.dumps({"stageArn": stage_arn}).encode()
    response = await post_raw(client, content, {"Content-Type": content_type})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("size", [ATTRIBUTES_MAX_BYTES + 1, ATTRIBUTES_MAX_BYTES + 2])
async def test_attributes_over_the_ivs_limit_are_400_naming_attributes(
    client: Client, stage_arn: str, size: int
) -> None:
    response = await client.post(
        URL,
        json={"stageArn": stage_arn, "attributes": attributes_of_size(size)},
        headers=bearer(user()),
    )
    error = problem(response, 400)["errors"][0]
    assert error["field"] == "attributes"
    assert f"take {size} bytes" in error["message"]


async def test_megabyte_body_is_413(client: Client) -> None:
    response = await post_raw(client, b'{"stageArn": "' + b"a" * (1024 * 1024) + b'"}')
    problem(response, 413)


# -- accepted: the participant sees exactly what was sent -------------------------------

EDGE_TEXT = {
    "non-BMP emoji": "Zoë 🎤🎧",
    "emoji ZWJ sequence": "👩\u200d👩\u200d👧",
    "combining marks": "e\u0301\u0302 A\u030a",
    "right-to-left mark": "\u200f\u05e9\u05dc\u05d5\u05dd\u200f",  # RLM, Hebrew "shalom", RLM
    "right-to-left override": "abc\u202edef",
    "U+2028 and U+2029": "a\u2028b\u2029c",
    "BOM inside a value": "\ufeffhello",
    "CJK and Arabic": "日本語 مرحبا",
    "last code point": "\U0010fffd",
    "quotes, backslash, script tag": '"\\/</script><!--',
}


async def issue(client: Client, sub: str, stage_arn: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        URL, json={"stageArn": stage_arn, **fields}, headers=bearer(user(sub))
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def joined_participant(emulator: EmulatorServer, ivs: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Join with the token through the emulator; the participant as GetParticipant shows it."""
    joined = httpx.post(f"{emulator.url}/_emulator/join", json={"token": body["token"]}, timeout=5)
    assert joined.status_code == 200, joined.text
    session = ivs.get_stage(arn=body["stageArn"])["stage"]["activeSessionId"]
    participant: dict[str, Any] = ivs.get_participant(
        stageArn=body["stageArn"], sessionId=session, participantId=body["participantId"]
    )["participant"]
    return participant


@pytest.mark.parametrize(("name", "text"), list(EDGE_TEXT.items()), ids=list(EDGE_TEXT))
async def test_unicode_attribute_survives_into_the_token_and_the_join(
    client: Client,
    stage_arn: str,
    module_emulator: EmulatorServer,
    module_ivs: Any,
    name: str,
    text: str,
) -> None:
    attributes = {"value": text, text: "as a key"}
    body = await issue(client, "unicode-attrs", stage_arn, attributes=attributes)
    assert body["attributes"] == attributes
    assert raw_claims(body["token"]).isascii()
    assert web_client_claims(body["token"])["attributes"] == attributes
    assert joined_participant(module_emulator, module_ivs, body)["attributes"] == attributes


async def test_attributes_at_the_limit_are_accepted_and_join(
    client: Client, stage_arn: str, module_emulator: EmulatorServer, module_ivs: Any
) -> None:
    attributes = attributes_of_size(ATTRIBUTES_MAX_BYTES)
    body = await issue(client, "full-attrs", stage_arn, attributes=attributes)
    assert web_client_claims(body["token"])["attributes"] == attributes
    assert joined_participant(module_emulator, module_ivs, body)["attributes"] == attributes


USER_IDS = {
    "non-BMP emoji": "zoë🎤",
    "combining marks": "e\u0301\u0302",
    "CJK and Arabic": "日本語مرحبا",
    "128 emoji (IVS's 128-character limit)": "🎤" * 128,
}


@pytest.mark.parametrize("sub", list(USER_IDS.values()), ids=list(USER_IDS))
async def test_unicode_user_id_survives_into_the_token_and_the_join(
    client: Client, stage_arn: str, module_emulator: EmulatorServer, module_ivs: Any, sub: str
) -> None:
    body = await issue(client, sub, stage_arn)
    assert body["userId"] == sub
    assert raw_claims(body["token"]).isascii()
    assert web_client_claims(body["token"])["user_id"] == sub
    assert joined_participant(module_emulator, module_ivs, body)["userId"] == sub


REFUSED_USER_IDS = {
    "NUL": "a\x00b",
    "newline": "a\nforged",
    "right-to-left mark": "\u200fadmin",
    "right-to-left override": "abc\u202edef",
    "zero-width joiner (emoji sequence)": "👩\u200d👧",
    "U+2028": "a\u2028b",
    "BOM": "\ufeffadmin",
    "lone surrogate": "a\ud800b",
}


@pytest.mark.parametrize("sub", list(REFUSED_USER_IDS.values()), ids=list(REFUSED_USER_IDS))
async def test_unprintable_user_id_in_the_app_token_is_401(
    client: Client, stage_arn: str, sub: str
) -> None:
    """The user id comes from the app token's `sub`, so refusing it is the token's
    fault: 401 "malformed user id claim" (it reaches logs and records, where control
    and format characters forge or hide text)."""
    now = int(time.time())
    token = jwt.encode({"sub": sub, "iat": now, "exp": now + 600}, SHARED_SECRET)
    response = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    assert problem(response, 401)["detail"] == "malformed user id claim"


@needs_tool("node", "the web client's decoding is run in node")
async def test_node_decodes_the_claims_as_the_web_client_does(
    client: Client, stage_arn: str
) -> None:
    """The web client's own steps in a real JavaScript engine: `atob` then `JSON.parse`
    (and, for comparison, UTF-8 decoding of the same bytes)."""
    cases = [
        (sub, {"value": text, text: "key"})
        for sub, text in zip(
            [*USER_IDS.values(), *["plain"] * len(EDGE_TEXT)], EDGE_TEXT.values(), strict=False
        )
    ]
    tokens = [
        (await issue(client, sub, stage_arn, attributes=attrs))["token"] for sub, attrs in cases
    ]
    script = """
const tokens = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = tokens.map((token) => {
  const b64 = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const viaAtob = JSON.parse(atob(b64));
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const viaUtf8 = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  return {
    atob: [viaAtob.user_id, viaAtob.attributes],
    utf8: [viaUtf8.user_id, viaUtf8.attributes],
  };
});
process.stdout.write(JSON.stringify(out));
"""
    node = await asyncio.create_subprocess_exec(
        "node",
        "-e",
        script,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(node.communicate(json.dumps(tokens).encode()), 30)
    assert node.returncode == 0, stderr.decode()
    decoded = json.loads(stdout)
    for (sub, attrs), seen in zip(cases, decoded, strict=True):
        assert seen["atob"] == [sub, attrs]
        assert seen["utf8"] == [sub, attrs]


# -- the exchange route shares the strict decoder ---------------------------------------


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"durationMinutes": 30, "durationMinutes": 60}', "durationMinutes"),
        (b'{"attributes": {"k": "a\\u0000b"}}', "attributes.k"),
        (b'{"attributes": {"k": "\\ud800"}}', "attributes.k"),
    ],
    ids=["duplicate key", "NUL", "lone surrogate"],
)
async def test_hostile_exchange_body_is_400_naming_the_field(
    client: Client, stage_arn: str, content: bytes, field: str
) -> None:
    issued = await issue(client, "exchanger", stage_arn)
    response = await client.post(
        f"{URL}/{issued['participantId']}/exchange",
        content=content,
        headers=bearer(user("exchanger")) | JSON,
    )
    assert problem(response, 400)["errors"][0]["field"] == field


# -- the admin routes with bodies use it too --------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "field"),
    [
        (b'{"userId": "u1", "userId": "u2", "reason": "r"}', "application/json", "userId"),
        (b'{"userId": "u1", "reason": "line\\nforged"}', "application/json", "reason"),
        (b'{"userId": "u1", "reason": "r"}', "text/plain", "Content-Type"),
    ],
    ids=["duplicate key", "newline", "content type"],
)
async def test_hostile_ban_body_is_refused_naming_the_field(
    client: Client, content: bytes, content_type: str, field: str
) -> None:
    response = await client.post(
        "/admin/bans",
        content=content,
        headers=bearer(ADMIN) | {"Content-Type": content_type},
    )
    status = 415 if field == "Content-Type" else 400
    assert problem(response, status)["errors"][0]["field"] == field


async def test_disconnect_without_a_body_is_still_accepted(client: Client, stage_arn: str) -> None:
    """Its body is optional: an empty one skips the strict decoder, a hostile one does not."""
    issued = await issue(client, "disconnected", stage_arn)
    route = f"/admin/participants/{issued['participantId']}/disconnect"
    hostile = await client.post(
        route, content=b'{"reason": "a", "reason": "b"}', headers=bearer(ADMIN) | JSON
    )
    assert problem(hostile, 400)["errors"][0]["field"] == "reason"
    response = await client.post(route, headers=bearer(ADMIN))
    assert response.status_code == 200, response.text


# -- huge headers and bodies, through a real server process (uvicorn) -------------------


@pytest.fixture(scope="module")
def served(module_env: dict[str, str]) -> Iterator[str]:
    """`token-service serve` (uvicorn) on the module's emulator and signing key."""
    with serving(module_env | {"TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET}) as base:
        yield base


async def test_authorization_over_the_token_cap_but_within_the_head_limit_is_401(
    served: str, stage_arn: str
) -> None:
    token = "a" * (MAX_HEAD_BYTES - 4096)
    async with httpx.AsyncClient(base_url=served, timeout=30) as http:
        response = await http.post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    assert problem(response, 401)["detail"] == "token too large"
    assert token[:64] not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(bearer("a" * (1024 * 1024)), id="megabyte token"),
        pytest.param({"X-Junk": "j" * (1024 * 1024)}, id="megabyte header"),
        pytest.param({f"X-Junk-{i}": "j" * 64 for i in range(2000)}, id="2000 headers"),
        pytest.param({"X-Junk": "j" * (16 * 1024 * 1024)}, id="16 MiB header"),
    ],
)
async def test_request_head_over_64_kib_is_431_and_the_service_stays_healthy(
    served: str, stage_arn: str, headers: dict[str, str]
) -> None:
    """uvicorn has no head limit of its own and a huge header stalls the worker's loop
    (32 MiB: 1.7 s, 64 MiB: 17 s before the limit); the service's protocol refuses a
    head over 64 KiB as it arrives."""
    async with httpx.AsyncClient(base_url=served, timeout=60) as http:
        response = await http.post(URL, json={"stageArn": stage_arn}, headers=headers)
        body = problem(response, 431)
        assert body["title"] == "Request header fields too large"
        assert "a" * 64 not in response.text
        assert (await http.get("/healthz")).status_code == 200


async def test_head_limit_is_per_request_on_a_keep_alive_connection(served: str) -> None:
    """Two hundred requests of 2 KiB of headers each share one connection (400 KiB of
    heads in all): each is counted alone."""
    async with httpx.AsyncClient(base_url=served, timeout=30) as http:
        for _ in range(200):
            response = await http.get("/healthz", headers={"X-Padding": "p" * 2048})
            assert response.status_code == 200


async def test_chunked_body_over_the_limit_is_413(served: str) -> None:
    """No Content-Length to check up front: the limit holds while the body streams in."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1024):
            yield b" " * 1024

    async with httpx.AsyncClient(base_url=served, timeout=30) as http:
        response = await http.post(URL, content=chunks(), headers=bearer(user()) | JSON)
    problem(response, 413)
