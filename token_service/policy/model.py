"""The parsed policy and its one decision: what an authenticated user may get.

Everything here is immutable and resolved at load time (inheritance from `defaults`,
clamped default durations, compiled stage patterns), so `Policy.decide` is a pure
function of the user and the request: no I/O, no clock, no randomness.

Combination semantics: rules are ordered and the first rule whose conditions match
the user and the stage decides everything (capabilities, duration, attributes, rate
limits). See docs/policy.md for why.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from token_service.domain import (
    AppUser,
    Capability,
    Grant,
    Rate,
    TokenRequest,
    claim_at,
    is_stage_arn,
)
from token_service.errors import ConfigurationError, FieldError, InvalidRequest, PermissionDenied
from token_service.policy.identity import (
    USER_ID_MAX_CHARS,
    UserIdMode,
    pseudonymize,
    user_id_mode_problems,
)
from token_service.policy.stages import StagePattern

#: IVS bounds on a token's lifetime, in minutes (CreateParticipantToken's `duration`).
DURATION_MIN_MINUTES: Final = 1
DURATION_MAX_MINUTES: Final = 20160
#: IVS allows "1 KB" of attributes, counted as UTF-8 bytes of keys plus values; its own
#: guide says to stay under 1024, so 1023 is the most this service puts in a token.
ATTRIBUTES_MAX_BYTES: Final = 1023

#: The `rule` of a refusal when no rule matched at all.
NO_MATCHING_RULE: Final = "no matching rule"
#: The `rule` of a refusal that comes from an IVS limit rather than the policy file.
IVS_USER_ID_LIMIT: Final = "IVS: user_id is at most 128 characters"
#: The `rule` of a refusal of an operator's token (`Policy.operator_grant`).
OPERATOR_RULE: Final = "operator token"
#: An operator's token lives this long unless asked otherwise (or less, when no rule
#: grants that long): long enough for a test or an incident, short if it leaks.
OPERATOR_DEFAULT_DURATION_MINUTES: Final = 60


@dataclass(frozen=True)
class DurationBounds:
    """Token lifetime in minutes: what is given when none is asked, and the range."""

    default: int
    min: int
    max: int

    def grant(self, requested: int | None, rule: str) -> int:
        if requested is None:
            return self.default
        if requested > self.max:
            raise PermissionDenied(
                f"durationMinutes {requested} exceeds the maximum of {self.max} minutes "
                f"(rule {rule!r})",
                rule=rule,
            )
        if requested < self.min:
            raise PermissionDenied(
                f"durationMinutes {requested} is below the minimum of {self.min} minutes "
                f"(rule {rule!r})",
                rule=rule,
            )
        return requested


@dataclass(frozen=True)
class FromClaim:
    """A server-set attribute value copied from a verified claim of the app JWT."""

    claim: str

    def resolve(self, claims: Mapping[str, Any]) -> str | None:
        value = claim_at(claims, self.claim)
        if value is None:
            return None
        if isinstance(value, str):
            text = value
        else:
            # Numbers, booleans, lists and objects keep their JSON spelling, so `42`
            # becomes "42" and `true` becomes "true", as the app JWT wrote them.
            try:
                text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
            except ValueError:  # a circular structure: cannot come from a real JWT
                return None
        # A lone surrogate from JSON cannot go into a token; omit it rather than mangle it.
        return text if _is_utf8(text) else None


@dataclass(frozen=True)
class Constant:
    """A server-set attribute with a fixed value."""

    value: str

    def resolve(self, claims: Mapping[str, Any]) -> str | None:
        """The constant; `claims` is unused, taken to share `FromClaim`'s interface."""
        return self.value


AttributeSource = FromClaim | Constant


@dataclass(frozen=True)
class ServerAttribute:
    key: str
    source: AttributeSource


@dataclass(frozen=True)
class AttributeRules:
    """Which attributes a token gets: client-chosen ones within limits, plus server ones."""

    #: Keys the client may set; `None` means any key (except server-set ones).
    client_keys: frozenset[str] | None = None
    #: Longest client-set value, in characters; `None` means only the total limit applies.
    max_value_length: int | None = None
    #: Attributes the server sets; they replace any client value for the same key.
    server: tuple[ServerAttribute, ...] = ()

    @property
    def server_keys(self) -> frozenset[str]:
        return frozenset(a.key for a in self.server)

    def grant(
        self, requested: Mapping[str, str], claims: Mapping[str, Any], rule: str
    ) -> dict[str, str]:
        server_keys = self.server_keys
        # Server-set keys are never client-settable, even when the claim behind them is
        # missing, so nobody can fill in a name the IdP did not vouch for. Asking is
        # refused outright rather than silently dropped: the client learns why.
        owned = sorted(k for k in requested if k in server_keys)
        if owned:
            fields = ", ".join(f"attributes.{k}" for k in owned)
            raise PermissionDenied(
                f"attribute key(s) set by the server, not the client: {fields} (rule {rule!r})",
                rule=rule,
            )
        client = dict(requested)
        if self.client_keys is not None:
            refused = sorted(k for k in client if k not in self.client_keys)
            if refused:
                allowed = ", ".join(sorted(self.client_keys)) or "none"
                fields = ", ".join(f"attributes.{k}" for k in refused)
                raise PermissionDenied(
                    f"attribute key(s) not allowed: {fields} (rule {rule!r} lets clients "
                    f"set: {allowed})",
                    rule=rule,
                )
        if self.max_value_length is not None:
            limit = self.max_value_length
            too_long = sorted(k for k, v in client.items() if len(v) > limit)
            if too_long:
                fields = ", ".join(f"attributes.{k}" for k in too_long)
                raise PermissionDenied(
                    f"attribute value(s) longer than {limit} characters: {fields} (rule {rule!r})",
                    rule=rule,
                )
        server: dict[str, str] = {}
        for attribute in self.server:
            value = attribute.source.resolve(claims)
            if value is not None:
                server[attribute.key] = value
        merged = client | server
        size = attributes_size(merged)
        if size > ATTRIBUTES_MAX_BYTES:
            server_size = attributes_size(server)
            raise InvalidRequest(
                "attributes too large",
                errors=[
                    FieldError(
                        "attributes",
                        f"keys plus values take {size} bytes of UTF-8 ({server_size} of them "
                        f"set by the server); IVS allows at most {ATTRIBUTES_MAX_BYTES}",
                    )
                ],
            )
        return merged


@dataclass(frozen=True)
class RateLimitOverrides:
    """Limits a rule sets instead of the service-wide ones; `None` keeps the service's."""

    user: Rate | None = None
    ip: Rate | None = None
    stage: Rate | None = None


@dataclass(frozen=True)
class Rule:
    """One resolved rule: conditions, and everything it grants when it is the first match."""

    name: str
    #: Any of these roles matches; `None` matches every user.
    roles: frozenset[str] | None
    #: Any of these patterns matches; `None` matches every stage.
    stages: tuple[StagePattern, ...] | None
    #: Empty for a rule that denies everything to whom it matches.
    capabilities: frozenset[Capability]
    duration: DurationBounds
    attributes: AttributeRules = AttributeRules()
    rate_limits: RateLimitOverrides = RateLimitOverrides()
    #: Where the rule came from, for messages: `rules[2]`, or `built-in`.
    origin: str = field(default="built-in", compare=False)

    def matches(self, user: AppUser, stage_arn: str) -> bool:
        if self.roles is not None and self.roles.isdisjoint(user.roles):
            return False
        return self.stages is None or any(p.matches(stage_arn) for p in self.stages)


@dataclass(frozen=True)
class Policy:
    """The whole server-side policy: ordered rules, first match wins."""

    rules: tuple[Rule, ...]
    user_id_mode: UserIdMode = UserIdMode.APP
    pseudonym_secret: bytes | None = field(default=None, repr=False)
    #: Rate limits that apply when no rule matches (the request is refused, but a
    #: limiter may still want to count it).
    default_rate_limits: RateLimitOverrides = RateLimitOverrides()
    #: Where the policy came from (a file path, or "built-in defaults"), for messages.
    source: str = "built-in defaults"

    def __post_init__(self) -> None:
        problems = user_id_mode_problems(self.user_id_mode, self.pseudonym_secret)
        if problems:
            raise ConfigurationError([f"{where}: {message}" for where, message in problems])

    @property
    def max_duration_minutes(self) -> int:
        """The longest lifetime any rule grants: how long a token of this policy can live.

        The key ring uses it to know when a retired key can no longer have live tokens.
        """
        granting = [r.duration.max for r in self.rules if r.capabilities]
        return max(granting, default=DURATION_MAX_MINUTES)

    def match(self, user: AppUser, stage_arn: str) -> Rule | None:
        """The rule that decides for this user on this stage, or `None`."""
        return next((r for r in self.rules if r.matches(user, stage_arn)), None)

    def rate_limits_for(self, user: AppUser, stage_arn: str) -> RateLimitOverrides:
        """The rate-limit overrides for this user on this stage (nothing consumes them yet)."""
        rule = self.match(user, stage_arn)
        return self.default_rate_limits if rule is None else rule.rate_limits

    def token_user_id(self, user: AppUser) -> str:
        """The `user_id` to put in this user's tokens.

        In `app` mode an id IVS cannot carry is refused with `PermissionDenied` (403),
        not `InvalidRequest`: the request is well-formed, and the client cannot fix it.
        """
        if self.user_id_mode == "pseudonym":
            if self.pseudonym_secret is None:  # __post_init__ prevents this; never fail open
                raise ConfigurationError(["pseudonym_secret: missing in pseudonym mode"])
            return pseudonymize(user.user_id, self.pseudonym_secret)
        if len(user.user_id) > USER_ID_MAX_CHARS:
            raise PermissionDenied(
                f"your user id has {len(user.user_id)} characters; IVS tokens carry at most "
                f"{USER_ID_MAX_CHARS} (the operator can switch to pseudonymous user ids)",
                rule=IVS_USER_ID_LIMIT,
            )
        if not _is_utf8(user.user_id):
            raise PermissionDenied(
                "your user id is not valid Unicode text and cannot go into a token",
                rule=IVS_USER_ID_LIMIT,
            )
        return user.user_id

    def decide(self, user: AppUser, request: TokenRequest) -> Grant:
        """What `user` gets for `request`, or the domain error that refuses it.

        `InvalidRequest` (400) for a malformed request, checked first; then
        `PermissionDenied` (403) naming the refusing rule. Omitted capabilities mean
        everything the matching rule allows; an omitted duration means its default.
        """
        stage_arn = _checked_stage_arn(request.stage_arn)
        requested_capabilities = _checked_capabilities(request.capabilities)
        requested_duration = _checked_duration(request.duration_minutes)
        requested_attributes = _checked_attributes(request.attributes)
        token_user_id = self.token_user_id(user)

        rule = self.match(user, stage_arn)
        if rule is None:
            raise PermissionDenied(
                "no policy rule allows you anything on this stage", rule=NO_MATCHING_RULE
            )
        if not rule.capabilities:
            raise PermissionDenied(
                f"rule {rule.name!r} allows you nothing on this stage", rule=rule.name
            )
        capabilities = rule.capabilities
        if requested_capabilities is not None:
            refused = requested_capabilities - rule.capabilities
            if refused:
                raise PermissionDenied(
                    f"{_names(refused)} not allowed for you on this stage "
                    f"(rule {rule.name!r} allows {_names(rule.capabilities)} only)",
                    rule=rule.name,
                )
            capabilities = requested_capabilities

        return Grant(
            stage_arn=stage_arn,
            token_user_id=token_user_id,
            capabilities=capabilities,
            duration_minutes=rule.duration.grant(requested_duration, rule.name),
            attributes=rule.attributes.grant(requested_attributes, user.claims, rule.name),
        )

    def operator_grant(self, user: AppUser, request: TokenRequest) -> Grant:
        """What an operator's token (`token-service participant-token`) for `user` gets.

        The request is checked as `decide` checks it, with the same errors; then no rule
        is matched (the operator, not the user's roles, chose the capabilities; omitted,
        both). The lifetime stays within the longest any rule grants, which the key ring
        counts on to know when a retired key has no live token left; the attributes stay
        within IVS's limits. No server-set attribute: there is no app JWT to copy from.
        """
        stage_arn = _checked_stage_arn(request.stage_arn)
        capabilities = _checked_capabilities(request.capabilities)
        requested_duration = _checked_duration(request.duration_minutes)
        requested_attributes = _checked_attributes(request.attributes)
        longest = self.max_duration_minutes
        bounds = DurationBounds(
            default=min(OPERATOR_DEFAULT_DURATION_MINUTES, longest),
            min=DURATION_MIN_MINUTES,
            max=longest,
        )
        return Grant(
            stage_arn=stage_arn,
            token_user_id=self.token_user_id(user),
            capabilities=capabilities or frozenset(Capability),
            duration_minutes=bounds.grant(requested_duration, OPERATOR_RULE),
            attributes=AttributeRules().grant(requested_attributes, {}, OPERATOR_RULE),
        )


def attributes_size(attributes: Mapping[str, str]) -> int:
    """Bytes IVS counts against its attribute limit: UTF-8 of every key and value."""
    return sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in attributes.items())


def _names(capabilities: Iterable[Capability]) -> str:
    return " and ".join(sorted(c.value for c in capabilities))


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# The request's declared types are what the HTTP layer promises, but the policy is the
# last line before signing, so it re-checks them on values typed as `object`.


def _invalid(field_name: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field_name}: {message}", errors=[FieldError(field_name, message)])


def _checked_stage_arn(value: object) -> str:
    if not isinstance(value, str) or not is_stage_arn(value):
        raise _invalid(
            "stageArn", "must be an IVS stage ARN (arn:aws:ivs:<region>:<account>:stage/<id>)"
        )
    return value


def _checked_capabilities(value: object) -> frozenset[Capability] | None:
    if value is None:
        return None
    if not isinstance(value, (set, frozenset, list, tuple)):
        raise _invalid("capabilities", "must be a list of PUBLISH and SUBSCRIBE")
    checked: set[Capability] = set()
    for item in value:
        if not isinstance(item, str) or item not in Capability.__members__:
            raise _invalid("capabilities", f"unknown capability {item!r}")
        checked.add(Capability(item))
    if not checked:
        raise _invalid(
            "capabilities", "ask for at least one capability, or omit the field to get all allowed"
        )
    return frozenset(checked)


def _checked_duration(value: object) -> int | None:
    if value is None:
        return None
    # bool is an int in Python; `true` is not a duration.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid("durationMinutes", "must be an integer number of minutes")
    if not DURATION_MIN_MINUTES <= value <= DURATION_MAX_MINUTES:
        raise _invalid(
            "durationMinutes",
            f"must be between {DURATION_MIN_MINUTES} and {DURATION_MAX_MINUTES} minutes",
        )
    return value


def _checked_attributes(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _invalid("attributes", "must be an object of strings")
    checked: dict[str, str] = {}
    errors: list[FieldError] = []
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            errors.append(FieldError(f"attributes.{key}", "keys and values must be strings"))
        elif not (_is_utf8(key) and _is_utf8(item)):
            errors.append(FieldError(f"attributes.{key!a}", "not valid Unicode text"))
        else:
            checked[key] = item
    if errors:
        raise InvalidRequest("invalid attributes", errors=errors)
    return checked
