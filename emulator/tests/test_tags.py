"""Tags on stages and public keys, addressed by their real ARNs."""

from __future__ import annotations

import pytest

from tests.helpers import new_p384_key, public_pem


def test_tags_given_at_creation_are_listed(ivs_client) -> None:
    arn = ivs_client.create_stage(tags={"team": "a"})["stage"]["arn"]

    assert ivs_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "a"}


def test_tag_resource_adds_tags_to_a_stage(ivs_client, stage) -> None:
    ivs_client.tag_resource(resourceArn=stage["arn"], tags={"env": "dev", "team": "b"})

    assert ivs_client.list_tags_for_resource(resourceArn=stage["arn"])["tags"] == {
        "env": "dev",
        "team": "b",
    }
    assert ivs_client.get_stage(arn=stage["arn"])["stage"]["tags"] == {"env": "dev", "team": "b"}


def test_tag_resource_tags_a_public_key(ivs_client) -> None:
    arn = ivs_client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()))["publicKey"][
        "arn"
    ]

    ivs_client.tag_resource(resourceArn=arn, tags={"slot": "next"})

    assert ivs_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"slot": "next"}


def test_tag_resource_overwrites_existing_values(ivs_client) -> None:
    arn = ivs_client.create_stage(tags={"env": "dev"})["stage"]["arn"]

    ivs_client.tag_resource(resourceArn=arn, tags={"env": "prod"})

    assert ivs_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "prod"}


def test_untag_resource_removes_keys(ivs_client) -> None:
    arn = ivs_client.create_stage(tags={"a": "1", "b c": "2", "d": "3"})["stage"]["arn"]

    ivs_client.untag_resource(resourceArn=arn, tagKeys=["a", "b c", "absent"])

    assert ivs_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"d": "3"}


def test_more_than_50_tags_on_a_resource_are_rejected(ivs_client) -> None:
    arn = ivs_client.create_stage(tags={f"k{i}": "v" for i in range(50)})["stage"]["arn"]

    with pytest.raises(ivs_client.exceptions.ValidationException):
        ivs_client.tag_resource(resourceArn=arn, tags={"one-more": "v"})

    assert len(ivs_client.list_tags_for_resource(resourceArn=arn)["tags"]) == 50


def test_reserved_aws_prefix_is_rejected(ivs_client, stage) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException):
        ivs_client.tag_resource(resourceArn=stage["arn"], tags={"aws:owner": "me"})


def test_tagging_an_unknown_resource_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.tag_resource(
            resourceArn="arn:aws:ivs:us-east-1:123456789012:stage/NoSuchStage1", tags={"a": "b"}
        )


def test_listing_tags_of_a_resource_of_another_region_is_not_found(make_client) -> None:
    arn = make_client("us-east-1").create_stage()["stage"]["arn"]

    with pytest.raises(make_client().exceptions.ResourceNotFoundException):
        make_client("eu-west-1").list_tags_for_resource(resourceArn=arn)


def test_resource_arn_that_is_no_arn_is_rejected(loose_client) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException):
        loose_client.list_tags_for_resource(resourceArn="not-an-arn")
