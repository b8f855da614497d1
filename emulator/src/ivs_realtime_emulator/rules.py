"""The IVS participant-token limits that both CreateParticipantToken and join enforce."""

from __future__ import annotations

import re
from collections.abc import Mapping

#: Total UTF-8 bytes of attribute keys plus values ("at most 1 KB").
MAX_ATTRIBUTES_BYTES = 1024
MAX_USER_ID_CHARS = 128
#: A token may live at most 14 days from `iat` to `exp`.
MAX_TOKEN_LIFETIME_SECONDS = 14 * 24 * 3600
#: The participant ID (`jti`): the current model's alphabet, 1-64 characters.
JTI_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: The only token format version IVS accepts, as a string.
CLAIMS_VERSION = "1.0"
DEFAULT_DURATION_MINUTES = 720
CAPABILITIES = ("PUBLISH", "SUBSCRIBE")


def attributes_size(attributes: Mapping[str, str]) -> int:
    return sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in attributes.items())


def capability_claims(capabilities: list[str]) -> dict[str, bool]:
    """API capabilities (`["PUBLISH"]`) as the token carries them."""
    return {
        "allow_publish": "PUBLISH" in capabilities,
        "allow_subscribe": "SUBSCRIBE" in capabilities,
    }


def capability_list(claims: Mapping[str, bool]) -> list[str]:
    """Token capabilities as the API spells them."""
    names = []
    if claims.get("allow_publish"):
        names.append("PUBLISH")
    if claims.get("allow_subscribe"):
        names.append("SUBSCRIBE")
    return names
