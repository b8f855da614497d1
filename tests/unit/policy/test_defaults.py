"""The built-in policy (no policy file), and the request checks every policy applies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from token_service.domain import AppUser, Capability, TokenRequest
from token_service.errors import InvalidRequest, PermissionDenied
from token_service.policy import (
    ATTRIBUTES_MAX_BYTES,
    IVS_USER_ID_LIMIT,
    Policy,
    default_policy,
    load_policy,
)

STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
PUBLISH = Capability.PUBLISH
SUBSCRIBE = Capability.SUBSCRIBE


def user(user_id: str = "alice", *roles: str) -> AppUser:
    return AppUser(user_id=user_id, roles=frozenset(roles), issuer=None)


def ask(**fields: Any) -> TokenRequest:
    return TokenRequest(stage_arn=STAGE, **fields)


@pytest.fixture
def policy() -> Policy:
    return default_policy()


def test_load_policy_without_a_file_is_the_default_policy() -> None:
    assert load_policy(None) == default_policy()


def test_user_without_roles_gets_subscribe_only(policy: Policy) -> None:
    assert policy.decide(user(), ask()).capabilities == {SUBSCRIBE}


def test_publisher_gets_publish_and_subscribe(policy: Policy) -> None:
    assert policy.decide(user("bob", "publisher"), ask()).capabilities == {PUBLISH, SUBSCRIBE}


def test_publisher_may_ask_for_subscribe_only(policy: Policy) -> None:
    grant = policy.decide(user("bob", "publisher"), ask(capabilities=frozenset({SUBSCRIBE})))
    assert grant.capabilities == {SUBSCRIBE}


def test_asking_publish_without_the_role_is_refused_naming_the_rule(policy: Policy) -> None:
    with pytest.raises(PermissionDenied) as refused:
        policy.decide(user(), ask(capabilities=frozenset({PUBLISH, SUBSCRIBE})))
    assert refused.value.rule == "default: PUBLISH requires role publisher"
    assert "PUBLISH" in refused.value.detail


def test_capabilities_given_as_plain_strings_are_accepted(policy: Policy) -> None:
    grant = policy.decide(user(), ask(capabilities=frozenset({"SUBSCRIBE"})))
    assert grant.capabilities == {SUBSCRIBE}


def test_grant_carries_the_stage_and_the_app_user_id(policy: Policy) -> None:
    grant = policy.decide(user("alice"), ask())
    assert (grant.stage_arn, grant.token_user_id) == (STAGE, "alice")


def test_omitted_duration_gets_the_default_of_60_minutes(policy: Policy) -> None:
    assert policy.decide(user(), ask()).duration_minutes == 60


def test_shorter_duration_than_the_maximum_is_granted(policy: Policy) -> None:
    assert policy.decide(user(), ask(duration_minutes=5)).duration_minutes == 5


def test_duration_of_exactly_the_maximum_is_granted(policy: Policy) -> None:
    assert policy.decide(user(), ask(duration_minutes=720)).duration_minutes == 720


def test_duration_over_the_maximum_is_refused_naming_the_bound(policy: Policy) -> None:
    with pytest.raises(PermissionDenied) as refused:
        policy.decide(user(), ask(duration_minutes=721))
    assert "720" in refused.value.detail
    assert refused.value.rule is not None


@pytest.mark.parametrize("duration", [0, -5, 20161, True, 60.0, "60"])
def test_duration_outside_what_ivs_accepts_is_an_invalid_request(
    policy: Policy, duration: object
) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        policy.decide(user(), ask(duration_minutes=duration))
    assert [e.field for e in invalid.value.errors] == ["durationMinutes"]


def test_max_duration_of_the_default_policy_is_720(policy: Policy) -> None:
    assert policy.max_duration_minutes == 720


def test_any_attribute_keys_may_be_set_by_default(policy: Policy) -> None:
    attributes = {"displayName": "Sam", "seat": "12B", "anything": ""}
    assert policy.decide(user(), ask(attributes=attributes)).attributes == attributes


def test_attributes_of_1023_utf8_bytes_are_granted(policy: Policy) -> None:
    attributes = {"k": "x" * (ATTRIBUTES_MAX_BYTES - 1)}
    assert policy.decide(user(), ask(attributes=attributes)).attributes == attributes


def test_attributes_of_1024_bytes_are_refused_as_invalid(policy: Policy) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        policy.decide(user(), ask(attributes={"k": "x" * 1023}))
    assert [e.field for e in invalid.value.errors] == ["attributes"]


def test_attribute_size_counts_utf8_bytes_not_characters(policy: Policy) -> None:
    # 600 characters, but "é" is 2 bytes in UTF-8: 1 + 1200 bytes, over the limit.
    attributes = {"n": "é" * 600}
    assert sum(len(k) + len(v) for k, v in attributes.items()) < 1024
    with pytest.raises(InvalidRequest) as invalid:
        policy.decide(user(), ask(attributes=attributes))
    assert "1201 bytes" in invalid.value.errors[0].message


def test_attribute_size_counts_keys_as_well_as_values(policy: Policy) -> None:
    with pytest.raises(InvalidRequest):
        policy.decide(user(), ask(attributes={"κ" * 300: "v" * 500}))


def test_non_string_attribute_value_is_an_invalid_request(policy: Policy) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        policy.decide(user(), ask(attributes={"seat": 12}))
    assert [e.field for e in invalid.value.errors] == ["attributes.seat"]


def test_attribute_with_a_lone_surrogate_is_an_invalid_request(policy: Policy) -> None:
    # JSON can carry "\ud800"; it has no UTF-8 form and must not crash the size count.
    with pytest.raises(InvalidRequest):
        policy.decide(user(), ask(attributes={"name": "\ud800"}))


def test_empty_capability_list_is_an_invalid_request(policy: Policy) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        policy.decide(user(), ask(capabilities=frozenset()))
    assert [e.field for e in invalid.value.errors] == ["capabilities"]


def test_unknown_capability_is_an_invalid_request(policy: Policy) -> None:
    with pytest.raises(InvalidRequest):
        policy.decide(user(), ask(capabilities=frozenset({"ADMIN"})))


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "arn:aws:ivs:us-east-1:123456789012:channel/AbCdEf123456",
        "arn:aws:ivs:us-east-1:123456789012:stage/",
        "arn:aws:ivs:us-east-1:123456789012:stage/a_b",
        STAGE + "\n",
    ],
)
def test_malformed_stage_arn_is_an_invalid_request(policy: Policy, arn: str) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        policy.decide(user(), TokenRequest(stage_arn=arn))
    assert [e.field for e in invalid.value.errors] == ["stageArn"]


def test_user_id_of_128_characters_goes_into_the_token_unchanged(policy: Policy) -> None:
    assert policy.decide(user("u" * 128), ask()).token_user_id == "u" * 128


def test_user_id_over_128_characters_is_refused_in_app_mode(policy: Policy) -> None:
    with pytest.raises(PermissionDenied) as refused:
        policy.decide(user("u" * 129), ask())
    assert refused.value.rule == IVS_USER_ID_LIMIT
    assert "128" in refused.value.detail


def test_malformed_request_is_reported_before_a_policy_refusal(policy: Policy) -> None:
    with pytest.raises(InvalidRequest):
        policy.decide(user(), ask(capabilities=frozenset({PUBLISH}), duration_minutes=0))


def test_decide_leaves_the_request_attributes_untouched(policy: Policy) -> None:
    attributes = {"displayName": "Sam"}
    grant = policy.decide(user(), ask(attributes=attributes))
    assert grant.attributes is not attributes
    assert attributes == {"displayName": "Sam"}


def test_default_policy_is_the_policy_file_docs_policy_md_shows(tmp_path: Path) -> None:
    path = tmp_path / "builtin.toml"
    path.write_text(
        '[[rules]]\nname = "default: role publisher"\nroles = ["publisher"]\n'
        'capabilities = ["PUBLISH", "SUBSCRIBE"]\n\n'
        '[[rules]]\nname = "default: PUBLISH requires role publisher"\n'
        'capabilities = ["SUBSCRIBE"]\n'
    )
    assert load_policy(path).rules == default_policy().rules
