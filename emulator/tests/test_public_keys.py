"""Public keys: ImportPublicKey, GetPublicKey, ListPublicKeys, DeletePublicKey."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.helpers import new_p384_key, public_pem

KEY_ARN = re.compile(r"arn:aws:ivs:us-east-1:123456789012:public-key/[A-Za-z0-9]{12}")


def _pem_of(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_import_returns_arn_name_and_fingerprint(ivs_client) -> None:
    key = ivs_client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()), name="k-1")[
        "publicKey"
    ]

    assert KEY_ARN.fullmatch(key["arn"])
    assert key["name"] == "k-1"
    assert re.fullmatch(r"([0-9a-f]{2}:){31}[0-9a-f]{2}", key["fingerprint"])


def test_import_keeps_tags(ivs_client) -> None:
    key = ivs_client.import_public_key(
        publicKeyMaterial=public_pem(new_p384_key()), tags={"slot": "active"}
    )["publicKey"]

    assert key["tags"] == {"slot": "active"}


def test_get_public_key_returns_its_material(ivs_client) -> None:
    pem = public_pem(new_p384_key())
    arn = ivs_client.import_public_key(publicKeyMaterial=pem)["publicKey"]["arn"]

    key = ivs_client.get_public_key(arn=arn)["publicKey"]

    assert key["publicKeyMaterial"] == pem
    assert key["arn"] == arn


def test_get_unknown_public_key_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_public_key(arn="arn:aws:ivs:us-east-1:123456789012:public-key/NoSuchKey123")


def test_list_public_keys_lists_summaries(ivs_client) -> None:
    arns = [
        ivs_client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()), name=n)[
            "publicKey"
        ]["arn"]
        for n in ("a", "b")
    ]

    keys = ivs_client.list_public_keys()["publicKeys"]

    assert [(k["arn"], k["name"]) for k in keys] == [(arns[0], "a"), (arns[1], "b")]
    assert all("publicKeyMaterial" not in k for k in keys)


def test_list_public_keys_pages(ivs_client) -> None:
    for _ in range(3):
        ivs_client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()))

    first = ivs_client.list_public_keys(maxResults=2)
    second = ivs_client.list_public_keys(maxResults=2, nextToken=first["nextToken"])

    assert len(first["publicKeys"]) == 2
    assert len(second["publicKeys"]) == 1
    assert "nextToken" not in second


def test_delete_public_key_removes_it(ivs_client) -> None:
    arn = ivs_client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()))["publicKey"][
        "arn"
    ]

    ivs_client.delete_public_key(arn=arn)

    assert ivs_client.list_public_keys()["publicKeys"] == []
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_public_key(arn=arn)


def test_delete_unknown_public_key_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.delete_public_key(
            arn="arn:aws:ivs:us-east-1:123456789012:public-key/NoSuchKey123"
        )


def test_fourth_key_in_a_region_exceeds_the_quota(ivs_client) -> None:
    for _ in range(3):
        ivs_client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()))

    with pytest.raises(ivs_client.exceptions.ServiceQuotaExceededException) as raised:
        ivs_client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()))

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 402


def test_deleting_a_key_frees_a_slot(ivs_client) -> None:
    arns = [
        ivs_client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()))["publicKey"][
            "arn"
        ]
        for _ in range(3)
    ]

    ivs_client.delete_public_key(arn=arns[0])

    ivs_client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()))
    assert len(ivs_client.list_public_keys()["publicKeys"]) == 3


def test_key_quota_is_per_region(make_client) -> None:
    east, west = make_client("us-east-1"), make_client("us-west-2")
    for _ in range(3):
        east.import_public_key(publicKeyMaterial=public_pem(new_p384_key()))

    imported = west.import_public_key(publicKeyMaterial=public_pem(new_p384_key()))

    assert ":us-west-2:" in imported["publicKey"]["arn"]


def test_importing_the_same_key_twice_conflicts(ivs_client) -> None:
    pem = public_pem(new_p384_key())
    ivs_client.import_public_key(publicKeyMaterial=pem)

    with pytest.raises(ivs_client.exceptions.ConflictException) as raised:
        ivs_client.import_public_key(publicKeyMaterial=pem.replace("\n", "\r\n"))

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_p256_key_is_rejected(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException) as raised:
        ivs_client.import_public_key(
            publicKeyMaterial=_pem_of(ec.generate_private_key(ec.SECP256R1()))
        )

    assert "P-384" in raised.value.response["Error"]["Message"]


def test_rsa_key_is_rejected(ivs_client) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(ivs_client.exceptions.ValidationException):
        ivs_client.import_public_key(publicKeyMaterial=_pem_of(key))


def test_material_that_is_not_a_pem_public_key_is_rejected(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException) as raised:
        ivs_client.import_public_key(publicKeyMaterial="not a key")

    assert "publicKeyMaterial" in raised.value.response["Error"]["Message"]


def test_pem_with_garbage_inside_is_rejected(ivs_client) -> None:
    material = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"

    with pytest.raises(ivs_client.exceptions.ValidationException) as raised:
        ivs_client.import_public_key(publicKeyMaterial=material)

    assert "not a valid PEM public key" in raised.value.response["Error"]["Message"]


def test_invalid_key_name_is_rejected(loose_client) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException):
        loose_client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()), name="a b")


def test_list_public_keys_paginator_walks_every_page(ivs_client) -> None:
    arns = {
        ivs_client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()))["publicKey"][
            "arn"
        ]
        for _ in range(3)
    }

    pages = ivs_client.get_paginator("list_public_keys").paginate(PaginationConfig={"PageSize": 1})

    assert {k["arn"] for page in pages for k in page["publicKeys"]} == arns
