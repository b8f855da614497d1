"""The signing key ring and its lifecycle within IVS's three public keys per region.

`model` (what a key is), `store`/`files`/`secretsmanager` (where private keys live),
`state` (the lifecycle shared in Redis), `usage` (tokens counted per key), `ring`
(the lifecycle operations), `admin` (audited operations for the API and the CLI),
`runtime` (background refresh in a serving process), `scheduler` (scheduled rotation),
`locks` (mutual exclusion across replicas), `metrics` (gauges read at scrape time).
"""

from token_service.keys.files import KeyFiles
from token_service.keys.model import (
    IVS_KEY_LIMIT,
    SAFETY_MARGIN,
    KeyStatus,
    SigningKey,
    generate_private_key,
    public_pem,
)
from token_service.keys.ring import DeleteResult, KeyRing, PublicKeyRegistry, Revocation, Rotation
from token_service.keys.store import KeyStore

__all__ = [
    "IVS_KEY_LIMIT",
    "SAFETY_MARGIN",
    "DeleteResult",
    "KeyFiles",
    "KeyRing",
    "KeyStatus",
    "KeyStore",
    "PublicKeyRegistry",
    "Revocation",
    "Rotation",
    "SigningKey",
    "generate_private_key",
    "public_pem",
]
