"""The signing key ring: load, generate, rotate, retire, delete, within IVS's three keys.

Each key is a P-384 private key in `<name>.pem` and its metadata in `<name>.json`
(public key ARN and fingerprint from ImportPublicKey, status, timestamps), both
mode 0600 in the keys directory. Statuses follow the three-slot lifecycle: `next`
(imported, not yet signing), `active` (signing), `retiring` (no longer signing, but
tokens it signed may still be unused until `safe_to_delete_at`).

IVS checks a token's signature when the participant joins, so deleting a key kills
every unused token it signed: a retiring key is kept until the longest lifetime
it could have issued has passed, unless the operator forces it (compromise).
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from token_service.errors import ConfigurationError, Conflict, NotFound, UpstreamFailed
from token_service.ivs import PublicKeyInfo

#: IVS allows at most three public keys per region (not adjustable).
IVS_KEY_LIMIT = 3
#: Margin for clocks and in-flight requests when deciding a retiring key is safe to drop.
SAFETY_MARGIN = timedelta(minutes=5)


class KeyStatus(enum.StrEnum):
    NEXT = "next"
    ACTIVE = "active"
    RETIRING = "retiring"


class PublicKeyRegistry(Protocol):
    """The IVS public-key operations the ring needs (implemented by `ivs.Ivs`)."""

    async def import_public_key(self, pem: str, name: str) -> PublicKeyInfo: ...

    async def get_public_key(self, arn: str) -> PublicKeyInfo: ...

    async def delete_public_key(self, arn: str) -> None: ...


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
    private_key: ec.EllipticCurvePrivateKey = field(repr=False, compare=False, kw_only=True)

    def public_pem(self) -> str:
        return public_pem(self.private_key)

    def metadata(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat().replace("+00:00", "Z") if value else None

        return {
            "name": self.name,
            "arn": self.arn,
            "fingerprint": self.fingerprint,
            "status": self.status.value,
            "createdAt": iso(self.created_at),
            "activatedAt": iso(self.activated_at),
            "retiredAt": iso(self.retired_at),
            "safeToDeleteAt": iso(self.safe_to_delete_at),
        }


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def public_pem(private_key: ec.EllipticCurvePrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _same_public_key(pem_a: str, pem_b: str) -> bool:
    def der(pem: str) -> bytes:
        key = serialization.load_pem_public_key(pem.encode())
        return key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    try:
        return der(pem_a) == der(pem_b)
    except ValueError:
        return False


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


class KeyFiles:
    """Reads and writes key pairs in one directory; every file is created mode 0600."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            # Atomic: a reader (another replica) sees the old file or the new one, never half.
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def save(self, key: SigningKey) -> None:
        pem_path = self.directory / f"{key.name}.pem"
        if not pem_path.exists():
            pem = key.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            self._write(pem_path, pem)
        self._write(
            self.directory / f"{key.name}.json",
            (json.dumps(key.metadata(), indent=2) + "\n").encode(),
        )

    def remove(self, name: str) -> None:
        (self.directory / f"{name}.json").unlink(missing_ok=True)
        (self.directory / f"{name}.pem").unlink(missing_ok=True)

    def load_all(self) -> list[SigningKey]:
        """Every key in the directory; any unreadable or wrong file is a start-up error."""
        if not self.directory.exists():
            return []
        problems: list[str] = []
        keys: list[SigningKey] = []
        for meta_path in sorted(self.directory.glob("*.json")):
            key = self._load_one(meta_path, problems)
            if key is not None:
                keys.append(key)
        if problems:
            raise ConfigurationError(problems)
        return keys

    def _load_one(self, meta_path: Path, problems: list[str]) -> SigningKey | None:
        pem_path = meta_path.with_suffix(".pem")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            pem = pem_path.read_bytes()
        except (OSError, ValueError) as exc:
            problems.append(f"{meta_path}: cannot read the key pair ({exc.__class__.__name__})")
            return None
        if not isinstance(meta, dict):
            problems.append(f"{meta_path}: expected a JSON object")
            return None
        try:
            private_key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            problems.append(f"{pem_path}: not an unencrypted PEM private key")
            return None
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP384R1
        ):
            problems.append(f"{pem_path}: IVS needs an EC P-384 (secp384r1) key")
            return None
        before = len(problems)
        name, arn = meta.get("name"), meta.get("arn")
        if not isinstance(name, str) or name != meta_path.stem:
            problems.append(f"{meta_path}: `name` must equal the file name ({meta_path.stem})")
        if not isinstance(arn, str) or ":public-key/" not in arn:
            problems.append(f"{meta_path}: `arn` must be the public key ARN from ImportPublicKey")
        try:
            status = KeyStatus(str(meta.get("status")))
        except ValueError:
            problems.append(f"{meta_path}: `status` must be next, active or retiring")
            status = KeyStatus.RETIRING
        times = {
            k: _parse_time(meta.get(k), f"{meta_path}: {k}", problems)
            for k in ("createdAt", "activatedAt", "retiredAt", "safeToDeleteAt")
        }
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
            private_key=private_key,
        )


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeleteResult:
    key: SigningKey
    forced: bool


class KeyRing:
    """The keys this service signs with, and the operations that change them."""

    def __init__(
        self,
        files: KeyFiles,
        registry: PublicKeyRegistry,
        *,
        max_token_lifetime: timedelta,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._files = files
        self._registry = registry
        self._max_token_lifetime = max_token_lifetime
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}

    def load(self) -> None:
        keys = self._files.load_all()
        active = [k.name for k in keys if k.status is KeyStatus.ACTIVE]
        if len(active) > 1:
            raise ConfigurationError(
                [f"{self._files.directory}: more than one active key: {', '.join(active)}"]
            )
        self._keys = {k.name: k for k in keys}

    def list_keys(self) -> list[SigningKey]:
        order = {KeyStatus.ACTIVE: 0, KeyStatus.NEXT: 1, KeyStatus.RETIRING: 2}
        return sorted(self._keys.values(), key=lambda k: (order[k.status], k.created_at))

    def active(self) -> SigningKey | None:
        for key in self._keys.values():
            if key.status is KeyStatus.ACTIVE:
                return key
        return None

    def get(self, name: str) -> SigningKey:
        try:
            return self._keys[name]
        except KeyError:
            raise NotFound(f"no signing key named {name!r}") from None

    async def rotate(self) -> SigningKey:
        """Import a fresh key, make it active, and retire the previous active key."""
        now = self._clock()
        if len(self._keys) >= IVS_KEY_LIMIT:
            await self._free_a_slot(now)
        private_key = generate_private_key()
        name = f"ts-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        pem = public_pem(private_key)
        info = await self._registry.import_public_key(pem, name)
        await self._verify_registered(info, pem)
        new_key = SigningKey(
            name=name,
            arn=info.arn,
            fingerprint=info.fingerprint,
            status=KeyStatus.ACTIVE,
            created_at=now,
            activated_at=now,
            private_key=private_key,
        )
        previous = self.active()
        # Save the new key before demoting the old one: a crash in between leaves two
        # active keys, which `load` reports, rather than none, which would stop issuing.
        self._files.save(new_key)
        self._keys[name] = new_key
        if previous is not None:
            retired = replace(
                previous,
                status=KeyStatus.RETIRING,
                retired_at=now,
                safe_to_delete_at=now + self._max_token_lifetime + SAFETY_MARGIN,
            )
            self._files.save(retired)
            self._keys[previous.name] = retired
        return new_key

    async def _verify_registered(self, info: PublicKeyInfo, pem: str) -> None:
        registered = await self._registry.get_public_key(info.arn)
        if registered.material is None or not _same_public_key(registered.material, pem):
            await self._registry.delete_public_key(info.arn)
            raise UpstreamFailed(
                f"IVS holds different key material for {info.arn} than was imported; "
                "the key was deleted again"
            )

    async def _free_a_slot(self, now: datetime) -> None:
        retiring = sorted(
            (k for k in self._keys.values() if k.status is KeyStatus.RETIRING),
            key=lambda k: k.retired_at or k.created_at,
        )
        for key in retiring:
            if key.safe_to_delete_at is None or key.safe_to_delete_at <= now:
                await self.delete(key.name)
                return
        raise Conflict(
            f"IVS allows {IVS_KEY_LIMIT} public keys per region and all are in use; the "
            "retiring key may still have unexpired tokens. Delete it with force=true to "
            "invalidate them, or wait until its safeToDeleteAt"
        )

    async def delete(self, name: str, *, force: bool = False) -> DeleteResult:
        key = self.get(name)
        now = self._clock()
        if key.status is KeyStatus.ACTIVE and not force:
            raise Conflict(f"key {name} is the active signing key; rotate first")
        unsafe = key.status is KeyStatus.RETIRING and (
            key.safe_to_delete_at is not None and key.safe_to_delete_at > now
        )
        if unsafe and not force:
            raise Conflict(
                f"tokens signed with {name} may be unexpired until "
                f"{key.metadata()['safeToDeleteAt']}; deleting now invalidates them "
                "(use force=true for a compromised key)"
            )
        # Already gone from IVS: forgetting the private key finishes the job.
        with contextlib.suppress(NotFound):
            await self._registry.delete_public_key(key.arn)
        self._files.remove(name)
        del self._keys[name]
        return DeleteResult(key=key, forced=force and (unsafe or key.status is KeyStatus.ACTIVE))
