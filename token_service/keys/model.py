"""What a signing key is: its lifecycle status, its metadata, and its P-384 material.

Shared by every key store (directory, Secrets Manager) and by the shared lifecycle
state in Redis, so that metadata is written and parsed in exactly one way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

#: IVS allows at most three public keys per region (not adjustable).
IVS_KEY_LIMIT = 3
#: Default margin for clocks and in-flight requests before a retiring key may be dropped.
SAFETY_MARGIN = timedelta(minutes=5)


class KeyStatus(enum.StrEnum):
    NEXT = "next"
    ACTIVE = "active"
    RETIRING = "retiring"


#: The status a key has in the shared state once it was deleted from IVS (a tombstone):
#: replicas whose read-only store still holds its files must never sign with it again.
DELETED = "deleted"


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class SigningKey:
    name: str
    arn: str
    fingerprint: str
    status: KeyStatus
    created_at: datetime
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    #: When every token this key may have signed has expired.
    safe_to_delete_at: datetime | None = None
    #: The longest token lifetime the policy allowed while this key was active (recorded
    #: at activation), so a later, shorter policy cannot shorten its safe-delete time.
    max_token_lifetime: timedelta | None = None
    #: None when the shared state knows the key but its private half has not reached this
    #: replica's store yet (a mounted Secret takes a while to update).
    private_key: ec.EllipticCurvePrivateKey | None = field(
        default=None, repr=False, compare=False, kw_only=True
    )

    @property
    def loaded(self) -> bool:
        return self.private_key is not None

    def public_pem(self) -> str:
        if self.private_key is None:
            raise ValueError(f"the private key of {self.name} is not loaded")
        return public_pem(self.private_key)

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": self.name,
            "arn": self.arn,
            "fingerprint": self.fingerprint,
            "status": self.status.value,
            "createdAt": iso(self.created_at),
            "activatedAt": iso(self.activated_at),
            "retiredAt": iso(self.retired_at),
            "safeToDeleteAt": iso(self.safe_to_delete_at),
        }
        if self.max_token_lifetime is not None:
            meta["maxTokenLifetimeSeconds"] = int(self.max_token_lifetime.total_seconds())
        return meta


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def public_pem(private_key: ec.EllipticCurvePrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def private_pem(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def same_public_key(pem_a: str, pem_b: str) -> bool:
    def der(pem: str) -> bytes:
        key = serialization.load_pem_public_key(pem.encode())
        return key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    try:
        return der(pem_a) == der(pem_b)
    except ValueError:
        return False


def load_private_key(
    pem: bytes, where: str, problems: list[str]
) -> ec.EllipticCurvePrivateKey | None:
    """Parse a P-384 private key; any other key is a problem naming `where`."""
    try:
        private_key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        problems.append(f"{where}: not an unencrypted PEM private key")
        return None
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP384R1
    ):
        problems.append(f"{where}: IVS needs an EC P-384 (secp384r1) key")
        return None
    return private_key


def _parse_time(value: object, where: str, problems: list[str]) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{where}: expected an ISO 8601 time")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{where}: not an ISO 8601 time: {value!r}")
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def key_from_metadata(
    meta: object,
    where: str,
    problems: list[str],
    *,
    expected_name: str | None = None,
    private_key: ec.EllipticCurvePrivateKey | None = None,
) -> SigningKey | None:
    """A key from its metadata mapping; every problem is appended naming `where`."""
    if not isinstance(meta, dict):
        problems.append(f"{where}: expected a JSON object")
        return None
    before = len(problems)
    name, arn = meta.get("name"), meta.get("arn")
    if not isinstance(name, str) or not name or (expected_name and name != expected_name):
        problems.append(f"{where}: `name` must equal the file name ({expected_name})")
    if not isinstance(arn, str) or ":public-key/" not in arn:
        problems.append(f"{where}: `arn` must be the public key ARN from ImportPublicKey")
    try:
        status = KeyStatus(str(meta.get("status")))
    except ValueError:
        problems.append(f"{where}: `status` must be next, active or retiring")
        status = KeyStatus.RETIRING
    times = {
        k: _parse_time(meta.get(k), f"{where}: {k}", problems)
        for k in ("createdAt", "activatedAt", "retiredAt", "safeToDeleteAt")
    }
    lifetime = meta.get("maxTokenLifetimeSeconds")
    if lifetime is not None and (not isinstance(lifetime, int) or lifetime < 0):
        problems.append(f"{where}: `maxTokenLifetimeSeconds` must be a whole number of seconds")
        lifetime = None
    if len(problems) > before:
        return None
    return SigningKey(
        name=str(name),
        arn=str(arn),
        fingerprint=str(meta.get("fingerprint", "")),
        status=status,
        created_at=times["createdAt"] or datetime.fromtimestamp(0, UTC),
        activated_at=times["activatedAt"],
        retired_at=times["retiredAt"],
        safe_to_delete_at=times["safeToDeleteAt"],
        max_token_lifetime=timedelta(seconds=lifetime) if lifetime is not None else None,
        private_key=private_key,
    )
