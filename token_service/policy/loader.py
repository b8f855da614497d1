"""Reading a policy file (TOML or YAML) into a `Policy`, validating it strictly.

Validation collects every problem with its location (`rules[2].duration.max`) and
raises them together as one `PolicyError`, so an operator fixes a file in one pass
instead of one restart per typo. Inheritance from `defaults` is resolved here, once,
so deciding a request never has to.
"""

from __future__ import annotations

import difflib
import functools
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from token_service.domain import Capability, Rate
from token_service.errors import ConfigurationError
from token_service.policy.identity import UserIdMode, user_id_mode_problems
from token_service.policy.model import (
    ATTRIBUTES_MAX_BYTES,
    DURATION_MAX_MINUTES,
    DURATION_MIN_MINUTES,
    AttributeRules,
    Constant,
    DurationBounds,
    FromClaim,
    Policy,
    RateLimitOverrides,
    Rule,
    ServerAttribute,
    attributes_size,
)
from token_service.policy.stages import PatternError, StagePattern

#: What applies when neither the rule nor `defaults` says otherwise.
BUILTIN_DURATION: Final = DurationBounds(default=60, min=1, max=720)
#: The only role the built-in policy knows: it may publish.
PUBLISHER_ROLE: Final = "publisher"
#: Prefixes of a server attribute's value in the file.
CLAIM_PREFIX: Final = "claim:"
CONSTANT_PREFIX: Final = "const:"
POLICY_FORMAT_VERSION: Final = 1

_TOP_KEYS = ("version", "defaults", "rules")
_SETTINGS_KEYS = ("duration", "attributes", "rate_limits")
_RULE_KEYS = ("name", "roles", "stages", "capabilities", *_SETTINGS_KEYS)
_DURATION_KEYS = ("default", "min", "max")
_ATTRIBUTES_KEYS = ("client_keys", "max_value_length", "server")
_RATE_LIMIT_KEYS = ("user", "ip", "stage")
_RATE_LIMIT_TABLE_KEYS = ("rate", "burst")


@dataclass(frozen=True)
class PolicyIssue:
    """One problem found while loading: where (`rules[2].duration.max`) and what."""

    location: str
    message: str
    #: The file it is in; `None` for problems with the loader's arguments.
    source: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return f"{prefix}{self.location}: {self.message}"


class PolicyError(ConfigurationError):
    """A policy that cannot be used; `issues` holds every problem, in file order."""

    def __init__(self, issues: Sequence[PolicyIssue]) -> None:
        super().__init__([str(issue) for issue in issues])
        self.issues = tuple(issues)


def default_policy(*, user_id_mode: str = "app", pseudonym_secret: bytes | None = None) -> Policy:
    """The policy without a file: anyone subscribes, role `publisher` also publishes."""
    mode = _checked_mode(user_id_mode, pseudonym_secret)
    return Policy(
        rules=(
            Rule(
                name=f"default: role {PUBLISHER_ROLE}",
                roles=frozenset({PUBLISHER_ROLE}),
                stages=None,
                capabilities=frozenset({Capability.PUBLISH, Capability.SUBSCRIBE}),
                duration=BUILTIN_DURATION,
            ),
            Rule(
                # Named for why it refuses, because refusals are what show this name.
                name=f"default: PUBLISH requires role {PUBLISHER_ROLE}",
                roles=None,
                stages=None,
                capabilities=frozenset({Capability.SUBSCRIBE}),
                duration=BUILTIN_DURATION,
            ),
        ),
        user_id_mode=mode,
        pseudonym_secret=pseudonym_secret,
    )


def load_policy(
    path: Path | None, *, user_id_mode: str = "app", pseudonym_secret: bytes | None = None
) -> Policy:
    """The policy in `path` (`.toml`, `.yaml` or `.yml`), or the default one for `None`.

    Raises `PolicyError` (a `ConfigurationError`) listing every problem: with the
    arguments, reading or parsing the file, and each invalid entry with its location.
    """
    if path is None:
        return default_policy(user_id_mode=user_id_mode, pseudonym_secret=pseudonym_secret)
    source = str(path)
    data, read_issue = _read(path)
    if read_issue is not None:
        argument_issues = _argument_issues(user_id_mode, pseudonym_secret)
        raise PolicyError([*argument_issues, PolicyIssue("<file>", read_issue, source)])
    return policy_from_mapping(
        data, source=source, user_id_mode=user_id_mode, pseudonym_secret=pseudonym_secret
    )


def policy_from_mapping(
    data: object,
    *,
    source: str = "<policy>",
    user_id_mode: str = "app",
    pseudonym_secret: bytes | None = None,
) -> Policy:
    """A policy from already-parsed data, shaped as the file would be."""
    issues = _argument_issues(user_id_mode, pseudonym_secret)
    collector = _Collector(source)
    rules, defaults = _policy_body(data, collector)
    issues.extend(collector.issues)
    if issues:
        raise PolicyError(issues)
    return Policy(
        rules=rules,
        user_id_mode=_checked_mode(user_id_mode, pseudonym_secret),
        pseudonym_secret=pseudonym_secret,
        default_rate_limits=defaults.rate_limits,
        source=source,
    )


def _argument_issues(user_id_mode: str, pseudonym_secret: bytes | None) -> list[PolicyIssue]:
    return [PolicyIssue(w, m) for w, m in user_id_mode_problems(user_id_mode, pseudonym_secret)]


def _checked_mode(user_id_mode: str, pseudonym_secret: bytes | None) -> UserIdMode:
    issues = _argument_issues(user_id_mode, pseudonym_secret)
    if issues:
        raise PolicyError(issues)
    return UserIdMode(user_id_mode)


# --- reading ---------------------------------------------------------------------------


def _read(path: Path) -> tuple[object, str | None]:
    """The parsed document, or a message saying why there is none."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        return None, f"unknown file type {path.suffix!r}: use .toml, .yaml or .yml"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read the file: {exc.strerror or exc}"
    return _parse_toml(raw) if suffix == ".toml" else _parse_yaml(raw)


def _parse_toml(raw: bytes) -> tuple[object, str | None]:
    try:
        return tomllib.loads(raw.decode("utf-8")), None
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except tomllib.TOMLDecodeError as exc:
        return None, f"invalid TOML: {exc}"


def _parse_yaml(raw: bytes) -> tuple[object, str | None]:
    try:
        document = yaml.load(raw, Loader=_strict_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        return None, f"invalid YAML: {exc}"
    # An empty YAML file is `None`; treat it as an empty table so the problem reported
    # is the useful one ("rules: required") rather than a type error.
    return ({} if document is None else document), None


@functools.cache
def _strict_yaml_loader() -> type[yaml.SafeLoader]:
    """A SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        loader.flatten_mapping(node)  # resolve `<<` merge keys first, as SafeLoader does
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable (list or mapping) key
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a string", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return loader.construct_mapping(node, deep=True)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictLoader


# --- validating ------------------------------------------------------------------------


class _Collector:
    def __init__(self, source: str) -> None:
        self.source = source
        self.issues: list[PolicyIssue] = []

    def add(self, location: str, message: str) -> None:
        self.issues.append(PolicyIssue(location, message, self.source))


@dataclass(frozen=True)
class _Settings:
    """The inheritable part of a rule, fully resolved at one level."""

    duration: DurationBounds
    attributes: AttributeRules
    rate_limits: RateLimitOverrides


_BUILTIN_SETTINGS = _Settings(BUILTIN_DURATION, AttributeRules(), RateLimitOverrides())


def _policy_body(data: object, c: _Collector) -> tuple[tuple[Rule, ...], _Settings]:
    top = _table(data, "<top level>", _TOP_KEYS, c)
    if top is None:
        return (), _BUILTIN_SETTINGS
    if "version" in top:
        version = top["version"]
        if version != POLICY_FORMAT_VERSION or isinstance(version, bool):
            c.add("version", f"must be {POLICY_FORMAT_VERSION}, not {version!r}")
    defaults = _BUILTIN_SETTINGS
    if "defaults" in top:
        table = _table(top["defaults"], "defaults", _SETTINGS_KEYS, c)
        if table is not None:
            defaults = _settings(table, "defaults", _BUILTIN_SETTINGS, c, "built-in")
    if "rules" not in top:
        c.add("rules", "required: a list of at least one rule")
        return (), defaults
    raw_rules = top["rules"]
    if not isinstance(raw_rules, list):
        c.add("rules", f"expected a list of rules, got {_type_name(raw_rules)}")
        return (), defaults
    if not raw_rules:
        c.add("rules", "needs at least one rule (with none, every request would be refused)")
        return (), defaults
    parsed: list[Rule] = []
    names: dict[str, str] = {}
    for index, raw in enumerate(raw_rules):
        rule = _rule(raw, index, defaults, names, c)
        if rule is not None:
            parsed.append(rule)
    _check_rule_order(parsed, c)
    return tuple(parsed), defaults


def _rule(
    raw: object, index: int, defaults: _Settings, names: dict[str, str], c: _Collector
) -> Rule | None:
    """Rule `index`, or `None` if it has problems; `names` maps each name seen to its rule."""
    loc = f"rules[{index}]"
    first_issue = len(c.issues)
    table = _table(raw, loc, _RULE_KEYS, c)
    if table is None:
        return None
    name = None
    if "name" not in table:
        c.add(f"{loc}.name", "required: a unique name, shown in refusals and logs")
    else:
        name = _string(table["name"], f"{loc}.name", c)
    roles = None
    if "roles" in table:
        role_list = _string_list(table["roles"], f"{loc}.roles", c, what="role")
        if role_list is not None and not role_list:
            c.add(f"{loc}.roles", "must not be empty: omit it to match every user")
        roles = frozenset(role_list) if role_list else None
    stages = None
    if "stages" in table:
        stages = _stages(table["stages"], f"{loc}.stages", c)
    capabilities = None
    if "capabilities" not in table:
        c.add(
            f"{loc}.capabilities",
            "required: a list of PUBLISH and/or SUBSCRIBE ([] for a rule that denies)",
        )
    else:
        capabilities = _capabilities(table["capabilities"], f"{loc}.capabilities", c)
    settings = _settings(table, loc, defaults, c, "defaults")
    if name is not None:
        # Say which rule, too: an index is easy to get wrong counting `[[rules]]` by eye.
        for i in range(first_issue, len(c.issues)):
            issue = c.issues[i]
            c.issues[i] = PolicyIssue(
                issue.location, f"{issue.message} (rule {name!r})", issue.source
            )
        earlier = names.setdefault(name, loc)
        if earlier != loc:
            c.add(f"{loc}.name", f"duplicate name {name!r} (also {earlier})")
    if name is None or capabilities is None or len(c.issues) > first_issue:
        return None
    return Rule(
        name=name,
        roles=roles,
        stages=stages,
        capabilities=capabilities,
        duration=settings.duration,
        attributes=settings.attributes,
        rate_limits=settings.rate_limits,
        origin=loc,
    )


def _check_rule_order(rules: Sequence[Rule], c: _Collector) -> None:
    """Rules an earlier rule always wins over: they can never match, a sure mistake."""
    for j, later in enumerate(rules):
        for earlier in rules[:j]:
            if not _covers(earlier, later):
                continue
            if earlier.roles == later.roles and _texts(earlier.stages) == _texts(later.stages):
                message = f"duplicates the conditions of {earlier.origin} ({earlier.name!r})"
            else:
                message = (
                    f"{earlier.origin} ({earlier.name!r}) comes first and matches every "
                    "user and stage this rule matches"
                )
            c.add(later.origin, f"can never match: {message} (rule {later.name!r})")
            break


def _covers(earlier: Rule, later: Rule) -> bool:
    """Whether every request `later` matches is matched by `earlier` (sound, not complete)."""
    if earlier.roles is not None and (later.roles is None or not later.roles <= earlier.roles):
        return False
    if earlier.stages is None or any(p.matches_every_stage for p in earlier.stages):
        return True
    if later.stages is None:
        return False
    earlier_texts = {p.text for p in earlier.stages}
    for pattern in later.stages:
        if pattern.text in earlier_texts:
            continue
        # An exact ARN is covered by any earlier pattern matching it; a glob, only by
        # the same glob (glob containment in general is not worth guessing at).
        if pattern.is_glob or not any(p.matches(pattern.text) for p in earlier.stages):
            return False
    return True


def _texts(stages: tuple[StagePattern, ...] | None) -> frozenset[str] | None:
    return None if stages is None else frozenset(p.text for p in stages)


def _stages(value: object, loc: str, c: _Collector) -> tuple[StagePattern, ...] | None:
    texts = _string_list(value, loc, c, what="stage pattern")
    if texts is None:
        return None
    if not texts:
        c.add(loc, "must not be empty: omit it to match every stage")
        return None
    patterns: list[StagePattern] = []
    for i, text in enumerate(texts):
        try:
            patterns.append(StagePattern.parse(text))
        except PatternError as exc:
            c.add(f"{loc}[{i}]", f"bad stage pattern {text!r}: {exc}")
    return tuple(patterns) if len(patterns) == len(texts) else None


def _capabilities(value: object, loc: str, c: _Collector) -> frozenset[Capability] | None:
    names = _string_list(value, loc, c, what="capability")
    if names is None:
        return None
    result: set[Capability] = set()
    ok = True
    for i, name in enumerate(names):
        if name not in Capability.__members__:
            c.add(f"{loc}[{i}]", f"unknown capability {name!r}: use PUBLISH or SUBSCRIBE")
            ok = False
        else:
            result.add(Capability(name))
    return frozenset(result) if ok else None


def _settings(
    table: Mapping[str, object], loc: str, parent: _Settings, c: _Collector, parent_name: str
) -> _Settings:
    """This level's settings: what `table` sets, the rest inherited from `parent`."""
    duration = parent.duration
    if "duration" in table:
        sub = _table(table["duration"], f"{loc}.duration", _DURATION_KEYS, c)
        if sub is not None:
            duration = _duration(sub, f"{loc}.duration", parent.duration, c, parent_name)
    attributes = parent.attributes
    if "attributes" in table:
        sub = _table(table["attributes"], f"{loc}.attributes", _ATTRIBUTES_KEYS, c)
        if sub is not None:
            attributes = _attributes(sub, f"{loc}.attributes", parent.attributes, c)
    rate_limits = parent.rate_limits
    if "rate_limits" in table:
        sub = _table(table["rate_limits"], f"{loc}.rate_limits", _RATE_LIMIT_KEYS, c)
        if sub is not None:
            rate_limits = _rate_limits(sub, f"{loc}.rate_limits", parent.rate_limits, c)
    return _Settings(duration, attributes, rate_limits)


def _duration(
    table: Mapping[str, object],
    loc: str,
    parent: DurationBounds,
    c: _Collector,
    parent_name: str,
) -> DurationBounds:
    given: dict[str, int] = {}
    for key in _DURATION_KEYS:
        if key in table:
            value = _integer(
                table[key], f"{loc}.{key}", c, DURATION_MIN_MINUTES, DURATION_MAX_MINUTES
            )
            if value is not None:
                given[key] = value

    def origin(key: str) -> str:
        return "" if key in given else f" (from {parent_name})"

    low = given.get("min", parent.min)
    high = given.get("max", parent.max)
    if low > high:
        where = "min" if "min" in given else "max"
        c.add(f"{loc}.{where}", f"min {low}{origin('min')} is above max {high}{origin('max')}")
        return parent
    if "default" in given:
        default = given["default"]
        if default > high:
            c.add(f"{loc}.default", f"{default} is above max {high}{origin('max')}")
        elif default < low:
            c.add(f"{loc}.default", f"{default} is below min {low}{origin('min')}")
    else:
        # An inherited default is clamped into this table's own bounds, so a rule can
        # say just `max = 30` without restating the default.
        default = min(max(parent.default, low), high)
    return DurationBounds(default=default, min=low, max=high)


def _attributes(
    table: Mapping[str, object], loc: str, parent: AttributeRules, c: _Collector
) -> AttributeRules:
    client_keys = parent.client_keys
    if "client_keys" in table:
        client_keys = _client_keys(table["client_keys"], f"{loc}.client_keys", parent, c)
    max_value_length = parent.max_value_length
    if "max_value_length" in table:
        max_value_length = _integer(
            table["max_value_length"], f"{loc}.max_value_length", c, 1, ATTRIBUTES_MAX_BYTES
        )
    # Server attributes accumulate: a rule adds to (or overrides) those of `defaults`
    # and cannot drop one, so a rule can never quietly make a server-owned key such as
    # `displayName` client-settable again.
    server = {a.key: a for a in parent.server}
    own_server: dict[str, ServerAttribute] = {}
    if "server" in table:
        raw_server = _table(table["server"], f"{loc}.server", None, c)
        for key, raw_value in (raw_server or {}).items():
            attribute = _server_attribute(key, raw_value, f"{loc}.server.{key}", c)
            if attribute is not None:
                own_server[key] = attribute
    server |= own_server
    if client_keys is not None:
        for key in sorted(client_keys & server.keys()):
            # Reported where it was introduced, so an inherited conflict is reported once.
            if key in own_server:
                c.add(f"{loc}.server.{key}", "is server-set, so it cannot be in client_keys too")
            elif "client_keys" in table:
                c.add(f"{loc}.client_keys", f"{key!r} is server-set, so it cannot be listed")
    constants = {k: a.source.value for k, a in server.items() if isinstance(a.source, Constant)}
    if attributes_size(constants) > ATTRIBUTES_MAX_BYTES:
        c.add(
            f"{loc}.server",
            f"constant attributes alone take {attributes_size(constants)} bytes of UTF-8; "
            f"IVS allows at most {ATTRIBUTES_MAX_BYTES}",
        )
    return AttributeRules(
        client_keys=client_keys, max_value_length=max_value_length, server=tuple(server.values())
    )


def _client_keys(
    value: object, loc: str, parent: AttributeRules, c: _Collector
) -> frozenset[str] | None:
    """`"*"` (any key: `None`) or a list of keys; the parent's value when invalid."""
    if value == "*":
        return None
    keys = _string_list(value, loc, c, what="attribute key")
    if keys is None:
        return parent.client_keys
    if "*" in keys:
        c.add(loc, 'for any key write client_keys = "*", not a list')
        return parent.client_keys
    return frozenset(keys)


def _server_attribute(key: str, value: object, loc: str, c: _Collector) -> ServerAttribute | None:
    if not key:
        c.add(loc, "an attribute key must not be empty")
        return None
    text = _string(value, loc, c, allow_empty=True)
    if text is None:
        return None
    if text.startswith(CLAIM_PREFIX):
        claim = text[len(CLAIM_PREFIX) :]
        if not claim:
            c.add(loc, "'claim:' needs a claim name, e.g. 'claim:name'")
            return None
        return ServerAttribute(key, FromClaim(claim))
    if text.startswith(CONSTANT_PREFIX):
        return ServerAttribute(key, Constant(text[len(CONSTANT_PREFIX) :]))
    return ServerAttribute(key, Constant(text))


def _rate_limits(
    table: Mapping[str, object], loc: str, parent: RateLimitOverrides, c: _Collector
) -> RateLimitOverrides:
    limits = {"user": parent.user, "ip": parent.ip, "stage": parent.stage}
    for key in _RATE_LIMIT_KEYS:
        if key in table:
            limit = _rate_limit(table[key], f"{loc}.{key}", c)
            if limit is not None:
                limits[key] = limit
    return RateLimitOverrides(user=limits["user"], ip=limits["ip"], stage=limits["stage"])


def _rate_limit(value: object, loc: str, c: _Collector) -> Rate | None:
    """`"10/minute"`, or `{ rate = "10/minute", burst = 20 }`."""
    if not isinstance(value, Mapping):
        return _rate(value, loc, c, burst=None)
    table = _table(value, loc, _RATE_LIMIT_TABLE_KEYS, c)
    if table is None:
        return None
    burst = None
    if "burst" in table:
        burst = _integer(table["burst"], f"{loc}.burst", c, 1, 1_000_000)
        if burst is None:
            return None
    if "rate" not in table:
        c.add(f"{loc}.rate", "required, e.g. '10/minute'")
        return None
    return _rate(table["rate"], f"{loc}.rate", c, burst=burst)


def _rate(value: object, loc: str, c: _Collector, *, burst: int | None) -> Rate | None:
    if not isinstance(value, str):
        c.add(loc, f"expected a rate such as '10/minute', got {_type_name(value)}")
        return None
    if ";" in value:
        # The table form carries the burst: `{ rate = "10/minute", burst = 20 }`.
        c.add(loc, f"expected N/second, N/minute, N/hour or N/day, not {value!r}")
        return None
    try:
        rate = Rate.parse(value)
    except ValueError as exc:
        message = str(exc)
        if message.startswith("expected"):
            message = f"expected N/second, N/minute, N/hour or N/day, not {value!r}"
        c.add(loc, message)
        return None
    return Rate(rate.count, rate.period_seconds, burst)


# --- typed readers: each reports its own problem and returns None on failure ------------


def _table(
    value: object, loc: str, allowed: Iterable[str] | None, c: _Collector
) -> dict[str, object] | None:
    if not isinstance(value, Mapping):
        c.add(loc, f"expected a table, got {_type_name(value)}")
        return None
    allowed_keys = None if allowed is None else tuple(allowed)
    result: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            c.add(loc, f"keys must be strings, got {_type_name(key)} {key!r}")
            continue
        if allowed_keys is not None and key not in allowed_keys:
            close = difflib.get_close_matches(key, allowed_keys, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "expected " + ", ".join(allowed_keys)
            c.add(f"{loc}.{key}" if loc != "<top level>" else key, f"unknown key ({hint})")
            continue
        result[key] = item
    return result


def _string(value: object, loc: str, c: _Collector, *, allow_empty: bool = False) -> str | None:
    if not isinstance(value, str):
        c.add(loc, f"expected a string, got {_type_name(value)}")
        return None
    if not allow_empty and not value.strip():
        c.add(loc, "must not be empty")
        return None
    return value


def _integer(value: object, loc: str, c: _Collector, low: int, high: int) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool):
        c.add(loc, f"expected an integer, got {_type_name(value)}")
        return None
    if not low <= value <= high:
        c.add(loc, f"{value} is out of range {low}..{high}")
        return None
    return value


def _string_list(value: object, loc: str, c: _Collector, *, what: str) -> list[str] | None:
    """A list of unique non-empty strings (possibly empty; callers decide)."""
    if not isinstance(value, list):
        c.add(loc, f"expected a list of {what}s, got {_type_name(value)}")
        return None
    items: list[str] = []
    ok = True
    for i, item in enumerate(value):
        text = _string(item, f"{loc}[{i}]", c)
        if text is None:
            ok = False
        elif text in items:
            c.add(f"{loc}[{i}]", f"duplicate {what} {text!r}")
            ok = False
        else:
            items.append(text)
    return items if ok else None


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__
