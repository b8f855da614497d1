"""The emulator's own token issuer: what signs CreateParticipantToken's tokens.

Real IVS signs those with a key of its own; the emulator does the same with an
ES384 key generated per state (persisted with it), so join can check them like
any other token. Its key ID is no ARN, so it can never collide with an imported key.
"""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

#: The `kid` of tokens the emulator issues itself.
INTERNAL_KID = "ivs-emulator-internal"


class InternalIssuer:
    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._private_key = private_key

    @classmethod
    def generate(cls) -> InternalIssuer:
        return cls(ec.generate_private_key(ec.SECP384R1()))

    @classmethod
    def from_pem(cls, pem: str) -> InternalIssuer:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("the emulator's issuer key must be an EC private key")
        return cls(key)

    def to_pem(self) -> str:
        return self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._private_key.public_key()

    def issue(self, claims: dict[str, Any]) -> str:
        # PyJWT writes ASCII-only JSON and raw R||S signatures, as IVS clients need.
        return jwt.encode(
            claims, self._private_key, algorithm="ES384", headers={"kid": INTERNAL_KID}
        )
