"""Key pairs as files in one directory: `<name>.pem` (PKCS#8) and `<name>.json`.

Every file is created mode 0600 and replaced atomically, so a replica reading a
shared volume sees the old file or the new one, never half. The directory may be
read-only (a Kubernetes Secret mounted without `subPath`, whose files are symlinks
that the kubelet swaps atomically): the store then only reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

from token_service.errors import ConfigurationError
from token_service.keys.model import SigningKey, key_from_metadata, load_private_key, private_pem


class KeyFiles:
    """Reads and writes key pairs in one directory; every file is created mode 0600."""

    def __init__(self, directory: Path, *, read_only: bool = False) -> None:
        self.directory = directory
        self._read_only = read_only
        self.description = f"directory {directory}"

    def writable(self) -> bool:
        if self._read_only:
            return False
        existing = self.directory
        while not existing.exists():
            if existing.parent == existing:
                return False
            existing = existing.parent
        # access() also reports a read-only file system (EROFS), as a Secret mount is.
        return os.access(existing, os.W_OK | os.X_OK)

    def where(self, name: str) -> str:
        return str(self.directory / f"{name}.json")

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
            if key.private_key is None:
                raise ValueError(f"no private key to save for {key.name}")
            self._write(pem_path, private_pem(key.private_key))
        self._write(
            self.directory / f"{key.name}.json",
            (json.dumps(key.metadata(), indent=2) + "\n").encode(),
        )

    def remove(self, name: str) -> None:
        (self.directory / f"{name}.json").unlink(missing_ok=True)
        (self.directory / f"{name}.pem").unlink(missing_ok=True)

    def version(self) -> str:
        digest = hashlib.sha256()
        if not self.directory.exists():
            return "absent"
        for path in sorted(self.directory.glob("*.json")) + sorted(self.directory.glob("*.pem")):
            try:
                # stat() follows the Secret mount's symlinks to the files they point at now.
                info = path.stat()
            except OSError:
                continue
            digest.update(f"{path.name}:{info.st_ino}:{info.st_mtime_ns}:{info.st_size};".encode())
        return digest.hexdigest()

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
        except (OSError, ValueError) as exc:
            problems.append(f"{meta_path}: cannot read the key metadata ({exc.__class__.__name__})")
            return None
        try:
            pem = pem_path.read_bytes()
        except OSError as exc:
            problems.append(f"{pem_path}: cannot read the private key ({exc.__class__.__name__})")
            return None
        private_key = load_private_key(pem, str(pem_path), problems)
        if private_key is None:
            return None
        return key_from_metadata(
            meta, str(meta_path), problems, expected_name=meta_path.stem, private_key=private_key
        )
