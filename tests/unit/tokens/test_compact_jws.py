"""tokens/compact_jws.py writes a participant token exactly as `jwt.encode` does."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from token_service.tokens.compact_jws import encode_es384, header_segment

KEY = ec.generate_private_key(ec.SECP384R1())
KID = "arn:aws:ivs:us-east-1:123456789012:public-key/AbCdEfGhIjKl"

CLAIMS: dict[str, dict[str, Any]] = {
    "a participant token": {
        "exp": 1_765_000_000,
        "iat": 1_764_996_400,
        "jti": "AbCdEfGhIjKlMnOpQrStUv",
        "resource": "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl",
        "topic": "AbCdEfGhIjKl",
        "events_url": "wss://global.events.live-video.net",
        "whip_url": "https://453fdfd2ad24df.global-bm.whip.live-video.net",
        "user_id": "user-1",
        "capabilities": {"allow_publish": True, "allow_subscribe": True},
        "version": "1.0",
    },
    "non-ASCII user id and attributes": {
        "exp": 1,
        "user_id": "Zoë 🎥",
        "attributes": {"名前": 'ü"\\/\n', "empty": ""},
    },
}


def _pyjwt(claims: dict[str, Any], kid: str | None = KID) -> str:
    return jwt.encode(claims, KEY, algorithm="ES384", headers={"kid": kid, "typ": "JWT"})


def _unpadded(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@pytest.mark.parametrize("claims", CLAIMS.values(), ids=CLAIMS.keys())
def test_the_signed_part_is_byte_for_byte_what_pyjwt_writes(claims: dict[str, Any]) -> None:
    ours = encode_es384(claims, KEY, KID)
    # ECDSA signatures are randomized: the header and payload segments must be equal.
    assert ours.rsplit(".", 1)[0] == _pyjwt(claims).rsplit(".", 1)[0]


@pytest.mark.parametrize("claims", CLAIMS.values(), ids=CLAIMS.keys())
def test_pyjwt_verifies_the_token_with_the_public_key(claims: dict[str, Any]) -> None:
    token = encode_es384(claims, KEY, KID)
    decoded = jwt.decode(
        token, KEY.public_key(), algorithms=["ES384"], options={"verify_exp": False}
    )
    assert decoded == claims
    assert jwt.get_unverified_header(token) == {"alg": "ES384", "kid": KID, "typ": "JWT"}


def test_the_payload_is_ascii_with_non_ascii_characters_escaped() -> None:
    token = encode_es384(CLAIMS["non-ASCII user id and attributes"], KEY, KID)
    payload = _unpadded(token.split(".")[1])
    assert payload.isascii()
    assert b"\\u00eb" in payload  # ë, as the web client's atob() can carry it


def test_no_segment_carries_base64_padding() -> None:
    for claims in CLAIMS.values():
        assert "=" not in encode_es384(claims, KEY, KID)


def test_the_signature_is_raw_r_and_s_of_48_bytes_each() -> None:
    token = encode_es384(CLAIMS["a participant token"], KEY, KID)
    signing_input, _, signature = token.rpartition(".")
    raw = _unpadded(signature)
    assert len(raw) == 96
    r, s = int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big")
    # Raises InvalidSignature unless R || S signs exactly the first two segments.
    KEY.public_key().verify(
        encode_dss_signature(r, s), signing_input.encode(), ec.ECDSA(hashes.SHA384())
    )


def test_the_header_segment_is_built_once_per_key_id() -> None:
    assert header_segment(KID) is header_segment(KID)
    assert json.loads(_unpadded(header_segment(KID).decode())) == {
        "alg": "ES384",
        "kid": KID,
        "typ": "JWT",
    }
