"""Policy files: each rule feature, stage globs, and first-match-wins combination."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from token_service.domain import AppUser, Capability, Grant, Rate, TokenRequest
from token_service.errors import InvalidRequest, PermissionDenied
from token_service.policy import (
    NO_MATCHING_RULE,
    Policy,
    RateLimitOverrides,
    StagePattern,
    load_policy,
    policy_from_mapping,
)

ACCOUNT = "123456789012"
STAGE = f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/AbCdEf123456"
OTHER_STAGE = f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/ZzZz99990000"
PUBLISH = Capability.PUBLISH
SUBSCRIBE = Capability.SUBSCRIBE
BOTH = ["PUBLISH", "SUBSCRIBE"]
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def user(*roles: str, user_id: str = "alice", **claims: Any) -> AppUser:
    return AppUser(user_id=user_id, roles=frozenset(roles), issuer=None, claims=claims)


def ask(stage: str = STAGE, **fields: Any) -> TokenRequest:
    return TokenRequest(stage_arn=stage, **fields)


def policy(*rules: dict[str, Any], **top: Any) -> Policy:
    return policy_from_mapping({"rules": list(rules), **top})


def rule(name: str, capabilities: list[str], **fields: Any) -> dict[str, Any]:
    return {"name": name, "capabilities": capabilities, **fields}


def decide(p: Policy, u: AppUser, request: TokenRequest | None = None) -> Grant:
    return p.decide(u, request or ask())


# --- stage patterns ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "arn"),
    [
        ("*", STAGE),
        (STAGE, STAGE),
        (f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/*", STAGE),
        (f"arn:aws:ivs:*:{ACCOUNT}:stage/*", f"arn:aws:ivs:eu-west-1:{ACCOUNT}:stage/x"),
        (f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/AbCd*", STAGE),
        (f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/AbCdEf12345?", STAGE),
        (f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/[A-Z]bCdEf123456", STAGE),
        (f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/[!x]bCdEf123456", STAGE),
        ("arn:aws:ivs:us-*-1:1234567890[0-9][0-9]:stage/*", STAGE),
    ],
)
def test_stage_pattern_matches(pattern: str, arn: str) -> None:
    assert StagePattern.parse(pattern).matches(arn)


@pytest.mark.parametrize(
    ("pattern", "arn"),
    [
        (STAGE, OTHER_STAGE),
        (f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/*", "arn:aws:ivs:us-east-1:999999999999:stage/x"),
        (f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/abcd*", STAGE),  # case-sensitive
        (f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/[!A]bCdEf123456", STAGE),
        (f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/AbCdEf12345?", STAGE + "7"),
    ],
)
def test_stage_pattern_does_not_match(pattern: str, arn: str) -> None:
    assert not StagePattern.parse(pattern).matches(arn)


def test_a_wildcard_never_matches_across_arn_segments() -> None:
    # The region `*` must not swallow `us-east-1:999999999999` to reach another account.
    pattern = StagePattern.parse(f"arn:aws:ivs:*:{ACCOUNT}:stage/*")
    assert not pattern.matches(f"arn:aws:ivs:us-east-1:999999999999:stage/{ACCOUNT}")


def test_rule_with_a_stage_glob_applies_only_to_matching_stages() -> None:
    p = policy(
        rule("studio", BOTH, stages=[f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/AbCd*"]),
        rule("everyone", ["SUBSCRIBE"]),
    )
    assert decide(p, user()).capabilities == {PUBLISH, SUBSCRIBE}
    assert decide(p, user(), ask(OTHER_STAGE)).capabilities == {SUBSCRIBE}


def test_rule_with_several_stages_matches_any_of_them() -> None:
    p = policy(rule("two stages", BOTH, stages=[STAGE, OTHER_STAGE]))
    assert decide(p, user(), ask(OTHER_STAGE)).capabilities == {PUBLISH, SUBSCRIBE}


# --- roles and combination ---------------------------------------------------------------


def test_rule_with_roles_matches_a_user_holding_any_of_them() -> None:
    p = policy(rule("staff", BOTH, roles=["host", "moderator"]), rule("rest", ["SUBSCRIBE"]))
    assert decide(p, user("moderator")).capabilities == {PUBLISH, SUBSCRIBE}


def test_rule_with_roles_does_not_match_a_user_without_them() -> None:
    p = policy(rule("staff", BOTH, roles=["host"]), rule("rest", ["SUBSCRIBE"]))
    assert decide(p, user("viewer")).capabilities == {SUBSCRIBE}


def test_first_matching_rule_decides_for_a_user_with_several_roles() -> None:
    # The user matches both rules; the earlier one decides everything, including the
    # duration, even though the later one would allow longer.
    p = policy(
        rule("hosts", BOTH, roles=["host"], duration={"max": 60}),
        rule("viewers", ["SUBSCRIBE"], roles=["viewer"], duration={"max": 600}),
    )
    u = user("viewer", "host")
    assert decide(p, u).capabilities == {PUBLISH, SUBSCRIBE}
    with pytest.raises(PermissionDenied) as refused:
        decide(p, u, ask(duration_minutes=120))
    assert refused.value.rule == "hosts"


def test_rules_are_not_combined_so_a_later_rule_grants_nothing_extra() -> None:
    p = policy(
        rule("stage viewers", ["SUBSCRIBE"], stages=[STAGE]),
        rule("publishers", BOTH, roles=["publisher"]),
    )
    with pytest.raises(PermissionDenied) as refused:
        decide(p, user("publisher"), ask(capabilities=frozenset({PUBLISH})))
    assert refused.value.rule == "stage viewers"


def test_a_rule_with_no_capabilities_denies_everything_to_whom_it_matches() -> None:
    p = policy(rule("banned", [], roles=["banned"]), rule("everyone", BOTH))
    with pytest.raises(PermissionDenied) as refused:
        decide(p, user("banned"))
    assert refused.value.rule == "banned"


def test_user_matched_by_no_rule_is_refused() -> None:
    p = policy(rule("hosts", BOTH, roles=["host"]))
    with pytest.raises(PermissionDenied) as refused:
        decide(p, user("viewer"))
    assert refused.value.rule == NO_MATCHING_RULE


def test_capability_refusal_names_the_rule_and_the_capability() -> None:
    p = policy(rule("viewers", ["SUBSCRIBE"]))
    with pytest.raises(PermissionDenied) as refused:
        decide(p, user(), ask(capabilities=frozenset({PUBLISH})))
    assert refused.value.rule == "viewers"
    assert "PUBLISH" in refused.value.detail


def test_rule_may_grant_publish_without_subscribe() -> None:
    p = policy(rule("broadcasters", ["PUBLISH"]))
    assert decide(p, user()).capabilities == {PUBLISH}


def test_match_returns_the_deciding_rule() -> None:
    p = policy(rule("hosts", BOTH, roles=["host"]), rule("rest", ["SUBSCRIBE"]))
    matched = p.match(user("host"), STAGE)
    assert matched is not None
    assert (matched.name, matched.origin) == ("hosts", "rules[0]")


# --- durations ---------------------------------------------------------------------------


def test_rule_duration_bounds_replace_the_built_in_ones() -> None:
    p = policy(rule("long", ["SUBSCRIBE"], duration={"default": 120, "min": 30, "max": 1440}))
    assert decide(p, user()).duration_minutes == 120
    assert decide(p, user(), ask(duration_minutes=1440)).duration_minutes == 1440


def test_duration_below_the_rule_minimum_is_refused_naming_the_bound() -> None:
    p = policy(rule("long", ["SUBSCRIBE"], duration={"min": 30}))
    with pytest.raises(PermissionDenied) as refused:
        decide(p, user(), ask(duration_minutes=10))
    assert "minimum of 30" in refused.value.detail


def test_duration_over_the_rule_maximum_is_refused_naming_the_bound() -> None:
    p = policy(rule("short", ["SUBSCRIBE"], duration={"max": 30}))
    with pytest.raises(PermissionDenied) as refused:
        decide(p, user(), ask(duration_minutes=31))
    assert "maximum of 30" in refused.value.detail
    assert refused.value.rule == "short"


def test_rule_inherits_duration_bounds_from_defaults() -> None:
    p = policy(rule("r", ["SUBSCRIBE"]), defaults={"duration": {"default": 15, "max": 90}})
    assert decide(p, user()).duration_minutes == 15
    with pytest.raises(PermissionDenied):
        decide(p, user(), ask(duration_minutes=91))


def test_inherited_default_duration_is_clamped_to_the_rule_maximum() -> None:
    p = policy(rule("short", ["SUBSCRIBE"], duration={"max": 30}))
    assert decide(p, user()).duration_minutes == 30


def test_inherited_default_duration_is_raised_to_the_rule_minimum() -> None:
    p = policy(rule("long", ["SUBSCRIBE"], duration={"min": 90}))
    assert decide(p, user()).duration_minutes == 90


def test_max_duration_minutes_is_the_longest_any_rule_grants() -> None:
    p = policy(rule("a", BOTH, roles=["x"], duration={"max": 1440}), rule("b", ["SUBSCRIBE"]))
    assert p.max_duration_minutes == 1440


def test_max_duration_minutes_ignores_rules_that_deny() -> None:
    p = policy(rule("banned", [], roles=["banned"], duration={"max": 9000}), rule("b", BOTH))
    assert p.max_duration_minutes == 720


# --- attributes --------------------------------------------------------------------------


def test_client_keys_allow_listed_attributes_are_granted() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"client_keys": ["avatarUrl"]}))
    grant = decide(p, user(), ask(attributes={"avatarUrl": "https://x/a.png"}))
    assert grant.attributes == {"avatarUrl": "https://x/a.png"}


def test_attribute_key_not_in_client_keys_is_refused_naming_the_key() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"client_keys": ["avatarUrl"]}))
    with pytest.raises(PermissionDenied) as refused:
        decide(p, user(), ask(attributes={"avatarUrl": "a", "isAdmin": "true"}))
    assert "attributes.isAdmin" in refused.value.detail
    assert "attributes.avatarUrl" not in refused.value.detail
    assert refused.value.rule == "r"


def test_empty_client_keys_lets_clients_set_no_attribute() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"client_keys": []}))
    assert decide(p, user()).attributes == {}
    with pytest.raises(PermissionDenied):
        decide(p, user(), ask(attributes={"seat": "1"}))


def test_client_keys_star_in_a_rule_lifts_the_defaults_allow_list() -> None:
    p = policy(
        rule("open", ["SUBSCRIBE"], attributes={"client_keys": "*"}),
        defaults={"attributes": {"client_keys": ["avatarUrl"]}},
    )
    assert decide(p, user(), ask(attributes={"seat": "1"})).attributes == {"seat": "1"}


def test_client_value_longer_than_max_value_length_is_refused() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"max_value_length": 5}))
    assert decide(p, user(), ask(attributes={"seat": "12345"})).attributes == {"seat": "12345"}
    with pytest.raises(PermissionDenied) as refused:
        decide(p, user(), ask(attributes={"seat": "123456"}))
    assert "attributes.seat" in refused.value.detail


def test_max_value_length_counts_characters_not_bytes() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"max_value_length": 3}))
    assert decide(p, user(), ask(attributes={"n": "éèê"})).attributes == {"n": "éèê"}


def test_server_attribute_is_copied_from_a_verified_claim() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"server": {"displayName": "claim:name"}}))
    assert decide(p, user(name="Sam Lee")).attributes == {"displayName": "Sam Lee"}


def test_server_attribute_from_a_dotted_claim_path() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"server": {"team": "claim:org.team"}}))
    assert decide(p, user(org={"team": "blue"})).attributes == {"team": "blue"}


def test_server_attribute_prefers_a_claim_whose_literal_name_has_dots() -> None:
    claim = "https://example.com/name"
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"server": {"n": f"claim:{claim}"}}))
    assert decide(p, user(**{claim: "Sam"})).attributes == {"n": "Sam"}


def test_non_string_claim_is_copied_in_its_json_spelling() -> None:
    p = policy(
        rule("r", ["SUBSCRIBE"], attributes={"server": {"level": "claim:lvl", "ok": "claim:v"}})
    )
    assert decide(p, user(lvl=3, v=True)).attributes == {"level": "3", "ok": "true"}


def test_server_attribute_with_a_constant_value() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"server": {"tier": "gold"}}))
    assert decide(p, user()).attributes == {"tier": "gold"}


def test_const_prefix_makes_a_constant_that_looks_like_a_claim_reference() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"server": {"x": "const:claim:name"}}))
    assert decide(p, user(name="Sam")).attributes == {"x": "claim:name"}


def test_client_value_for_a_server_attribute_is_refused_naming_the_key() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"server": {"displayName": "claim:name"}}))
    with pytest.raises(PermissionDenied, match=r"attributes\.displayName"):
        decide(p, user(name="Sam"), ask(attributes={"displayName": "The CEO"}))


def test_server_key_is_never_client_settable_even_when_the_claim_is_missing() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"server": {"displayName": "claim:name"}}))
    with pytest.raises(PermissionDenied, match="set by the server"):
        decide(p, user(), ask(attributes={"displayName": "The CEO", "seat": "1"}))


def test_server_attributes_are_exempt_from_the_client_allow_list_and_length() -> None:
    p = policy(
        rule(
            "r",
            ["SUBSCRIBE"],
            attributes={
                "client_keys": [],
                "max_value_length": 2,
                "server": {"displayName": "claim:name"},
            },
        )
    )
    assert decide(p, user(name="Samantha")).attributes == {"displayName": "Samantha"}


def test_server_attributes_count_toward_the_1kb_limit() -> None:
    p = policy(rule("r", ["SUBSCRIBE"], attributes={"server": {"bio": "claim:bio"}}))
    with pytest.raises(InvalidRequest) as invalid:
        decide(p, user(bio="b" * 600), ask(attributes={"note": "n" * 500}))
    assert [e.field for e in invalid.value.errors] == ["attributes"]


def test_server_attributes_accumulate_from_defaults_into_rules() -> None:
    p = policy(
        rule("hosts", BOTH, attributes={"server": {"badge": "host"}}),
        defaults={"attributes": {"server": {"displayName": "claim:name"}}},
    )
    assert decide(p, user(name="Sam")).attributes == {"displayName": "Sam", "badge": "host"}


def test_rule_server_attribute_overrides_the_defaults_one_with_the_same_key() -> None:
    p = policy(
        rule("hosts", BOTH, attributes={"server": {"badge": "host"}}),
        defaults={"attributes": {"server": {"badge": "none"}}},
    )
    assert decide(p, user()).attributes == {"badge": "host"}


# --- rate limits -------------------------------------------------------------------------


def test_rate_limit_overrides_are_exposed_per_matching_rule() -> None:
    p = policy(
        rule("mods", BOTH, roles=["mod"], rate_limits={"user": {"rate": "60/minute", "burst": 20}}),
        rule("rest", ["SUBSCRIBE"]),
        defaults={"rate_limits": {"user": "10/minute", "stage": "5/second"}},
    )
    assert p.rate_limits_for(user("mod"), STAGE) == RateLimitOverrides(
        user=Rate(60, 60, burst=20), stage=Rate(5, 1)
    )
    assert p.rate_limits_for(user(), STAGE) == RateLimitOverrides(
        user=Rate(10, 60), stage=Rate(5, 1)
    )


def test_rate_limits_for_a_user_no_rule_matches_are_the_defaults() -> None:
    p = policy(rule("mods", BOTH, roles=["mod"]), defaults={"rate_limits": {"ip": "1/hour"}})
    assert p.rate_limits_for(user(), STAGE) == RateLimitOverrides(ip=Rate(1, 3600))


def test_without_rate_limits_nothing_is_overridden() -> None:
    p = policy(rule("r", ["SUBSCRIBE"]))
    assert p.rate_limits_for(user(), STAGE) == RateLimitOverrides()


# --- files -------------------------------------------------------------------------------


def test_toml_and_yaml_files_load_to_the_same_policy(tmp_path: Path) -> None:
    toml = tmp_path / "p.toml"
    toml.write_text('[[rules]]\nname = "r"\ncapabilities = ["SUBSCRIBE"]\nduration = {max = 9}\n')
    yaml = tmp_path / "p.yml"
    yaml.write_text("rules:\n  - name: r\n    capabilities: [SUBSCRIBE]\n    duration: {max: 9}\n")
    assert load_policy(toml).rules == load_policy(yaml).rules


@pytest.mark.parametrize("name", ["policy.toml", "policy.yaml"])
def test_example_policy_loads(name: str) -> None:
    assert load_policy(EXAMPLES / name).source.endswith(name)


def test_the_two_example_policies_are_the_same_policy() -> None:
    toml = load_policy(EXAMPLES / "policy.toml")
    yaml = load_policy(EXAMPLES / "policy.yaml")
    assert (toml.rules, toml.default_rate_limits) == (yaml.rules, yaml.default_rate_limits)


def test_example_policy_behaves_as_its_comments_say() -> None:
    p = load_policy(EXAMPLES / "policy.toml")
    town_hall = f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/TownHall2026"
    host = user("host", name="Hana")
    assert decide(p, host, ask(town_hall)).capabilities == {PUBLISH, SUBSCRIBE}
    assert decide(p, host).attributes == {"displayName": "Hana", "badge": "host"}
    assert decide(p, host).duration_minutes == 240
    assert decide(p, user("publisher"), ask(town_hall)).capabilities == {SUBSCRIBE}
    assert decide(p, user("publisher")).capabilities == {PUBLISH, SUBSCRIBE}
    with pytest.raises(PermissionDenied):
        decide(p, user("banned", "admin"))
    with pytest.raises(PermissionDenied):
        decide(p, user(), ask(attributes={"pronouns": "they/them"}))
