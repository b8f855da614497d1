"""Coverage: every operation of botocore's ivs-realtime model is emulated, documented and answers.

- every operation of the model has a handler;
- the README's coverage table has exactly one row per operation;
- a smoke test per operation: a minimal valid boto3 call answers 2xx, and its parsed
  output matches the model's output shape (every required member present, at every
  level, and every value of its member's type).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from botocore.model import Shape
from ivs_realtime_emulator import operations

from tests.helpers import join, new_p384_key, public_pem, self_signed

README = Path(__file__).resolve().parents[1] / "README.md"
MODEL = botocore.session.get_session().get_service_model("ivs-realtime")
OPERATIONS = sorted(MODEL.operation_names)


def test_every_operation_of_the_model_has_a_handler() -> None:
    assert sorted(operations.handlers()) == OPERATIONS


def _coverage_rows() -> list[str]:
    """The first cells of the README's coverage table (the one under `## Coverage`)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Coverage\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header, separator, *body = rows
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "operation",
        "emulated",
        "not emulated",
    ]
    assert set(separator.replace("|", "").strip()) <= {"-", ":", " "}
    names = []
    for row in body:
        first = row.strip("|").split("|", 1)[0].strip()
        if first.startswith("**") and first.endswith("**"):  # a group's heading row
            continue
        names.append(first.strip("`"))
    return names


def test_the_readme_coverage_table_has_one_row_per_operation() -> None:
    names = _coverage_rows()

    assert len(names) == len(set(names)), "an operation has two rows"
    assert sorted(names) == OPERATIONS


# --- the smoke test -------------------------------------------------------------------------


@dataclass
class World:
    """One of each resource, built through the API (and `/_emulator/join`)."""

    stage: str  # participant1 joined (self-signed token), replicated to `destination`
    session: str
    destination: str
    other_stage: str  # no one: for a second replication
    spare_stage: str  # for DeleteStage
    key: str
    encoder: str  # used by `composition`
    spare_encoder: str
    storage: str  # used by `composition`
    spare_storage: str
    composition: str
    ingest: str


@pytest.fixture
def world(emulator, ivs_client, private_key, key_arn) -> World:
    stage = ivs_client.create_stage(name="source")["stage"]
    assert join(emulator.url, self_signed(private_key, key_arn, stage)).status_code == 200
    session = ivs_client.get_stage(arn=stage["arn"])["stage"]["activeSessionId"]
    destination = ivs_client.create_stage(name="destination")["stage"]["arn"]
    ivs_client.start_participant_replication(
        sourceStageArn=stage["arn"], destinationStageArn=destination, participantId="participant1"
    )

    def encoder(name: str) -> str:
        return str(
            ivs_client.create_encoder_configuration(name=name)["encoderConfiguration"]["arn"]
        )

    def storage(name: str) -> str:
        configuration = ivs_client.create_storage_configuration(
            name=name, s3={"bucketName": "recordings"}
        )
        return str(configuration["storageConfiguration"]["arn"])

    used_encoder, used_storage = encoder("used"), storage("used")
    composition = ivs_client.start_composition(
        stageArn=stage["arn"],
        destinations=[
            {
                "s3": {
                    "storageConfigurationArn": used_storage,
                    "encoderConfigurationArns": [used_encoder],
                }
            }
        ],
    )["composition"]["arn"]
    ingest = ivs_client.create_ingest_configuration(ingestProtocol="RTMPS", stageArn=stage["arn"])
    return World(
        stage=stage["arn"],
        session=session,
        destination=destination,
        other_stage=ivs_client.create_stage(name="other")["stage"]["arn"],
        spare_stage=ivs_client.create_stage(name="spare")["stage"]["arn"],
        key=key_arn,
        encoder=used_encoder,
        spare_encoder=encoder("spare"),
        storage=used_storage,
        spare_storage=storage("spare"),
        composition=composition,
        ingest=ingest["ingestConfiguration"]["arn"],
    )


def _participant(w: World) -> dict[str, str]:
    return {"stageArn": w.stage, "sessionId": w.session, "participantId": "participant1"}


def _replication(w: World) -> dict[str, str]:
    return {
        "sourceStageArn": w.stage,
        "destinationStageArn": w.destination,
        "participantId": "participant1",
    }


# A minimal valid input per operation, built from the world's resources.
INPUTS: dict[str, Callable[[World], dict[str, Any]]] = {
    # stages and sessions
    "CreateStage": lambda w: {},
    "GetStage": lambda w: {"arn": w.stage},
    "ListStages": lambda w: {},
    "UpdateStage": lambda w: {"arn": w.stage, "name": "renamed"},
    "DeleteStage": lambda w: {"arn": w.spare_stage},
    "ListStageSessions": lambda w: {"stageArn": w.stage},
    "GetStageSession": lambda w: {"stageArn": w.stage, "sessionId": w.session},
    # participants
    "CreateParticipantToken": lambda w: {"stageArn": w.stage},
    "ListParticipants": lambda w: {"stageArn": w.stage, "sessionId": w.session},
    "GetParticipant": _participant,
    "DisconnectParticipant": lambda w: {"stageArn": w.stage, "participantId": "participant1"},
    "ListParticipantEvents": _participant,
    "RevokeConnectionToken": lambda w: {"tokenId": "participant1"},
    # public keys
    "ImportPublicKey": lambda w: {"publicKeyMaterial": _new_public_pem()},
    "GetPublicKey": lambda w: {"arn": w.key},
    "ListPublicKeys": lambda w: {},
    "DeletePublicKey": lambda w: {"arn": w.key},
    # encoder and storage configurations, compositions
    "CreateEncoderConfiguration": lambda w: {},
    "GetEncoderConfiguration": lambda w: {"arn": w.encoder},
    "ListEncoderConfigurations": lambda w: {},
    "DeleteEncoderConfiguration": lambda w: {"arn": w.spare_encoder},
    "CreateStorageConfiguration": lambda w: {"s3": {"bucketName": "more-recordings"}},
    "GetStorageConfiguration": lambda w: {"arn": w.storage},
    "ListStorageConfigurations": lambda w: {},
    "DeleteStorageConfiguration": lambda w: {"arn": w.spare_storage},
    "StartComposition": lambda w: {
        "stageArn": w.stage,
        "destinations": [{"channel": {"channelArn": _channel(w)}}],
    },
    "GetComposition": lambda w: {"arn": w.composition},
    "ListCompositions": lambda w: {},
    "StopComposition": lambda w: {"arn": w.composition},
    # ingest configurations
    "CreateIngestConfiguration": lambda w: {"ingestProtocol": "RTMPS"},
    "GetIngestConfiguration": lambda w: {"arn": w.ingest},
    "ListIngestConfigurations": lambda w: {},
    "UpdateIngestConfiguration": lambda w: {"arn": w.ingest, "stageArn": w.destination},
    "DeleteIngestConfiguration": lambda w: {"arn": w.ingest},
    # participant replication
    "StartParticipantReplication": lambda w: {
        "sourceStageArn": w.stage,
        "destinationStageArn": w.other_stage,
        "participantId": "participant1",
    },
    "StopParticipantReplication": _replication,
    "ListParticipantReplicas": lambda w: {
        "sourceStageArn": w.stage,
        "participantId": "participant1",
    },
    # tags
    "TagResource": lambda w: {"resourceArn": w.stage, "tags": {"team": "video"}},
    "UntagResource": lambda w: {"resourceArn": w.stage, "tagKeys": ["team"]},
    "ListTagsForResource": lambda w: {"resourceArn": w.stage},
}


def _new_public_pem() -> str:
    return public_pem(new_p384_key())


def _channel(w: World) -> str:
    """A channel ARN of the stage's account and region (the emulator has no channels)."""
    region, account = w.stage.split(":")[3:5]
    return f"arn:aws:ivs:{region}:{account}:channel/abcdABCD1234"


def test_the_input_table_covers_the_model() -> None:
    assert sorted(INPUTS) == OPERATIONS


_SCALARS: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "long": int,
    "boolean": bool,
    "float": (int, float),
    "double": (int, float),
    "timestamp": datetime.datetime,
    "blob": bytes,
}


def _shape_problems(shape: Shape, value: Any, path: str) -> list[str]:
    """What in the parsed `value` does not fit `shape`: missing required members, wrong types."""
    kind = shape.type_name
    if kind == "structure":
        return _structure_problems(shape, value, path)
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: a list expected, got {value!r}"]
        member = shape.member
        return [
            p for i, item in enumerate(value) for p in _shape_problems(member, item, f"{path}[{i}]")
        ]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: a map expected, got {value!r}"]
        problems = []
        for key, item in value.items():
            problems += _shape_problems(shape.key, key, f"{path} key")
            problems += _shape_problems(shape.value, item, f"{path}[{key!r}]")
        return problems
    return _scalar_problems(shape, value, path)


def _structure_problems(shape: Shape, value: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: a structure expected, got {value!r}"]
    problems = [
        f"{path}.{name}: required, missing" for name in shape.required_members if name not in value
    ]
    for name, member in shape.members.items():
        if name in value:
            problems += _shape_problems(member, value[name], f"{path}.{name}")
    return problems


def _scalar_problems(shape: Shape, value: Any, path: str) -> list[str]:
    kind = shape.type_name
    if (isinstance(value, bool) and kind != "boolean") or not isinstance(value, _SCALARS[kind]):
        return [f"{path}: {kind} expected, got {value!r}"]
    enum = getattr(shape, "enum", None)
    if enum and value not in enum:
        return [f"{path}: {value!r} is none of {enum}"]
    return []


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_valid_call_answers_2xx_with_the_modeled_output(
    ivs_client, world: World, operation: str
) -> None:
    response = getattr(ivs_client, xform_name(operation))(**INPUTS[operation](world))

    assert 200 <= response["ResponseMetadata"]["HTTPStatusCode"] < 300
    output_shape = MODEL.operation_model(operation).output_shape
    output = {name: value for name, value in response.items() if name != "ResponseMetadata"}
    if output_shape is None:
        assert output == {}
        return
    for name in output_shape.required_members:
        assert name in output, f"{operation}: required output member {name} missing"
    assert _shape_problems(output_shape, output, operation) == []
