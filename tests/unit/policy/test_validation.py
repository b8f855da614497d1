"""Loading a policy: every problem found, located, and reported in one error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from token_service.errors import ConfigurationError
from token_service.policy import PolicyError, load_policy, policy_from_mapping

STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
GOOD_RULE: dict[str, Any] = {"name": "viewers", "capabilities": ["SUBSCRIBE"]}
BOTH: dict[str, Any] = {"capabilities": ["PUBLISH", "SUBSCRIBE"]}


def problems(data: object) -> dict[str, str]:
    """Location -> message of every problem in `data`."""
    with pytest.raises(PolicyError) as error:
        policy_from_mapping(data)
    return {issue.location: issue.message for issue in error.value.issues}


def rule_problems(**fields: Any) -> dict[str, str]:
    return problems({"rules": [{**GOOD_RULE, **fields}]})


def test_every_problem_is_reported_at_once_with_its_location() -> None:
    found = problems(
        {
            "version": 2,
            "defaults": {"duration": {"max": 20161}, "colour": "red"},
            "rules": [
                {
                    "name": "hosts",
                    "roles": ["host", "host"],
                    "stages": ["arn:aws:ivs:us-east-1:*"],
                    "capabilities": ["PUBLISH", "ADMIN"],
                    "duration": {"default": 0, "max": "long"},
                    "attributes": {"client_keys": "displayName", "server": {"x": 1}},
                    "rate_limits": {"user": "ten per minute"},
                },
                {"capabilities": ["SUBSCRIBE"]},
                "not a table",
            ],
        }
    )
    assert set(found) == {
        "version",
        "defaults.duration.max",
        "defaults.colour",
        "rules[0].roles[1]",
        "rules[0].stages[0]",
        "rules[0].capabilities[1]",
        "rules[0].duration.default",
        "rules[0].duration.max",
        "rules[0].attributes.client_keys",
        "rules[0].attributes.server.x",
        "rules[0].rate_limits.user",
        "rules[1].name",
        "rules[2]",
    }


def test_policy_error_is_a_configuration_error_listing_file_and_location(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[[rules]]\nname = "r"\ncapabilities = ["SUBSCRIBE"]\nduration = {max = 0}\n')
    with pytest.raises(ConfigurationError) as error:
        load_policy(path)
    assert error.value.problems == (
        f"{path}: rules[0].duration.max: 0 is out of range 1..20160 (rule 'r')",
    )


def test_problems_with_the_arguments_and_the_file_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("rules: []\n")
    with pytest.raises(PolicyError) as error:
        load_policy(path, user_id_mode="pseudonym", pseudonym_secret=b"short")
    assert [i.location for i in error.value.issues] == ["pseudonym_secret", "rules"]


def test_unknown_top_level_key_is_reported() -> None:
    assert "rule" in problems({"rules": [GOOD_RULE], "rule": []})


def test_unknown_key_suggests_the_closest_known_one() -> None:
    assert "'capabilities'" in rule_problems(capabilites=["SUBSCRIBE"])["rules[0].capabilites"]


def test_unknown_key_in_a_nested_table_is_reported() -> None:
    assert "rules[0].duration.maximum" in rule_problems(duration={"maximum": 5})


def test_missing_rules_are_reported() -> None:
    assert "rules" in problems({"defaults": {}})


def test_empty_rules_are_reported() -> None:
    assert "rules" in problems({"rules": []})


def test_missing_name_and_capabilities_are_reported() -> None:
    assert set(problems({"rules": [{}]})) == {"rules[0].name", "rules[0].capabilities"}


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"name": 5}, "rules[0].name"),
        ({"name": " "}, "rules[0].name"),
        ({"roles": "host"}, "rules[0].roles"),
        ({"roles": [1]}, "rules[0].roles[0]"),
        ({"stages": STAGE}, "rules[0].stages"),
        ({"capabilities": "SUBSCRIBE"}, "rules[0].capabilities"),
        ({"duration": 60}, "rules[0].duration"),
        ({"duration": {"max": 60.5}}, "rules[0].duration.max"),
        ({"duration": {"max": True}}, "rules[0].duration.max"),
        ({"attributes": []}, "rules[0].attributes"),
        ({"attributes": {"max_value_length": "5"}}, "rules[0].attributes.max_value_length"),
        ({"attributes": {"server": ["a"]}}, "rules[0].attributes.server"),
        ({"rate_limits": {"user": 10}}, "rules[0].rate_limits.user"),
    ],
)
def test_wrong_type_is_reported_at_its_location(fields: dict[str, Any], location: str) -> None:
    assert location in rule_problems(**fields)


def test_empty_roles_list_is_reported() -> None:
    assert "omit it" in rule_problems(roles=[])["rules[0].roles"]


def test_empty_stages_list_is_reported() -> None:
    assert "omit it" in rule_problems(stages=[])["rules[0].stages"]


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "arn:aws:ivs:us-east-1:*",
        "stage/AbCdEf123456",
        "arn:aws:ivs:us-east-1:123456789012:channel/*",
        "arn:aws:s3:us-east-1:123456789012:stage/*",
        "arn:aws:ivs:us-east-1:12345678901a:stage/*",
        "arn:aws:ivs:US-EAST-1:123456789012:stage/*",
        "arn:aws:ivs:us-east-1:123456789012:stage/[abc",
        "arn:aws:ivs:us-east-1:123456789012:stage/[]x",
        "arn:aws:ivs:us-east-1:123456789012:stage/[z-a]",
        "arn:aws:ivs:us-east-1:123456789012:stage/a_b",
        "arn:aws:ivs:us-east-1:123456789012:stage/",
        "arn:aws:ivs::123456789012:stage/*",
    ],
)
def test_bad_stage_glob_is_reported(pattern: str) -> None:
    assert "rules[0].stages[0]" in rule_problems(stages=[pattern])


def test_duplicate_stage_pattern_is_reported() -> None:
    assert "rules[0].stages[1]" in rule_problems(stages=[STAGE, STAGE])


def test_capability_outside_publish_and_subscribe_is_reported() -> None:
    assert "rules[0].capabilities[0]" in rule_problems(capabilities=["publish"])


def test_duplicate_capability_is_reported() -> None:
    assert "rules[0].capabilities[1]" in rule_problems(capabilities=["PUBLISH", "PUBLISH"])


@pytest.mark.parametrize("key", ["default", "min", "max"])
@pytest.mark.parametrize("minutes", [0, 20161])
def test_duration_outside_1_to_20160_is_reported(key: str, minutes: int) -> None:
    found = rule_problems(duration={key: minutes})
    assert "out of range 1..20160" in found[f"rules[0].duration.{key}"]


def test_duration_of_20160_minutes_is_accepted() -> None:
    p = policy_from_mapping({"rules": [{**GOOD_RULE, "duration": {"max": 20160}}]})
    assert p.max_duration_minutes == 20160


def test_default_duration_above_max_is_reported() -> None:
    found = rule_problems(duration={"default": 100, "max": 50})
    assert found == {"rules[0].duration.default": "100 is above max 50 (rule 'viewers')"}


def test_default_duration_above_an_inherited_max_is_reported() -> None:
    found = rule_problems(duration={"default": 800})
    assert "above max 720 (from defaults)" in found["rules[0].duration.default"]


def test_default_duration_below_min_is_reported() -> None:
    assert "rules[0].duration.default" in rule_problems(duration={"default": 5, "min": 10})


def test_min_duration_above_max_is_reported() -> None:
    assert "rules[0].duration.min" in rule_problems(duration={"min": 100, "max": 50})


def test_defaults_problems_are_located_in_defaults() -> None:
    found = problems({"defaults": {"duration": {"min": 1000}}, "rules": [GOOD_RULE]})
    assert found == {"defaults.duration.min": "min 1000 is above max 720 (from built-in)"}


def test_duplicate_rule_names_are_reported() -> None:
    found = problems({"rules": [{**GOOD_RULE, "roles": ["a"]}, GOOD_RULE]})
    assert found == {"rules[1].name": "duplicate name 'viewers' (also rules[0])"}


def test_rule_duplicating_an_earlier_rules_conditions_is_reported() -> None:
    found = problems(
        {
            "rules": [
                {"name": "a", "roles": ["host"], "stages": [STAGE], "capabilities": ["PUBLISH"]},
                {"name": "b", "roles": ["host"], "stages": [STAGE], "capabilities": []},
            ]
        }
    )
    assert "duplicates the conditions of rules[0]" in found["rules[1]"]


def test_rule_after_a_catch_all_rule_is_reported_as_unreachable() -> None:
    found = problems({"rules": [GOOD_RULE, {"name": "hosts", "roles": ["host"], **BOTH}]})
    assert found["rules[1]"].startswith("can never match: rules[0] ('viewers') comes first")


def test_rule_whose_roles_an_earlier_rule_covers_on_the_same_stage_is_reported() -> None:
    found = problems(
        {
            "rules": [
                {"name": "staff", "roles": ["host", "mod"], **BOTH},
                {"name": "mods", "roles": ["mod"], "stages": [STAGE], **BOTH},
            ]
        }
    )
    assert "rules[1]" in found


def test_exact_stage_after_a_glob_covering_it_is_reported_as_unreachable() -> None:
    glob = "arn:aws:ivs:us-east-1:123456789012:stage/*"
    found = problems(
        {
            "rules": [
                {"name": "all", "stages": [glob], **BOTH},
                {"name": "one", "stages": [STAGE], **BOTH},
            ]
        }
    )
    assert "rules[1]" in found


def test_specific_rule_before_a_general_one_is_accepted() -> None:
    p = policy_from_mapping(
        {"rules": [{"name": "one", "stages": [STAGE], **BOTH}, {"name": "all", **BOTH}]}
    )
    assert [r.name for r in p.rules] == ["one", "all"]


def test_client_keys_as_a_plain_string_other_than_star_is_reported() -> None:
    assert "rules[0].attributes.client_keys" in rule_problems(attributes={"client_keys": "a"})


def test_star_inside_a_client_keys_list_is_reported() -> None:
    assert "rules[0].attributes.client_keys" in rule_problems(attributes={"client_keys": ["*"]})


def test_key_both_client_settable_and_server_set_is_reported() -> None:
    found = rule_problems(attributes={"client_keys": ["n"], "server": {"n": "claim:name"}})
    assert "rules[0].attributes.server.n" in found


def test_conflict_inherited_from_defaults_is_reported_once_in_defaults() -> None:
    attributes = {"client_keys": ["n"], "server": {"n": "claim:name"}}
    found = problems({"defaults": {"attributes": attributes}, "rules": [GOOD_RULE]})
    assert list(found) == ["defaults.attributes.server.n"]


def test_rule_listing_a_defaults_server_key_as_client_settable_is_reported() -> None:
    found = problems(
        {
            "defaults": {"attributes": {"server": {"n": "claim:name"}}},
            "rules": [{**GOOD_RULE, "attributes": {"client_keys": ["n"]}}],
        }
    )
    assert "rules[0].attributes.client_keys" in found


def test_claim_reference_without_a_claim_name_is_reported() -> None:
    assert "rules[0].attributes.server.n" in rule_problems(attributes={"server": {"n": "claim:"}})


def test_empty_server_attribute_key_is_reported() -> None:
    assert "rules[0].attributes.server." in rule_problems(attributes={"server": {"": "x"}})


def test_constant_server_attributes_over_1kb_are_reported() -> None:
    found = rule_problems(attributes={"server": {"a": "x" * 600, "b": "y" * 600}})
    assert "rules[0].attributes.server" in found


@pytest.mark.parametrize("length", [0, 1024])
def test_max_value_length_out_of_range_is_reported(length: int) -> None:
    found = rule_problems(attributes={"max_value_length": length})
    assert "rules[0].attributes.max_value_length" in found


@pytest.mark.parametrize(
    ("value", "location"),
    [
        ("10/fortnight", "rules[0].rate_limits.user"),
        ("0/minute", "rules[0].rate_limits.user"),
        ({"burst": 5}, "rules[0].rate_limits.user.rate"),
        ({"rate": "1/second", "burst": 0}, "rules[0].rate_limits.user.burst"),
        ({"rate": "1/second", "size": 3}, "rules[0].rate_limits.user.size"),
    ],
)
def test_bad_rate_limit_is_reported(value: object, location: str) -> None:
    assert location in rule_problems(rate_limits={"user": value})


def test_unknown_rate_limit_kind_is_reported() -> None:
    assert "rules[0].rate_limits.tenant" in rule_problems(rate_limits={"tenant": "1/second"})


def test_version_other_than_1_is_reported() -> None:
    assert "version" in problems({"version": True, "rules": [GOOD_RULE]})


def test_top_level_that_is_not_a_table_is_reported() -> None:
    assert "<top level>" in problems(["rules"])


# --- files -------------------------------------------------------------------------------


def file_problems(tmp_path: Path, name: str, text: str) -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    return [f"{issue.location}: {issue.message}" for issue in error.value.issues]


def test_toml_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    (found,) = file_problems(tmp_path, "p.toml", "[[rules]]\nname = \n")
    assert found.startswith("<file>: invalid TOML")
    assert "line 2" in found


def test_toml_duplicate_key_is_reported(tmp_path: Path) -> None:
    (found,) = file_problems(tmp_path, "p.toml", 'version = 1\nversion = 1\n[[rules]]\nname="r"\n')
    assert "invalid TOML" in found


def test_yaml_syntax_error_is_reported(tmp_path: Path) -> None:
    (found,) = file_problems(tmp_path, "p.yaml", "rules: [\n")
    assert found.startswith("<file>: invalid YAML")


def test_yaml_duplicate_key_is_reported_instead_of_silently_kept(tmp_path: Path) -> None:
    text = "rules:\n  - name: r\n    capabilities: [SUBSCRIBE]\n    capabilities: [PUBLISH]\n"
    (found,) = file_problems(tmp_path, "p.yaml", text)
    assert "duplicate key 'capabilities'" in found


def test_yaml_non_string_value_is_a_type_error_not_coerced(tmp_path: Path) -> None:
    text = (
        "rules:\n  - name: r\n    capabilities: [SUBSCRIBE]\n    attributes: {server: {on: yes}}\n"
    )
    assert file_problems(tmp_path, "p.yaml", text) == [
        "rules[0].attributes.server: keys must be strings, got a boolean True (rule 'r')"
    ]


def test_empty_yaml_file_reports_the_missing_rules(tmp_path: Path) -> None:
    assert file_problems(tmp_path, "p.yml", "") == ["rules: required: a list of at least one rule"]


def test_unknown_file_extension_is_reported(tmp_path: Path) -> None:
    (found,) = file_problems(tmp_path, "p.json", "{}")
    assert "unknown file type '.json'" in found


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the file"):
        load_policy(tmp_path / "absent.toml")
