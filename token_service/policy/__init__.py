"""What an authenticated app user may get: stages, capabilities, duration, attributes.

The server-side policy of the token service. `load_policy` reads an optional policy
file (TOML or YAML) once at start-up; `Policy.decide` then turns an `AppUser` and
their `TokenRequest` into a `Grant`, or refuses with `PermissionDenied` (403, naming
the rule) or `InvalidRequest` (400). It does no I/O and imports nothing of HTTP.
The file format and its semantics are described in docs/policy.md.
"""

from token_service.domain import is_stage_arn
from token_service.policy.identity import (
    PSEUDONYM_SECRET_MIN_BYTES,
    USER_ID_MAX_CHARS,
    UserIdMode,
    pseudonymize,
)
from token_service.policy.loader import (
    BUILTIN_DURATION,
    PUBLISHER_ROLE,
    PolicyError,
    PolicyIssue,
    default_policy,
    load_policy,
    policy_from_mapping,
)
from token_service.policy.model import (
    ATTRIBUTES_MAX_BYTES,
    DURATION_MAX_MINUTES,
    DURATION_MIN_MINUTES,
    IVS_USER_ID_LIMIT,
    NO_MATCHING_RULE,
    AttributeRules,
    AttributeSource,
    Constant,
    DurationBounds,
    FromClaim,
    Policy,
    RateLimitOverrides,
    Rule,
    ServerAttribute,
    attributes_size,
)
from token_service.policy.stages import StagePattern

__all__ = [
    "ATTRIBUTES_MAX_BYTES",
    "BUILTIN_DURATION",
    "DURATION_MAX_MINUTES",
    "DURATION_MIN_MINUTES",
    "IVS_USER_ID_LIMIT",
    "NO_MATCHING_RULE",
    "PSEUDONYM_SECRET_MIN_BYTES",
    "PUBLISHER_ROLE",
    "USER_ID_MAX_CHARS",
    "AttributeRules",
    "AttributeSource",
    "Constant",
    "DurationBounds",
    "FromClaim",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "RateLimitOverrides",
    "Rule",
    "ServerAttribute",
    "StagePattern",
    "UserIdMode",
    "attributes_size",
    "default_policy",
    "is_stage_arn",
    "load_policy",
    "policy_from_mapping",
    "pseudonymize",
]
