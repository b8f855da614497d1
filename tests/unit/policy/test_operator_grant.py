"""`Policy.operator_grant`: an operator's token (`token-service participant-token`) is
checked as an app user's request is, within the policy's lifetimes, whatever the rules."""

from __future__ import annotations

from typing import Any

import pytest

from token_service.domain import AppUser, Capability, TokenRequest
from token_service.errors import InvalidRequest, PermissionDenied
from token_service.policy import Policy, default_policy, policy_from_mapping, pseudonymize

STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
OPS = AppUser(user_id="ops-test", roles=frozenset(), issuer=None)
SECRET = b"p" * 32


def ask(**fields: Any) -> TokenRequest:
    return TokenRequest(stage_arn=STAGE, **fields)


def only_hosts(**duration: int) -> Policy:
    return policy_from_mapping(
        {"rules": [{"name": "hosts", "capabilities": ["PUBLISH"], "roles": ["host"], **duration}]}
    )


def test_without_capabilities_it_grants_publish_and_subscribe() -> None:
    grant = default_policy().operator_grant(OPS, ask())
    assert grant.capabilities == frozenset(Capability)


def test_the_rules_roles_do_not_decide_an_operators_token() -> None:
    grant = only_hosts().operator_grant(OPS, ask(capabilities=frozenset({Capability.SUBSCRIBE})))
    assert grant.capabilities == frozenset({Capability.SUBSCRIBE})


def test_without_a_duration_it_lasts_an_hour() -> None:
    assert default_policy().operator_grant(OPS, ask()).duration_minutes == 60


def test_without_a_duration_it_lasts_no_longer_than_any_rule_grants() -> None:
    p = only_hosts(duration={"max": 15})
    assert p.operator_grant(OPS, ask()).duration_minutes == 15


def test_a_duration_beyond_the_longest_any_rule_grants_is_refused() -> None:
    with pytest.raises(PermissionDenied, match="durationMinutes 721 exceeds the maximum of 720"):
        default_policy().operator_grant(OPS, ask(duration_minutes=721))


def test_a_duration_outside_what_ivs_allows_reads_as_for_a_request() -> None:
    with pytest.raises(InvalidRequest) as refused:
        default_policy().operator_grant(OPS, ask(duration_minutes=20161))
    assert refused.value.errors[0].field == "durationMinutes"
    assert "between 1 and 20160" in refused.value.errors[0].message


def test_attributes_over_the_ivs_size_are_refused_as_for_a_request() -> None:
    with pytest.raises(InvalidRequest, match="attributes too large") as refused:
        default_policy().operator_grant(OPS, ask(attributes={"note": "x" * 1100}))
    assert "IVS allows at most 1023" in refused.value.errors[0].message


def test_the_token_user_id_is_the_pseudonym_in_pseudonym_mode() -> None:
    p = policy_from_mapping(
        {"rules": [{"name": "all", "capabilities": ["SUBSCRIBE"]}]},
        user_id_mode="pseudonym",
        pseudonym_secret=SECRET,
    )
    assert p.operator_grant(OPS, ask()).token_user_id == pseudonymize("ops-test", SECRET)
