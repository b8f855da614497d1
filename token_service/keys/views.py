"""Signing keys as operators see them: the JSON the admin API answers and `token-service
keys ...` prints, one shape for both."""

from __future__ import annotations

from typing import Literal

import msgspec

from token_service.ivs.client import PublicKeyInfo
from token_service.keys.model import SigningKey
from token_service.keys.ring import Reconciliation, Revocation


class KeyView(msgspec.Struct, rename="camel", kw_only=True):
    name: str
    arn: str
    fingerprint: str
    status: Literal["active", "next", "retiring"]
    created_at: str | None
    activated_at: str | None
    retired_at: str | None
    safe_to_delete_at: str | None


class KeyRevoked(msgspec.Struct, rename="camel", kw_only=True):
    revoked: KeyView
    #: Tokens signed with the revoked key that had not expired: they no longer join.
    invalidated_tokens: int
    #: What `invalidatedTokens` counts.
    invalidated_tokens_meaning: str
    #: The key signing now (None if the revoked key was active and none could replace it).
    active: KeyView | None
    #: Why no key is active after the revocation, when that is the case.
    problem: str | None = None


class PublicKeyAtIvs(msgspec.Struct, rename="camel", kw_only=True):
    name: str
    arn: str


class KeysReconciled(msgspec.Struct, rename="camel", kw_only=True):
    #: Keys this service imported half-way (never recorded), now deleted at IVS.
    deleted: list[PublicKeyAtIvs]
    #: Keys at IVS this service did not import or does not hold yet: left alone.
    unknown: list[PublicKeyAtIvs]


def _at_ivs(info: PublicKeyInfo) -> PublicKeyAtIvs:
    return PublicKeyAtIvs(name=info.name, arn=info.arn)


def reconciliation_view(result: Reconciliation) -> KeysReconciled:
    return KeysReconciled(
        deleted=[_at_ivs(k) for k in result.deleted],
        unknown=[_at_ivs(k) for k in result.unknown],
    )


def key_view(key: SigningKey) -> KeyView:
    meta = key.metadata()
    return KeyView(
        name=key.name,
        arn=key.arn,
        fingerprint=key.fingerprint,
        status=key.status.value,
        created_at=meta["createdAt"],
        activated_at=meta["activatedAt"],
        retired_at=meta["retiredAt"],
        safe_to_delete_at=meta["safeToDeleteAt"],
    )


def revocation_view(result: Revocation) -> KeyRevoked:
    return KeyRevoked(
        revoked=key_view(result.revoked),
        invalidated_tokens=result.invalidated_tokens,
        invalidated_tokens_meaning=result.count_meaning,
        active=key_view(result.active) if result.active else None,
        problem=result.problem,
    )
