"""Credentials with more than one spelling are refused (issue 19, item 8): a JWT whose
segments carry base64 padding or other characters outside base64url, and a request with
several `Authorization` headers (which one counts would depend on who reads them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.security.conftest import serving
from token_service.auth import mint_user_token
from token_service.bootstrap.app import create_app
from token_service.config import load_settings

SHARED_SECRET = "credentials-shared-secret-" + "k" * 32
ADMIN_TOKEN = "admin-token-" + "a" * 24
Client = AsyncTestClient[Litestar]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(module_env: dict[str, str], module_ivs: Any) -> AsyncIterator[Client]:
    settings = load_settings(
        module_env
        | {
            "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
            "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
            # Generous: these tests are about credentials, not limits.
            "TOKEN_SERVICE_RATE_LIMIT_USER": "1000/second",
            "TOKEN_SERVICE_RATE_LIMIT_IP": "1000/second",
        }
    )
    async with AsyncTestClient(app=create_app(settings, ivs_client=module_ivs)) as test_client:
        yield test_client


def _token(sub: str = "alice") -> str:
    return mint_user_token(SHARED_SECRET.encode(), sub=sub, roles=["publisher"], ttl_seconds=600)


async def _issue(client: Client, stage_arn: str, headers: list[tuple[str, str]]) -> Any:
    return await client.post(
        "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=headers
    )


@pytest.fixture(scope="module")
def served(module_env: dict[str, str]) -> Iterator[str]:
    """A real server: repeated headers reach the app as sent only through one (the
    in-process test client folds them into one)."""
    env = module_env | {
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
        "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
    }
    with serving(env) as base:
        yield base


def _send(method: str, url: str, headers: list[tuple[str, str]], **kwargs: Any) -> httpx.Response:
    # httpx keeps repeated headers as separate lines on the wire when given as a list.
    with httpx.Client(timeout=30) as http:
        return http.send(http.build_request(method, url, headers=headers, **kwargs))


@pytest.mark.asyncio(loop_scope="module")
async def test_the_token_as_minted_is_accepted(client: Client, stage_arn: str) -> None:
    response = await _issue(client, stage_arn, [("authorization", f"Bearer {_token()}")])

    assert response.status_code == 201, response.text


def _respell(token: str, how: str) -> str:
    header, claims, signature = token.split(".")

    def padded(segment: str) -> str:
        # The padding standard base64 would have (a whole quantum when none is due): what
        # a lenient decoder accepts and skips.
        return segment + "=" * (-len(segment) % 4 or 4)

    return {
        "signature padded": f"{header}.{claims}.{padded(signature)}",
        "claims padded": f"{header}.{padded(claims)}.{signature}",
        "padding inside the signature": f"{header}.{claims}.{signature[:8]}={signature[8:]}",
        "standard base64 alphabet": f"{header}.{claims}.{signature.replace('-', '+')}+",
        "a space inside": f"{header}.{claims}.{signature[:8]} {signature[8:]}",
    }[how]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    "how",
    [
        "signature padded",
        "claims padded",
        "padding inside the signature",
        "standard base64 alphabet",
        "a space inside",
    ],
)
async def test_a_second_spelling_of_a_valid_token_is_401(
    client: Client, stage_arn: str, how: str
) -> None:
    respelled = _respell(_token(), how)

    response = await _issue(client, stage_arn, [("authorization", f"Bearer {respelled}")])

    assert response.status_code == 401
    assert respelled not in response.text


def test_two_authorization_headers_are_401_even_if_both_are_valid(
    served: str, stage_arn: str
) -> None:
    headers = [
        ("authorization", f"Bearer {_token('alice')}"),
        ("authorization", f"Bearer {_token('mallory')}"),
    ]

    response = _send(
        "POST", f"{served}/v1/participant-tokens", headers, json={"stageArn": stage_arn}
    )

    assert response.status_code == 401
    assert response.json()["detail"] == "several Authorization headers"


def test_two_authorization_headers_on_an_admin_route_are_401(served: str) -> None:
    headers = [("authorization", f"Bearer {ADMIN_TOKEN}")] * 2

    response = _send("GET", f"{served}/admin/keys", headers)

    assert response.status_code == 401
    assert response.json()["detail"] == "several Authorization headers"


def test_one_authorization_header_is_accepted_by_the_real_server(
    served: str, stage_arn: str
) -> None:
    response = _send(
        "POST",
        f"{served}/v1/participant-tokens",
        [("authorization", f"Bearer {_token()}")],
        json={"stageArn": stage_arn},
    )

    assert response.status_code == 201, response.text
