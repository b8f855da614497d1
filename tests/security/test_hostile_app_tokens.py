"""Hostile app-user tokens, as a client sees them: POST /v1/participant-tokens on the
in-process app, with the shared-secret (HS256) authenticator, the OIDC/JWKS one, and
both together (the composite routes on `alg`).

Every hostile token must get 401 `application/problem+json` whose detail says why
without echoing the token (nor logging it), and must cost the identity provider
nothing: each case counts the requests a real JWKS HTTP server received.

One table, `CASES`, drives it: a case names the modes it applies to, builds its token
and says the detail expected in each mode. Verifier internals (the JWKS cache's
rotation, outages, cooldown clock, key filtering) are specified in
tests/integration/auth/test_oidc_jwks.py and tests/unit/test_auth_*.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import SHARED_SECRET, bearer
from tests.support.jwks_server import JwksServer, running_jwks_server
from token_service.bootstrap.app import create_app
from token_service.config import load_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

URL = "/v1/participant-tokens"
ISSUER = "https://idp.example.com/realms/app"
AUDIENCE = "ivs-token-service"
KID = "k1"
#: The service's leeway for exp/nbf/iat (TOKEN_SERVICE_AUTH_LEEWAY_SECONDS default).
LEEWAY = 30
#: JwksCache's unknown-kid cooldown (its default; the service does not change it).
COOLDOWN_SECONDS = 30
MODES = ("hs256", "oidc", "both")
Client = AsyncTestClient[Litestar]


# -- keys, provider, emulator and the three apps (once per module) ----------------------


@dataclass(frozen=True)
class Keys:
    idp: rsa.RSAPrivateKey
    attacker: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        idp=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        attacker=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec=ec.generate_private_key(ec.SECP256R1()),
    )


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def idp(keys: Keys) -> Iterator[JwksServer]:
    with running_jwks_server([public_jwk(keys.idp, KID)]) as server:
        yield server


@pytest.fixture(scope="module")
def attacker_jwks(keys: Keys) -> Iterator[JwksServer]:
    """Another key set, served for real, that a `jku` header points at."""
    with running_jwks_server([public_jwk(keys.attacker, "evil")]) as server:
        yield server


@pytest.fixture(scope="module")
def base_env(module_env: dict[str, str]) -> dict[str, str]:
    return module_env | {
        "TOKEN_SERVICE_AUTH_ISSUER": ISSUER,
        "TOKEN_SERVICE_AUTH_AUDIENCE": AUDIENCE,
    }


def mode_env(mode: str, base: dict[str, str], idp: JwksServer) -> dict[str, str]:
    shared = {"TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET}
    oidc = {"TOKEN_SERVICE_AUTH_JWKS_URL": idp.url}
    return {"hs256": base | shared, "oidc": base | oidc, "both": base | shared | oidc}[mode]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clients(
    base_env: dict[str, str], idp: JwksServer, module_ivs: Any
) -> AsyncIterator[dict[str, Client]]:
    async with (
        AsyncTestClient(
            app=create_app(load_settings(mode_env("hs256", base_env, idp)), ivs_client=module_ivs)
        ) as hs256,
        AsyncTestClient(
            app=create_app(load_settings(mode_env("oidc", base_env, idp)), ivs_client=module_ivs)
        ) as oidc,
        AsyncTestClient(
            app=create_app(load_settings(mode_env("both", base_env, idp)), ivs_client=module_ivs)
        ) as both,
    ):
        yield {"hs256": hs256, "oidc": oidc, "both": both}


# -- building tokens --------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(mode: str, **overrides: Any) -> dict[str, Any]:
    """Claims the mode's verifier accepts; an override of None removes the claim."""
    now = int(time.time())
    # In "both" mode the mode's own tokens are the provider's (RS256), so every mode
    # expects the same issuer and audience.
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "hostile-user",
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


@dataclass(frozen=True)
class Ctx:
    """What a case may use to build its token."""

    mode: str
    keys: Keys
    attacker_jwks: JwksServer

    def legit(self, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        """Signed the way the mode's own issuer signs (HS256 secret, or the IdP's RS256
        key `k1`), with these claim overrides and extra headers."""
        payload = claims(self.mode, **overrides)
        if self.mode == "hs256":
            return jwt.encode(payload, SHARED_SECRET, algorithm="HS256", headers=headers)
        return jwt.encode(
            payload, self.keys.idp, algorithm="RS256", headers={"kid": KID} | (headers or {})
        )

    def header(self, **extra: Any) -> dict[str, Any]:
        """The JOSE header of the mode's own tokens, plus `extra`."""
        if self.mode == "hs256":
            return {"alg": "HS256", "typ": "JWT"} | extra
        return {"alg": "RS256", "typ": "JWT", "kid": KID} | extra

    def raw(self, header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
        encoded = (b64url(json.dumps(part).encode()) for part in (header, payload))
        return ".".join((*encoded, b64url(signature)))

    def hmac_signed(self, secret: bytes, kid: str | None = KID) -> str:
        """HS256 over header.payload keyed with `secret` (algorithm confusion)."""
        header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
        payload = claims(self.mode)
        signing_input = ".".join(b64url(json.dumps(part).encode()) for part in (header, payload))
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(signature)}"

    def idp_public_pem(self) -> bytes:
        return self.keys.idp.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def idp_public_jwk_bytes(self) -> bytes:
        return json.dumps(public_jwk(self.keys.idp, KID)).encode()


def tamper_payload(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{b64url(json.dumps(decoded | changes).encode())}.{signature}"


def flip_signature(token: str) -> str:
    head, _, signature = token.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x01
    return f"{head}.{b64url(bytes(raw))}"


def now() -> int:
    return int(time.time())


# -- the table --------------------------------------------------------------------------

Expected = str | dict[str, str]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Ctx], str]
    #: The 401 detail: one for every mode, or per mode.
    detail: Expected
    modes: tuple[str, ...] = MODES
    #: JWKS fetches this token may cause (an unknown kid may cost one, per cooldown).
    max_fetches: int = 0
    #: Whether the detail is matched exactly or only contained.
    exact: bool = field(default=True)

    def expected(self, mode: str) -> str:
        return self.detail if isinstance(self.detail, str) else self.detail[mode]


UNSUPPORTED = "unsupported algorithm"
NONE_HEADER = {"alg": "none", "typ": "JWT"}

CASES = [
    Case(
        "alg-none: no signature",
        lambda c: c.raw(NONE_HEADER, claims(c.mode)),
        UNSUPPORTED,
    ),
    Case(
        "alg-none: None capitalised, no signature",
        lambda c: c.raw({"alg": "None"}, claims(c.mode)),
        UNSUPPORTED,
    ),
    Case(
        "alg-none: carrying a valid token's signature",
        lambda c: c.raw(NONE_HEADER, claims(c.mode)) + c.legit().rpartition(".")[2],
        UNSUPPORTED,
    ),
    Case(
        "confusion: HS256 keyed with the provider's public key PEM",
        lambda c: c.hmac_signed(c.idp_public_pem()),
        {"oidc": UNSUPPORTED, "both": "invalid signature"},
        modes=("oidc", "both"),
    ),
    Case(
        "confusion: HS256 keyed with the provider's public JWK bytes",
        lambda c: c.hmac_signed(c.idp_public_jwk_bytes()),
        {"oidc": UNSUPPORTED, "both": "invalid signature"},
        modes=("oidc", "both"),
    ),
    Case(
        "family: RS256 when only HS256 is configured",
        lambda c: jwt.encode(claims(c.mode), c.keys.idp, algorithm="RS256", headers={"kid": KID}),
        UNSUPPORTED,
        modes=("hs256",),
    ),
    Case(
        "family: HS512 when HS256 is configured",
        lambda c: jwt.encode(claims(c.mode), SHARED_SECRET * 2, algorithm="HS512"),
        UNSUPPORTED,
        modes=("hs256",),
    ),
    Case(
        "family: ES256 when RS256 is configured",
        lambda c: jwt.encode(claims(c.mode), c.keys.ec, algorithm="ES256", headers={"kid": KID}),
        UNSUPPORTED,
        modes=("oidc", "both"),
    ),
    Case(
        "family: PS256 by the provider's own key when RS256 is configured",
        lambda c: jwt.encode(claims(c.mode), c.keys.idp, algorithm="PS256", headers={"kid": KID}),
        UNSUPPORTED,
        modes=("oidc", "both"),
    ),
    Case(
        "expiry: beyond the leeway",
        lambda c: c.legit(iat=now() - 3600, exp=now() - 2 * LEEWAY),
        "token expired",
    ),
    Case(
        "future: nbf beyond the leeway",
        lambda c: c.legit(nbf=now() + 4 * LEEWAY),
        "token not yet valid",
    ),
    Case(
        "future: iat beyond the leeway",
        lambda c: c.legit(iat=now() + 4 * LEEWAY),
        "token not yet valid",
    ),
    Case("exp: missing", lambda c: c.legit(exp=None), "missing exp claim"),
    Case(
        "exp: a string",
        lambda c: c.legit(exp=str(now() + 600)),
        "malformed exp claim",
    ),
    Case("sub: missing", lambda c: c.legit(sub=None), "missing user id claim"),
    Case("sub: empty", lambda c: c.legit(sub=""), "malformed user id claim"),
    Case("aud: wrong", lambda c: c.legit(aud="another-api"), "wrong audience"),
    Case("aud: missing", lambda c: c.legit(aud=None), "missing aud claim"),
    Case(
        "aud: several without azp",
        lambda c: c.legit(aud=["another-api", AUDIENCE]),
        "several audiences without a matching azp claim",
    ),
    Case(
        "aud: several with another party's azp",
        lambda c: c.legit(aud=["another-api", AUDIENCE], azp="another-api"),
        "several audiences without a matching azp claim",
    ),
    Case("iss: wrong", lambda c: c.legit(iss="https://evil.example.com"), "wrong issuer"),
    Case("iss: a prefix of ours", lambda c: c.legit(iss=ISSUER[:-1]), "wrong issuer"),
    Case("iss: ours plus a path", lambda c: c.legit(iss=ISSUER + "/evil"), "wrong issuer"),
    Case(
        "iss: ours plus a host suffix", lambda c: c.legit(iss=ISSUER + ".evil.com"), "wrong issuer"
    ),
    Case("iss: ours with a trailing slash", lambda c: c.legit(iss=ISSUER + "/"), "wrong issuer"),
    Case("iss: missing", lambda c: c.legit(iss=None), "missing iss claim"),
    Case(
        "key-header: jku pointing at another key set, signed by its key",
        lambda c: jwt.encode(
            claims(c.mode),
            c.keys.attacker,
            algorithm="RS256",
            headers={"kid": "evil", "jku": c.attacker_jwks.url},
        ),
        "token header names its own key (jku/x5u/jwk): not accepted",
    ),
    Case(
        "key-header: jku on a token otherwise valid",
        lambda c: c.legit(headers={"jku": c.attacker_jwks.url}),
        "token header names its own key (jku/x5u/jwk): not accepted",
    ),
    Case(
        "key-header: x5u pointing at another certificate, signed by its key",
        lambda c: jwt.encode(
            claims(c.mode),
            c.keys.attacker,
            algorithm="RS256",
            headers={"kid": "evil", "x5u": c.attacker_jwks.url.replace("jwks.json", "cert.pem")},
        ),
        "token header names its own key (jku/x5u/jwk): not accepted",
    ),
    Case(
        "key-header: embedded jwk, signed by that key",
        lambda c: jwt.encode(
            claims(c.mode),
            c.keys.attacker,
            algorithm="RS256",
            headers={"kid": KID, "jwk": public_jwk(c.keys.attacker, KID)},
        ),
        "token header names its own key (jku/x5u/jwk): not accepted",
    ),
    Case(
        "crit: unknown extension",
        lambda c: c.legit(headers={"crit": ["exp-ext"], "exp-ext": True}),
        "unsupported critical header (crit)",
    ),
    Case(
        "crit: b64, an extension PyJWT knows",
        # Built by hand: PyJWT drops `"b64": true` (the default) when encoding.
        lambda c: c.raw(c.header(crit=["b64"], b64=True), claims(c.mode), b"s" * 32),
        "unsupported critical header (crit)",
    ),
    Case(
        "crit: empty",
        lambda c: c.legit(headers={"crit": []}),
        "unsupported critical header (crit)",
    ),
    Case(
        "signature: payload tampered (sub changed)",
        lambda c: tamper_payload(c.legit(), sub="admin"),
        "invalid signature",
    ),
    Case(
        "signature: payload tampered (roles added)",
        lambda c: tamper_payload(c.legit(), roles=["publisher"]),
        "invalid signature",
    ),
    Case("signature: one bit flipped", lambda c: flip_signature(c.legit()), "invalid signature"),
    Case(
        "signature: HS256 with another secret",
        lambda c: jwt.encode(claims(c.mode), "another-secret-" + "y" * 32, algorithm="HS256"),
        "invalid signature",
        modes=("hs256",),
    ),
    Case(
        "signature: known kid, another key",
        lambda c: jwt.encode(
            claims(c.mode), c.keys.attacker, algorithm="RS256", headers={"kid": KID}
        ),
        "invalid signature",
        modes=("oidc", "both"),
    ),
    Case(
        "kid: unknown",
        lambda c: jwt.encode(
            claims(c.mode), c.keys.attacker, algorithm="RS256", headers={"kid": uuid.uuid4().hex}
        ),
        "unknown signing key",
        modes=("oidc", "both"),
        max_fetches=1,
    ),
    Case(
        "size: a megabyte-long token",
        lambda c: c.legit(padding="x" * 1024 * 1024),
        "token too large",
    ),
    Case("malformed: not a JWT", lambda c: "not-a-jwt", "malformed token"),
    Case("malformed: two segments", lambda c: c.legit().rpartition(".")[0], "malformed token"),
    Case(
        "malformed: header not JSON",
        lambda c: b64url(b"{not json") + "." + c.legit().split(".", 1)[1],
        "malformed token",
    ),
]


def _case_params() -> list[Any]:
    return [
        pytest.param(mode, case, id=f"{mode}: {case.name}") for case in CASES for mode in case.modes
    ]


def assert_refused_without_echo(response: httpx.Response, token: str, detail: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert (body["status"], body["detail"]) == (401, detail)
    for part in (token, *token.split(".")):
        if len(part) >= 8:
            assert part not in response.text


# -- tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_the_modes_own_token_is_accepted(
    clients: dict[str, Client], mode: str, keys: Keys, attacker_jwks: JwksServer, stage_arn: str
) -> None:
    """The control: without it every 401 below could be a broken setup."""
    token = Ctx(mode, keys, attacker_jwks).legit()
    response = await clients[mode].post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("mode", MODES)
async def test_expiry_within_the_leeway_is_accepted(
    clients: dict[str, Client], mode: str, keys: Keys, attacker_jwks: JwksServer, stage_arn: str
) -> None:
    token = Ctx(mode, keys, attacker_jwks).legit(iat=now() - 600, exp=now() - LEEWAY // 3)
    response = await clients[mode].post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("mode", ["hs256", "oidc"])
async def test_several_audiences_with_ours_as_azp_are_accepted(
    clients: dict[str, Client], mode: str, keys: Keys, attacker_jwks: JwksServer, stage_arn: str
) -> None:
    token = Ctx(mode, keys, attacker_jwks).legit(aud=["another-api", AUDIENCE], azp=AUDIENCE)
    response = await clients[mode].post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(("mode", "case"), _case_params())
async def test_hostile_token_is_401_saying_why_without_echo_or_fetch(
    clients: dict[str, Client],
    mode: str,
    case: Case,
    keys: Keys,
    idp: JwksServer,
    attacker_jwks: JwksServer,
    stage_arn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = case.build(Ctx(mode, keys, attacker_jwks))
    fetched_before = idp.requests
    with caplog.at_level(logging.DEBUG):
        response = await clients[mode].post(
            URL, json={"stageArn": stage_arn}, headers=bearer(token)
        )
    assert_refused_without_echo(response, token, case.expected(mode))
    assert idp.requests - fetched_before <= case.max_fetches
    assert attacker_jwks.requests == 0
    for part in (token, *token.split(".")):
        if len(part) >= 8:
            assert part not in caplog.text


async def test_a_thousand_random_kids_cost_at_most_one_jwks_fetch_per_cooldown(
    base_env: dict[str, str], keys: Keys, module_ivs: Any, stage_arn: str
) -> None:
    """A fresh provider and app, so nothing else spends the cooldown: 500 concurrent and
    500 sequential tokens, each naming a kid nobody published."""
    with running_jwks_server([public_jwk(keys.idp, KID)]) as provider:
        app = create_app(load_settings(mode_env("oidc", base_env, provider)), ivs_client=module_ivs)
        async with AsyncTestClient(app=app) as client:
            after_start = provider.requests
            started = time.monotonic()
            body = {"stageArn": stage_arn}
            forged = [
                Ctx("oidc", keys, provider).raw(
                    {"alg": "RS256", "typ": "JWT", "kid": uuid.uuid4().hex},
                    claims("oidc"),
                    uuid.uuid4().bytes * 16,
                )
                for _ in range(1000)
            ]
            concurrent = await asyncio.gather(
                *(client.post(URL, json=body, headers=bearer(token)) for token in forged[:500])
            )
            sequential = [
                await client.post(URL, json=body, headers=bearer(token)) for token in forged[500:]
            ]
            elapsed = time.monotonic() - started
            fetches = provider.requests - after_start
            legit = await client.post(
                URL, json=body, headers=bearer(Ctx("oidc", keys, provider).legit())
            )
    # The figure for docs/reliability.md (shown with `pytest -s`).
    print(f"1000 random kids: {fetches} JWKS fetch(es) in {elapsed:.1f} s")
    outcomes = {(r.status_code, r.json()["detail"]) for r in (*concurrent, *sequential)}
    assert outcomes == {(401, "unknown signing key")}
    assert 1 <= fetches <= 1 + int(elapsed // COOLDOWN_SECONDS), (fetches, elapsed)
    assert legit.status_code == 201, legit.text
