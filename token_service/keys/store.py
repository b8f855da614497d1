"""Where private keys live: the `KeyStore` interface every store implements.

A store holds each key's private half and its metadata. It may be read-only (a
Kubernetes Secret mounted as files): then only an operator writes it, and the
lifecycle (which key is active) lives in the shared state in Redis.
"""

from __future__ import annotations

import enum
from typing import Protocol

from token_service.keys.model import SigningKey


class KeyStoreKind(enum.StrEnum):
    """Where private signing keys live."""

    FILES = "files"
    SECRETSMANAGER = "secretsmanager"


class KeyStore(Protocol):
    #: Human description for messages, e.g. "directory keys" (never a secret).
    description: str

    def writable(self) -> bool:
        """Whether this process may add, change and remove keys here."""
        ...

    def load_all(self) -> list[SigningKey]:
        """Every key; an unreadable or wrong entry is a `ConfigurationError` naming it."""
        ...

    def save(self, key: SigningKey) -> None:
        """Write the key's metadata, and its private half if not stored yet."""
        ...

    def remove(self, name: str) -> None: ...

    def version(self) -> str:
        """A value that changes whenever the stored keys change (cheap to compute)."""
        ...

    def where(self, name: str) -> str:
        """Where key `name` lives, for messages (a path or a secret name)."""
        ...
