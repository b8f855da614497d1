"""Helpers of the emulator tests: keys, self-signed tokens, signed raw requests."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
import jwt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def new_p384_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def claims_for(stage: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """Every claim of a valid self-signed token for `stage` (a Stage dict from boto3)."""
    now = int(time.time())
    arn = stage["arn"]
    claims: dict[str, Any] = {
        "exp": now + 3600,
        "iat": now,
        "jti": "participant1",
        "resource": arn,
        "topic": arn.rsplit("/", 1)[1],
        "events_url": stage["endpoints"]["events"],
        "whip_url": stage["endpoints"]["whip"],
        "capabilities": {"allow_publish": True, "allow_subscribe": True},
        "user_id": "user-1",
        "attributes": {"displayName": "Sam"},
        "version": "1.0",
    }
    claims.update(overrides)
    return claims


def self_signed(
    key: ec.EllipticCurvePrivateKey,
    kid: str,
    stage: Mapping[str, Any],
    omit: tuple[str, ...] = (),
    **overrides: Any,
) -> str:
    claims = claims_for(stage, **overrides)
    for name in omit:
        claims.pop(name)
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": kid})


def join(emulator_url: str, token: str) -> httpx.Response:
    return httpx.post(f"{emulator_url}/_emulator/join", json={"token": token})


def signed_request(
    emulator_url: str,
    method: str,
    path: str,
    body: bytes | Mapping[str, Any] = b"",
    region: str = "us-east-1",
    service: str = "ivs",
) -> httpx.Response:
    """A raw request with a real SigV4 signature, past boto3's client-side validation."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = AWSRequest(
        method=method,
        url=f"{emulator_url}{path}",
        data=data,
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), service, region).add_auth(request)
    return httpx.request(method, request.url, content=data, headers=dict(request.headers.items()))
