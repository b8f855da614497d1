"""The wire protocol: SigV4 scope, regions, routing, bodies, and operations not emulated."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from ivs_realtime_emulator import service
from ivs_realtime_emulator.operations import handlers
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.server import EmulatorServer

from tests.helpers import signed_request


def test_health_answers_ok(http: httpx.Client) -> None:
    response = http.get("/_emulator/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_boto3_call_succeeds_with_any_access_key(ivs_client) -> None:
    response = ivs_client.list_stages()

    assert response["stages"] == []
    assert response["ResponseMetadata"]["RequestId"]


def test_request_without_authorization_is_missing_authentication_token(http: httpx.Client) -> None:
    response = http.post("/ListStages", json={})

    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert response.json()["message"] == "Missing Authentication Token"


def test_authorization_that_is_not_sigv4_is_incomplete_signature(http: httpx.Client) -> None:
    response = http.post("/ListStages", json={}, headers={"Authorization": "Bearer abc"})

    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"


def test_sigv4_without_signature_is_incomplete_signature(http: httpx.Client) -> None:
    header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ivs/aws4_request"
    response = http.post(
        "/ListStages", json={}, headers={"Authorization": header, "X-Amz-Date": "20260101T000000Z"}
    )

    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"


def test_credential_scoped_to_another_service_is_refused(emulator) -> None:
    response = signed_request(emulator.url, "POST", "/ListStages", {}, service="s3")

    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert "'ivs'" in response.json()["message"]


def test_missing_authentication_reaches_boto3_as_client_error(
    emulator, emulator_boto3_session
) -> None:
    client = emulator_boto3_session.client(
        "ivs-realtime", endpoint_url=emulator.url, config=Config(signature_version=UNSIGNED)
    )

    with pytest.raises(ClientError) as raised:
        client.list_stages()

    assert raised.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"


def test_state_is_separate_per_region(make_client) -> None:
    east, west = make_client("us-east-1"), make_client("us-west-2")
    created = east.create_stage(name="east")["stage"]

    assert ":us-east-1:" in created["arn"]
    assert west.list_stages()["stages"] == []
    with pytest.raises(west.exceptions.ResourceNotFoundException):
        west.get_stage(arn=created["arn"])


@pytest.fixture
def emulator_without_list_compositions(monkeypatch) -> Iterator[EmulatorServer]:
    """An emulator whose handler table lacks ListCompositions, as when botocore's model
    gains an operation the emulator does not know yet."""
    table = {name: h for name, h in handlers().items() if name != "ListCompositions"}
    monkeypatch.setattr(service, "handlers", lambda: table)
    with EmulatorServer(options=EmulatorOptions(quotas_enabled=False)) as server:
        yield server


def test_operation_not_emulated_names_itself(
    emulator_without_list_compositions, emulator_boto3_session
) -> None:
    client = emulator_boto3_session.client(
        "ivs-realtime",
        endpoint_url=emulator_without_list_compositions.url,
        config=Config(retries={"total_max_attempts": 1}),
    )

    with pytest.raises(ClientError) as raised:
        client.list_compositions()

    error = raised.value.response["Error"]
    assert error["Code"] == "NotImplementedException"
    assert "ListCompositions" in error["Message"]
    assert "not emulate" in error["Message"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_unknown_path_is_unknown_operation(emulator) -> None:
    response = signed_request(emulator.url, "POST", "/NoSuchOperation", {})

    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"


def test_wrong_method_for_an_operation_is_unknown_operation(emulator) -> None:
    response = signed_request(emulator.url, "GET", "/ListStages")

    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"


def test_body_that_is_not_json_is_a_serialization_exception(emulator) -> None:
    response = signed_request(emulator.url, "POST", "/CreateStage", b"{not json")

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "SerializationException"


def test_body_that_is_not_an_object_is_a_serialization_exception(emulator) -> None:
    response = signed_request(emulator.url, "POST", "/CreateStage", b"[1, 2]")

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "SerializationException"


def test_invalid_utf8_body_is_a_serialization_exception(emulator) -> None:
    response = signed_request(emulator.url, "POST", "/CreateStage", b'{"name": "\xff\xfe"}')

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "SerializationException"


def test_deeply_nested_body_is_a_serialization_exception(emulator) -> None:
    response = signed_request(emulator.url, "POST", "/CreateStage", b"[" * 100_000 + b"]" * 100_000)

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "SerializationException"


def test_empty_body_counts_as_empty_input(emulator) -> None:
    response = signed_request(emulator.url, "POST", "/ListStages", b"")

    assert response.status_code == 200
    assert response.json() == {"stages": []}


def test_unknown_emulator_route_method_answers_in_emulator_form(http: httpx.Client) -> None:
    response = http.post("/_emulator/health")

    assert response.status_code == 405
    assert response.json()["reason"] == "method_not_allowed"
