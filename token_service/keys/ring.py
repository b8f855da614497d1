"""The signing key ring: load, generate, rotate, retire, delete, revoke, within IVS's three keys.

Lifecycle: `next` (imported, not yet signing) -> `active` (signing) -> `retiring`
(no longer signing, but tokens it signed may still be unused until its safe-delete
time) -> deleted (DeletePublicKey, private half forgotten). IVS checks a token's
signature when the participant joins, so deleting a key kills every unused token it
signed: a retiring key is kept until the longest lifetime it could have issued has
passed, unless the operator forces it (compromise).

Private keys come from a `KeyStore` (a directory or Secrets Manager). With Redis, the
lifecycle is shared (`state.RedisKeyState`) and every change is made under one lock
across replicas, so two replicas never rotate at once; without Redis the store's
metadata is the lifecycle and the lock excludes within this process only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import redis

from token_service.errors import ConfigurationError, Conflict, DomainError, NotFound, UpstreamFailed
from token_service.ivs.client import PublicKeyInfo
from token_service.keys.imports import ImportNotes, MemoryImportNotes
from token_service.keys.locks import Lease, Lock, MemoryLock
from token_service.keys.model import (
    DELETED,
    IVS_KEY_LIMIT,
    SAFETY_MARGIN,
    KeyStatus,
    SigningKey,
    generate_private_key,
    iso,
    key_from_metadata,
    public_pem,
    same_public_key,
)
from token_service.keys.state import LOCK_KEY, RedisKeyState, tombstone
from token_service.keys.store import KeyStore
from token_service.keys.usage import KeyUsage, MemoryKeyUsage

log = logging.getLogger(__name__)

#: How long one key operation may hold the lock: import, verify and delete at IVS's
#: pace with retries fit well inside; the state write is fenced should it not.
LEASE_SECONDS = 120.0
_EPOCH = datetime.fromtimestamp(0, UTC)


class PublicKeyRegistry(Protocol):
    """The IVS public-key operations the ring needs (implemented by `ivs.Ivs`)."""

    async def import_public_key(self, pem: str, name: str) -> PublicKeyInfo: ...

    async def get_public_key(self, arn: str) -> PublicKeyInfo: ...

    async def list_public_keys(self) -> list[PublicKeyInfo]: ...

    async def delete_public_key(self, arn: str) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeleteResult:
    key: SigningKey
    forced: bool


@dataclass(frozen=True)
class Rotation:
    #: The key that signs from now on.
    active: SigningKey
    #: The previous active key, now retiring (None when there was none).
    retired: SigningKey | None
    #: True when a prepared `next` key was promoted (no ImportPublicKey needed).
    promoted: bool
    #: Retiring keys deleted (once safe) to free an IVS slot for the new key.
    deleted: tuple[SigningKey, ...] = ()


@dataclass(frozen=True)
class Reconciliation:
    #: Keys this service imported half-way (noted, never recorded), deleted at IVS.
    deleted: tuple[PublicKeyInfo, ...]
    #: Keys at IVS this service neither holds nor noted: reported, left alone.
    unknown: tuple[PublicKeyInfo, ...]


@dataclass(frozen=True)
class ReconcileTally:
    orphans_deleted: int = 0
    unknown_at_ivs: int = 0


@dataclass(frozen=True)
class Revocation:
    revoked: SigningKey
    #: Tokens signed with the key that had not expired: DeletePublicKey invalidated them.
    invalidated_tokens: int
    #: What `invalidated_tokens` counts, in words.
    count_meaning: str
    #: The key signing now, if the revoked one was active and a successor could be made.
    active: SigningKey | None
    #: Why no successor is active, when the revoked key was active and none could be made.
    problem: str | None = None


class KeyRing:
    """The keys this service signs with, and the operations that change them."""

    def __init__(
        self,
        store: KeyStore,
        registry: PublicKeyRegistry,
        *,
        max_token_lifetime: timedelta,
        clock: Callable[[], datetime] = _now,
        shared: RedisKeyState | None = None,
        lock: Lock | None = None,
        usage: KeyUsage | None = None,
        delete_margin: timedelta = SAFETY_MARGIN,
        lock_wait_seconds: float = 15.0,
        flush_wait_seconds: float = 1.0,
        imports: ImportNotes | None = None,
    ) -> None:
        self._store = store
        self._registry = registry
        self._max_token_lifetime = max_token_lifetime
        self._clock = clock
        self._shared = shared
        self._lock: Lock = lock or MemoryLock()
        self.usage: KeyUsage = usage or MemoryKeyUsage()
        self._margin = delete_margin
        self._lock_wait = lock_wait_seconds
        self._flush_wait = flush_wait_seconds
        self._keys: dict[str, SigningKey] = {}
        self._generation: int | None = None
        self._store_version: str | None = None
        self._warned: set[str] = set()
        #: ARNs IVS answered "no such public key" for: deleted outside this service.
        self._unregistered: set[str] = set()
        self._imports: ImportNotes = imports or MemoryImportNotes()
        #: Keys the shared state wrongly holds active, retired in memory, to be committed.
        self._repairs: dict[str, SigningKey] = {}
        self._warned_actives: set[tuple[str, ...]] = set()
        #: What reconciliation found and did so far (for metrics).
        self.reconciled = ReconcileTally()

    # ------------------------------------------------------------------ reading

    @property
    def store(self) -> KeyStore:
        return self._store

    @property
    def shared(self) -> RedisKeyState | None:
        return self._shared

    @property
    def max_token_lifetime(self) -> timedelta:
        return self._max_token_lifetime

    @property
    def delete_margin(self) -> timedelta:
        return self._margin

    def now(self) -> datetime:
        return self._clock()

    def waiting_for_material(self) -> bool:
        """Whether the shared state names a key whose private half this store lacks."""
        return any(not k.loaded for k in self._keys.values())

    def load(self) -> None:
        """Read the store (synchronously, at start-up); the shared state comes with `refresh`."""
        version = self._store.version()
        self._install(self._merge(self._store.load_all(), {}), None, version)

    def list_keys(self) -> list[SigningKey]:
        order = {KeyStatus.ACTIVE: 0, KeyStatus.NEXT: 1, KeyStatus.RETIRING: 2}
        keys = sorted(self._keys.values(), key=lambda k: (order[k.status], k.created_at))
        return [replace(k, safe_to_delete_at=self.safe_to_delete_at(k)) for k in keys]

    def active(self) -> SigningKey | None:
        """The key to sign with now; None once IVS no longer knows it (see below)."""
        key = self._signing_key()
        if key is not None and key.arn in self._unregistered:
            # Every token signed with it would fail to join: refuse (503) instead.
            return None
        return key

    def missing_at_ivs(self) -> bool:
        """Whether IVS said, at the latest check, that it no longer holds the signing key."""
        key = self._signing_key()
        return key is not None and key.arn in self._unregistered

    async def check_active_registered(self) -> str | None:
        """Ask IVS whether it still holds the signing key; the problem, if it does not.

        A public key deleted at IVS behind this service's back (the console, the CLI,
        another tool) kills every token it signs at join time. Once IVS says it does
        not know the key, `active` stops returning it (token requests get 503 and
        readiness fails) until it answers otherwise or another key becomes active.
        When IVS cannot be asked (unreachable, throttled), nothing changes.
        """
        key = self._signing_key()
        if key is None:
            return None
        try:
            await self._registry.get_public_key(key.arn)
        except NotFound:
            missing = True
        except DomainError as exc:
            log.warning("could not check the signing key at IVS: %s", exc.detail)
            return None
        else:
            missing = False
        if missing:
            if key.arn not in self._unregistered:
                self._unregistered.add(key.arn)
                log.error(
                    "signing key %s (%s) is no longer registered at IVS; not signing with it: "
                    "run `token-service keys rotate` (or `keys revoke %s`)",
                    key.name,
                    key.arn,
                    key.name,
                    extra={"event": "signing_key_unregistered", "keyArn": key.arn},
                )
            return f"signing key {key.name} is not registered at IVS"
        if key.arn in self._unregistered:
            self._unregistered.discard(key.arn)
            log.warning("signing key %s is registered at IVS again; signing with it", key.name)
        return None

    def _signing_key(self) -> SigningKey | None:
        active = self._state_active()
        if active is not None and active.loaded:
            return active
        # The shared state names a key whose private half has not reached this replica
        # (a Secret mount updates within a minute or so): keep signing with the newest
        # retiring key held here. IVS still has it and its tokens are counted, so its
        # safe-delete time stays honest.
        held = [k for k in self._keys.values() if k.loaded and k.status is KeyStatus.RETIRING]
        if not held:
            return None
        return max(held, key=lambda k: k.retired_at or k.created_at)

    def get(self, name: str) -> SigningKey:
        try:
            return self._keys[name]
        except KeyError:
            raise NotFound(f"no signing key named {name!r}") from None

    def safe_to_delete_at(self, key: SigningKey) -> datetime | None:
        """When a retiring key's tokens have all expired, by the longest lifetime it issued.

        The lifetime is the larger of the one recorded when the key was activated and
        the current policy's: a later, shorter policy never shortens it.
        """
        if key.status is not KeyStatus.RETIRING:
            return None
        bounds = [key.safe_to_delete_at] if key.safe_to_delete_at else []
        if key.retired_at is not None:
            lifetime = max(key.max_token_lifetime or timedelta(0), self._max_token_lifetime)
            bounds.append(key.retired_at + lifetime + self._margin)
        return max(bounds) if bounds else None

    # ------------------------------------------------------------------ refreshing

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload when the store or the shared state changed; True when it reloaded."""
        version = await asyncio.to_thread(self._store.version)
        if self._shared is None:
            if not force and version == self._store_version:
                return False
            stored = await asyncio.to_thread(self._store.load_all)
            self._install(self._merge(stored, {}), None, version)
            return True
        generation = await self._shared.generation()
        if not force and generation == self._generation and version == self._store_version:
            return False
        stored = await asyncio.to_thread(self._store.load_all)
        generation, states = await self._shared.read()
        unknown = [k for k in stored if k.name not in states]
        if unknown:
            # First start with Redis (or Redis lost its data): the store's metadata seeds it,
            # but never a second active key (see `_seedable`).
            await self._shared.seed(_seedable(unknown, states, self._clock()))
            generation, states = await self._shared.read()
        self._install(self._merge(stored, states), generation, version)
        return True

    async def refresh_if_store_changed(self) -> bool:
        """Reload when the store changed; touches Redis only then (a cheap poll)."""
        version = await asyncio.to_thread(self._store.version)
        if version == self._store_version:
            return False
        return await self.refresh(force=True)

    def _merge(
        self, stored: list[SigningKey], states: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, SigningKey]:
        keys: dict[str, SigningKey] = {}
        for key in stored:
            state = states.get(key.name)
            if state is None:
                keys[key.name] = key
                continue
            if state.get("status") == DELETED:
                continue  # deleted from IVS; a read-only store may still hold its files
            problems: list[str] = []
            shared = key_from_metadata(dict(state), f"shared state of {key.name}", problems)
            if shared is None or shared.arn != key.arn:
                log.error(
                    "shared key state for %s disagrees with %s; using the stored metadata",
                    key.name,
                    self._store.where(key.name),
                )
                keys[key.name] = key
                continue
            keys[key.name] = replace(shared, private_key=key.private_key)
        for name, state in states.items():
            if name in keys or state.get("status") == DELETED:
                continue
            problems = []
            known = key_from_metadata(dict(state), f"shared state of {name}", problems)
            if known is not None and not any(k.name == name for k in stored):
                if name not in self._warned:
                    self._warned.add(name)
                    log.warning(
                        "key %s (%s) is in the shared state but not in %s yet",
                        name,
                        known.status.value,
                        self._store.description,
                    )
                keys[name] = known
        return keys

    def _install(
        self, keys: dict[str, SigningKey], generation: int | None, version: str | None
    ) -> None:
        active = sorted(k.name for k in keys.values() if k.status is KeyStatus.ACTIVE)
        if len(active) > 1 and self._shared is None:
            raise ConfigurationError(
                [f"{self._store.description}: more than one active key: {', '.join(active)}"]
            )
        if len(active) > 1:
            # Shared state after a fault: the latest activated key signs; the others are
            # retired in the shared state by the next holder of the key lock (`_repair`).
            keys = _one_active(keys, self._clock())
            if tuple(active) not in self._warned_actives:
                self._warned_actives.add(tuple(active))
                log.error(
                    "the shared key state names more than one active key (%s); signing with "
                    "%s, the latest activated, and retiring the others",
                    ", ".join(active),
                    next(k.name for k in keys.values() if k.status is KeyStatus.ACTIVE),
                    extra={"event": "keys_repaired", "keys": active},
                )
            self._repairs = {
                name: keys[name] for name in active if keys[name].status is KeyStatus.RETIRING
            }
        else:
            self._repairs = {}
        self._keys = keys
        self._generation = generation
        self._store_version = version

    async def check_registered(self) -> None:
        """Every key held here must be known to IVS; otherwise name its file (start-up)."""
        registered = {k.arn for k in await self._registry.list_public_keys()}
        problems = [
            f"{self._store.where(k.name)}: IVS does not know the public key {k.arn} "
            "(deleted, or imported in another region or account); remove the key's files"
            for k in sorted(self._keys.values(), key=lambda k: k.name)
            if k.loaded and k.arn not in registered
        ]
        if problems:
            raise ConfigurationError(problems)

    # ------------------------------------------------------------------ changing

    @asynccontextmanager
    async def _mutating(self) -> AsyncIterator[Lease]:
        lease = await self._lock.acquire(
            LOCK_KEY, ttl_seconds=LEASE_SECONDS, wait_seconds=self._lock_wait
        )
        if lease is None:
            raise Conflict(
                "another key operation is in progress (on this or another replica); "
                "retry in a few seconds"
            )
        try:
            await self.refresh(force=True)
            self._require_mutable()
            await self._repair(lease)
            yield lease
        finally:
            await self._release(lease)

    async def _release(self, lease: Lease) -> None:
        try:
            await lease.release()
        except (redis.RedisError, OSError) as exc:
            # The lease runs out on its own.
            log.warning("could not release the key lock (%s)", type(exc).__name__)

    def _require_mutable(self) -> None:
        if self._shared is None and not self._store.writable():
            raise Conflict(
                f"{self._store.description} is read-only and no Redis holds the shared key "
                "state: change the keys where they are written (token-service keys ... "
                "with a writable TOKEN_SERVICE_KEYS_DIR), or configure TOKEN_SERVICE_REDIS_URL"
            )

    def _require_writable(self, action: str) -> None:
        if not self._store.writable():
            raise Conflict(
                f"cannot {action}: a new private key is needed and {self._store.description} "
                "is read-only (a mounted Secret?). Create it where the store is writable with "
                "`token-service keys prepare`, publish it to every replica, then rotate: the "
                "prepared `next` key is promoted without a new import"
            )

    def _state_active(self) -> SigningKey | None:
        return next((k for k in self._keys.values() if k.status is KeyStatus.ACTIVE), None)

    def _next_key(self) -> SigningKey | None:
        candidates = [k for k in self._keys.values() if k.status is KeyStatus.NEXT]
        return min(candidates, key=lambda k: k.created_at) if candidates else None

    def _retiring(self) -> list[SigningKey]:
        return sorted(
            (k for k in self._keys.values() if k.status is KeyStatus.RETIRING),
            key=lambda k: k.retired_at or k.created_at,
        )

    def _activate(self, key: SigningKey, now: datetime) -> SigningKey:
        return replace(
            key,
            status=KeyStatus.ACTIVE,
            activated_at=now,
            max_token_lifetime=self._max_token_lifetime,
        )

    def _retire(self, key: SigningKey, now: datetime) -> SigningKey:
        retired = replace(key, status=KeyStatus.RETIRING, retired_at=now, safe_to_delete_at=None)
        return replace(retired, safe_to_delete_at=self.safe_to_delete_at(retired))

    async def _commit(
        self,
        lease: Lease,
        *,
        save: tuple[SigningKey, ...] = (),
        remove: tuple[SigningKey, ...] = (),
    ) -> None:
        writable = self._store.writable()
        if self._shared is None:
            if writable:
                # The store is the truth. In order: a new active key is saved before the
                # old one is demoted, so a crash in between leaves two active keys
                # (reported at start) rather than none.
                await self._save(save)
        else:
            if writable:
                # Redis is the truth, and its commit is fenced: it may be refused (the
                # lease ran out). Before it, only what it cannot hold: a new key's private
                # half, saved as `next`, which nothing signs with; the statuses follow
                # once the commit succeeded. A refused commit then leaves files that agree
                # with Redis, plus at most a `next` key that the ring adopts as such.
                await self._save(
                    _as_next(k)
                    for k in save
                    if k.name not in self._keys or not self._keys[k.name].loaded
                )
            deleted_at = iso(self._clock())
            changes: dict[str, Mapping[str, Any]] = {k.name: k.metadata() for k in save}
            changes.update({k.name: tombstone(k.metadata(), deleted_at) for k in remove})
            self._generation = await self._shared.commit(lease, changes)
            if writable:
                await self._save(save)
        if writable:
            for key in remove:
                await asyncio.to_thread(self._store.remove, key.name)
            self._store_version = await asyncio.to_thread(self._store.version)
        keys = dict(self._keys)
        for key in save:
            held = keys.get(key.name)
            private_key = key.private_key or (held.private_key if held else None)
            keys[key.name] = replace(key, private_key=private_key)
        for key in remove:
            keys.pop(key.name, None)
        self._keys = keys

    async def _import_key(self, now: datetime, status: KeyStatus) -> SigningKey:
        private_key = generate_private_key()
        name = f"ts-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        pem = public_pem(private_key)
        # Noted first: if IVS creates the key but we never learn its ARN (the answer came
        # after our deadline), reconciliation still finds it by name and deletes it.
        await self._imports.note(name)
        info = await self._registry.import_public_key(pem, name)
        try:
            await self._verify_registered(info, pem)
        except Exception:
            # Imported but not verified (GetPublicKey throttled, a 5xx): never used, so
            # delete it now rather than leave it holding one of the three slots.
            await self._delete_quietly(info)
            raise
        return SigningKey(
            name=name,
            arn=info.arn,
            fingerprint=info.fingerprint,
            status=status,
            created_at=now,
            private_key=private_key,
        )

    async def _delete_quietly(self, info: PublicKeyInfo) -> None:
        try:
            await self._registry.delete_public_key(info.arn)
        except NotFound:
            return
        except Exception as exc:  # noqa: BLE001 - reconciliation retries; the first error stands
            log.warning(
                "could not delete the unverified public key %s at IVS (%s); reconciliation will",
                info.name,
                type(exc).__name__,
            )

    async def reconcile(self) -> Reconciliation | None:
        """Delete keys at IVS that this service set out to import but never recorded.

        Under the key lock (None when another replica holds it: it is doing key work,
        and a later pass will look again), so no import of a live lease is in flight.
        A key at IVS that no replica knows and no note names was imported elsewhere (an
        operator's CLI whose files have not arrived, another deployment): reported,
        never deleted.
        """
        lease = await self._lock.acquire(LOCK_KEY, ttl_seconds=LEASE_SECONDS, wait_seconds=0)
        if lease is None:
            return None
        try:
            await self.refresh(force=True)
            await self._repair(lease)
            known = {k.arn for k in self._keys.values()}
            noted = await self._imports.noted()
            deleted: list[PublicKeyInfo] = []
            unknown: list[PublicKeyInfo] = []
            for info in await self._registry.list_public_keys():
                if info.arn in known:
                    continue
                if info.name not in noted:
                    unknown.append(info)
                    continue
                with contextlib.suppress(NotFound):
                    await self._registry.delete_public_key(info.arn)
                deleted.append(info)
                log.warning(
                    "deleted public key %s at IVS: this service imported it, but the import "
                    "never completed (no replica holds it)",
                    info.name,
                    extra={"event": "key_orphan_deleted", "key": info.name, "keyArn": info.arn},
                )
            await self._imports.forget(noted & set(self._keys))
        finally:
            await self._release(lease)
        for info in unknown:
            if info.arn not in self._warned:
                self._warned.add(info.arn)
                log.warning(
                    "IVS holds public key %s (%s), which this service did not import or does "
                    "not hold yet: it counts against IVS's %d keys per region. Delete it at "
                    "IVS if nothing uses it",
                    info.name,
                    info.arn,
                    IVS_KEY_LIMIT,
                    extra={"event": "key_unknown_at_ivs", "key": info.name, "keyArn": info.arn},
                )
        self.reconciled = ReconcileTally(
            orphans_deleted=self.reconciled.orphans_deleted + len(deleted),
            unknown_at_ivs=len(unknown),
        )
        return Reconciliation(tuple(deleted), tuple(unknown))

    async def _save(self, keys: Iterable[SigningKey]) -> None:
        for key in keys:
            if key.loaded:
                await asyncio.to_thread(self._store.save, key)

    async def _repair(self, lease: Lease) -> None:
        """Commit what `_install` decided about extra active keys (under the lock)."""
        if self._repairs and self._shared is not None:
            repairs, self._repairs = tuple(self._repairs.values()), {}
            await self._commit(lease, save=repairs)

    async def _verify_registered(self, info: PublicKeyInfo, pem: str) -> None:
        registered = await self._registry.get_public_key(info.arn)
        if registered.material is None or not same_public_key(registered.material, pem):
            await self._registry.delete_public_key(info.arn)
            raise UpstreamFailed(
                f"IVS holds different key material for {info.arn} than was imported; "
                "the key was deleted again"
            )

    async def _collect_usage(self) -> None:
        """Ask every replica to write its token counts, and give them a moment to."""
        if self._shared is not None:
            try:
                await self._shared.announce("flush")
            except (redis.RedisError, OSError) as exc:
                log.warning("could not ask replicas to flush usage (%s)", type(exc).__name__)
            else:
                await asyncio.sleep(self._flush_wait)
        await self.usage.flush()

    async def _safe_bound(self, key: SigningKey) -> datetime:
        bound = self.safe_to_delete_at(key) or _EPOCH
        latest = await self.usage.max_expiry(key.arn)
        if latest is not None:
            bound = max(bound, latest + self._margin)
        return bound

    async def _remove(self, lease: Lease, key: SigningKey) -> None:
        # Already gone from IVS: forgetting the private key finishes the job.
        with contextlib.suppress(NotFound):
            await self._registry.delete_public_key(key.arn)
        await self._commit(lease, remove=(key,))

    async def _free_slot(self, lease: Lease, now: datetime) -> tuple[SigningKey, ...]:
        if len(self._keys) < IVS_KEY_LIMIT:
            return ()
        retiring = self._retiring()
        if retiring:
            await self._collect_usage()
        waits: list[str] = []
        for key in retiring:
            bound = await self._safe_bound(key)
            if bound <= now:
                await self._remove(lease, key)
                return (key,)
            waits.append(f"{key.name} (safe to delete at {iso(bound)})")
        in_use = ", ".join(f"{k.name} ({k.status.value})" for k in self.list_keys())
        if not waits:
            raise Conflict(
                f"IVS allows {IVS_KEY_LIMIT} public keys per region and all are in use "
                f"({in_use}) with none retiring: delete the `next` key, or rotate to promote it"
            )
        raise Conflict(
            f"IVS allows {IVS_KEY_LIMIT} public keys per region and all are in use ({in_use}); "
            f"the retiring keys may still have unexpired tokens: {'; '.join(waits)}. Wait "
            "until then, or delete one now with force (DELETE /admin/keys/NAME?force=true, "
            "token-service keys delete NAME --force), which invalidates its unexpired tokens"
        )

    async def _rotate_locked(self, lease: Lease, now: datetime) -> Rotation:
        deleted: tuple[SigningKey, ...] = ()
        candidate = self._next_key()
        promoted = candidate is not None
        if candidate is None:
            self._require_writable("rotate")
            deleted = await self._free_slot(lease, now)
            candidate = await self._import_key(now, KeyStatus.NEXT)
        new_active = self._activate(candidate, now)
        previous = self._state_active()
        retired = self._retire(previous, now) if previous is not None else None
        await self._commit(lease, save=(new_active,) + ((retired,) if retired else ()))
        return Rotation(active=new_active, retired=retired, promoted=promoted, deleted=deleted)

    async def rotate(self) -> SigningKey:
        """`rotate_keys`, returning the new active key."""
        return (await self.rotate_keys()).active

    async def rotate_keys(self) -> Rotation:
        """Make a new key active; the previous active key retires.

        A prepared `next` key is promoted (no import). Otherwise a key is generated and
        imported; with three keys in IVS, the oldest retiring key is deleted first if it
        is safe, else this is a Conflict naming the ways out.
        """
        async with self._mutating() as lease:
            return await self._rotate_locked(lease, self._clock())

    async def prepare(self) -> SigningKey:
        """Import the next key ahead of time (idempotent: an existing `next` key is returned)."""
        async with self._mutating() as lease:
            existing = self._next_key()
            if existing is not None:
                return existing
            self._require_writable("prepare a key")
            now = self._clock()
            await self._free_slot(lease, now)
            key = await self._import_key(now, KeyStatus.NEXT)
            await self._commit(lease, save=(key,))
            return key

    async def delete(self, name: str, *, force: bool = False) -> DeleteResult:
        async with self._mutating() as lease:
            key = self.get(name)
            now = self._clock()
            if key.status is KeyStatus.ACTIVE:
                # Even forced: deleting the active key would leave no key to sign with, and
                # every request 503 until someone rotates. Revoke does the same deletion
                # and puts a successor in its place.
                raise Conflict(
                    f"key {name} is the active signing key; rotate first, or revoke it if it "
                    "is compromised (revoke deletes it at once and activates a successor)"
                )
            unsafe = False
            if key.status is KeyStatus.RETIRING:
                await self._collect_usage()
                bound = await self._safe_bound(key)
                unsafe = bound > now
                if unsafe and not force:
                    raise Conflict(
                        f"tokens signed with {name} may be unexpired until {iso(bound)}; "
                        "deleting now invalidates them (use force=true for a compromised key)"
                    )
            await self._remove(lease, key)
            return DeleteResult(key=key, forced=force and unsafe)

    async def revoke(self, name: str) -> Revocation:
        """A compromised key: DeletePublicKey at once; a successor signs if it was active.

        For the active key, the successor is made ready first (a prepared `next` key, or
        one imported while an IVS slot is free), then the compromised key is deleted at
        IVS and one commit removes it and activates the successor: other replicas go from
        the old key to the new with no moment without an active key. Only with all three
        IVS slots taken and no `next` key must the deletion come first, and that moment
        (one ImportPublicKey long) exists.
        """
        async with self._mutating() as lease:
            key = self.get(name)
            now = self._clock()
            await self._collect_usage()
            invalidated = await self.usage.unexpired(key.arn, now)
            if key.status is not KeyStatus.ACTIVE:
                await self._remove(lease, key)
                return Revocation(key, invalidated, self.usage.meaning, self._state_active())
            candidate: SigningKey | None = None
            problem: str | None = None
            try:
                candidate = self._next_key()
                if candidate is None and len(self._keys) < IVS_KEY_LIMIT:
                    self._require_writable("replace the revoked key")
                    candidate = await self._import_key(now, KeyStatus.NEXT)
            except DomainError as exc:
                problem = exc.detail
            # The compromised key goes now: while it is registered, its tokens still join.
            with contextlib.suppress(NotFound):
                await self._registry.delete_public_key(key.arn)
            if candidate is None and problem is None:
                try:
                    # All three slots were taken: the deletion just freed one.
                    self._require_writable("replace the revoked key")
                    await self._commit(lease, remove=(key,))
                    candidate = await self._import_key(now, KeyStatus.NEXT)
                except DomainError as exc:
                    problem = exc.detail
            if candidate is None:
                if key.name in self._keys:
                    await self._commit(lease, remove=(key,))
                log.error("no key replaced the revoked key %s: %s", name, problem)
                return Revocation(key, invalidated, self.usage.meaning, None, problem)
            successor = self._activate(candidate, now)
            removed = (key,) if key.name in self._keys else ()
            await self._commit(lease, save=(successor,), remove=removed)
            return Revocation(key, invalidated, self.usage.meaning, successor)

    async def scheduled_step(
        self, interval: timedelta, lead: timedelta
    ) -> list[tuple[str, SigningKey]]:
        """One pass of scheduled rotation, by whichever replica gets the lock first.

        Deletes retiring keys once safe, imports the next key `lead` before the active
        key is `interval` old, and promotes it when due. Every decision is made from the
        state read under the lock, so another replica's pass right after finds nothing due.
        """
        lease = await self._lock.acquire(LOCK_KEY, ttl_seconds=LEASE_SECONDS, wait_seconds=0)
        if lease is None:
            return []
        try:
            await self.refresh(force=True)
            if self._shared is None and not self._store.writable():
                return []
            return await self._scheduled_locked(lease, interval, lead)
        finally:
            await self._release(lease)

    async def _scheduled_locked(
        self, lease: Lease, interval: timedelta, lead: timedelta
    ) -> list[tuple[str, SigningKey]]:
        actions: list[tuple[str, SigningKey]] = []
        now = self._clock()
        retiring = self._retiring()
        if retiring:
            await self._collect_usage()
        for key in retiring:
            if await self._safe_bound(key) <= now:
                await self._remove(lease, key)
                actions.append(("deleted", key))
        active = self._state_active()
        if active is None:
            return actions
        due = (active.activated_at or active.created_at) + interval
        writable = self._store.writable()
        if (
            now >= due - lead
            and self._next_key() is None
            and writable
            and len(self._keys) < IVS_KEY_LIMIT
        ):
            prepared = await self._import_key(now, KeyStatus.NEXT)
            await self._commit(lease, save=(prepared,))
            actions.append(("prepared", prepared))
        if now >= due:
            if self._next_key() is None and (not writable or len(self._keys) >= IVS_KEY_LIMIT):
                log.warning(
                    "scheduled key rotation is due but %s",
                    "the store is read-only and no `next` key was prepared"
                    if not writable
                    else "all three IVS keys are in use until a retiring key is safe to delete",
                )
                return actions
            rotation = await self._rotate_locked(lease, now)
            actions.append(("rotated", rotation.active))
        return actions


def _as_next(key: SigningKey) -> SigningKey:
    """A new key as saved before its status is committed: never signed with."""
    return replace(
        key, status=KeyStatus.NEXT, activated_at=None, retired_at=None, safe_to_delete_at=None
    )


def _retired_now(key: SigningKey, now: datetime) -> SigningKey:
    return replace(key, status=KeyStatus.RETIRING, retired_at=key.retired_at or now)


def _seedable(
    unknown: list[SigningKey], states: Mapping[str, Mapping[str, Any]], now: datetime
) -> dict[str, Mapping[str, Any]]:
    """The store's keys the shared state lacks, as they may be added to it.

    An `active` file key is seeded as retiring when the shared state already has an active
    key (the file is older news, or the leftover of a refused commit) or when another
    unknown file key, activated later, claims it too: the shared state never gets a second
    active key from a seed. Retiring, not deleted: it may have signed tokens, and it goes
    by the usual safe-delete rules.
    """
    shared_active = any(state.get("status") == KeyStatus.ACTIVE.value for state in states.values())
    claims = [k for k in unknown if k.status is KeyStatus.ACTIVE]
    keep = None if shared_active or not claims else max(claims, key=_activated)
    seeded: dict[str, Mapping[str, Any]] = {}
    for key in unknown:
        seed = _retired_now(key, now) if key.status is KeyStatus.ACTIVE and key is not keep else key
        seeded[key.name] = seed.metadata()
    return seeded


def _activated(key: SigningKey) -> datetime:
    return key.activated_at or key.created_at


def _one_active(keys: dict[str, SigningKey], now: datetime) -> dict[str, SigningKey]:
    """`keys` with only the latest activated of its active keys left active."""
    actives = [k for k in keys.values() if k.status is KeyStatus.ACTIVE]
    keep = max(actives, key=_activated)
    return {
        name: _retired_now(k, now) if k.status is KeyStatus.ACTIVE and k is not keep else k
        for name, k in keys.items()
    }
