"""Key pairs in AWS Secrets Manager: one secret per key, `<prefix><name>`.

The secret's string is JSON: `{"privateKey": "<PKCS#8 PEM>", "metadata": {...}}`.
Every replica reads the same secrets (IAM `secretsmanager:ListSecrets`,
`GetSecretValue`; writers also `CreateSecret`, `PutSecretValue`, `DeleteSecret`),
encrypted at rest with KMS (the account's `aws/secretsmanager` key or the one
configured). Calls are synchronous boto3; the ring runs them in a worker thread.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from token_service.errors import ConfigurationError, ServiceUnavailable
from token_service.keys.model import SigningKey, key_from_metadata, load_private_key, private_pem

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

DEFAULT_PREFIX = "token-service/signing-keys/"
#: Tag that marks a secret as one of this service's signing keys.
KEY_NAME_TAG = "token-service:key-name"


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return exc.__class__.__name__


class SecretsManagerKeyStore:
    """Reads and writes key pairs as Secrets Manager secrets under one name prefix."""

    def __init__(
        self,
        client: SecretsManagerClient,
        *,
        prefix: str = DEFAULT_PREFIX,
        kms_key_id: str | None = None,
        read_only: bool = False,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._kms_key_id = kms_key_id
        self._read_only = read_only
        self.description = f"Secrets Manager secrets {prefix}*"

    def writable(self) -> bool:
        return not self._read_only

    def where(self, name: str) -> str:
        return f"secretsmanager:{self._prefix}{name}"

    def _list(self) -> list[dict[str, Any]]:
        secrets: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "Filters": [{"Key": "name", "Values": [self._prefix]}],
            "MaxResults": 100,
        }
        while True:
            response = self._client.list_secrets(**kwargs)
            # The name filter matches prefixes of words too: keep exact prefix matches only.
            secrets.extend(
                dict(s)
                for s in response.get("SecretList", [])
                if str(s.get("Name", "")).startswith(self._prefix)
            )
            token = response.get("NextToken")
            if not token:
                return secrets
            kwargs["NextToken"] = token

    def version(self) -> str:
        try:
            listed = self._list()
        except (ClientError, BotoCoreError) as exc:
            raise ServiceUnavailable(f"Secrets Manager ListSecrets failed ({_code(exc)})") from None
        digest = hashlib.sha256()
        for secret in sorted(listed, key=lambda s: str(s["Name"])):
            digest.update(f"{secret['Name']}:{secret.get('LastChangedDate')};".encode())
        return digest.hexdigest()

    def load_all(self) -> list[SigningKey]:
        try:
            listed = self._list()
        except (ClientError, BotoCoreError) as exc:
            raise ConfigurationError(
                [f"secretsmanager:{self._prefix}*: cannot list the key secrets ({_code(exc)})"]
            ) from None
        problems: list[str] = []
        keys: list[SigningKey] = []
        for secret in sorted(listed, key=lambda s: str(s["Name"])):
            key = self._load_one(str(secret["Name"]), problems)
            if key is not None:
                keys.append(key)
        if problems:
            raise ConfigurationError(problems)
        return keys

    def _load_one(self, secret_name: str, problems: list[str]) -> SigningKey | None:
        where = f"secretsmanager:{secret_name}"
        name = secret_name.removeprefix(self._prefix)
        try:
            value = self._client.get_secret_value(SecretId=secret_name)
            document = json.loads(value["SecretString"])
        except (ClientError, BotoCoreError) as exc:
            problems.append(f"{where}: cannot read the key secret ({_code(exc)})")
            return None
        except (KeyError, ValueError):
            problems.append(f"{where}: expected a JSON SecretString")
            return None
        if not isinstance(document, dict) or not isinstance(document.get("privateKey"), str):
            problems.append(f"{where}: expected {{'privateKey': PEM, 'metadata': {{...}}}}")
            return None
        private_key = load_private_key(document["privateKey"].encode(), where, problems)
        if private_key is None:
            return None
        return key_from_metadata(
            document.get("metadata"), where, problems, expected_name=name, private_key=private_key
        )

    def save(self, key: SigningKey) -> None:
        secret_name = self._prefix + key.name
        try:
            existing = json.loads(
                self._client.get_secret_value(SecretId=secret_name)["SecretString"]
            )
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            existing = None
        if existing is None:
            if key.private_key is None:
                raise ValueError(f"no private key to save for {key.name}")
            document = {
                "privateKey": private_pem(key.private_key).decode("ascii"),
                "metadata": key.metadata(),
            }
            kwargs: dict[str, Any] = {
                "Name": secret_name,
                "SecretString": json.dumps(document),
                "Description": "IVS participant-token signing key (P-384)",
                "Tags": [{"Key": KEY_NAME_TAG, "Value": key.name}],
            }
            if self._kms_key_id:
                kwargs["KmsKeyId"] = self._kms_key_id
            self._client.create_secret(**kwargs)
            return
        # The stored private half never changes; only the metadata does.
        existing["metadata"] = key.metadata()
        self._client.put_secret_value(SecretId=secret_name, SecretString=json.dumps(existing))

    def remove(self, name: str) -> None:
        try:
            # No recovery window: the public key is gone from IVS, so nothing could use it.
            self._client.delete_secret(
                SecretId=self._prefix + name, ForceDeleteWithoutRecovery=True
            )
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
