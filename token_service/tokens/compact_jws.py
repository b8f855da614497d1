"""ES384 JWTs in compact form, byte for byte as PyJWT writes them, for the token path.

`jwt.encode` costs ~60 µs per token beyond the signature itself on a small machine (its
claim checks, header building, a fresh `ECDSA` object and DER-to-raw conversion through
generic helpers), a fifth of the signature's own cost. A participant token's header is
the same for every token signed with one key, so its segment is built once per key id,
and the rest is the least the format needs:

- header: `{"alg":"ES384","kid":...,"typ":"JWT"}`, keys sorted and compact, as PyJWT's
  default `sort_headers` writes it;
- payload: `json.dumps` compact with `ensure_ascii` (non-ASCII as `\\uXXXX`, which the
  web client's `atob()` needs), as PyJWT writes claims;
- both base64url without padding (a valid WebSocket subprotocol), signature as raw
  R || S of 48 bytes each (RFC 7518, 3.4), as IVS expects.

tests/unit/tokens/test_compact_jws.py holds the equality with `jwt.encode` and that
PyJWT verifies the result. PyJWT still verifies every JWT the service reads.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

#: P-384's order is 384 bits: each of R and S takes 48 bytes.
_COORDINATE_BYTES = 48
_ES384 = ec.ECDSA(hashes.SHA384())


def _segment(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@functools.lru_cache(maxsize=64)
def header_segment(kid: str | None) -> bytes:
    """The encoded header of every token signed with key `kid` (a few keys per process)."""
    header = {"alg": "ES384", "kid": kid, "typ": "JWT"}
    return _segment(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())


def encode_es384(
    claims: Mapping[str, Any], private_key: ec.EllipticCurvePrivateKey, kid: str | None
) -> str:
    """The compact JWS of `claims`, signed ES384 with `private_key`, header `kid`."""
    payload = _segment(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = header_segment(kid) + b"." + payload
    r, s = decode_dss_signature(private_key.sign(signing_input, _ES384))
    signature = r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")
    return (signing_input + b"." + _segment(signature)).decode("ascii")
