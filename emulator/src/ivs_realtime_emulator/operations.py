"""The emulated IVS real-time operations: one function per operation, over `state.py`.

Each handler receives input already validated against the model's input shape
and returns a dict that `model.shape_output` cuts to the output shape. What the
model cannot express (stage existence, the 3-key quota, the 1 KB attribute
limit, tag rules) is checked here, answering with the error AWS would send.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ivs_realtime_emulator import (
    compositions,
    configurations,
    departures,
    events,
    ingest,
    replication,
    revocation,
    rules,
)
from ivs_realtime_emulator.common import check_attributes, check_tag_keys, or_404, stage_or_404
from ivs_realtime_emulator.configurations import recording_configuration
from ivs_realtime_emulator.errors import conflict, not_found, quota_exceeded, validation
from ivs_realtime_emulator.pagination import page
from ivs_realtime_emulator.state import (
    EmulatorState,
    Participant,
    PublicKey,
    RegionState,
    Stage,
    StageSession,
    Tagged,
    random_id,
    stage_endpoints,
)

#: Public keys per region: a fixed quota of IVS.
MAX_PUBLIC_KEYS = 3
MAX_TAGS = 50
_HOST_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class OperationContext:
    """What a handler may touch: the whole state, the caller's region, and the time."""

    state: EmulatorState
    region: RegionState
    now: datetime
    #: How long a composition outlives its stage's last participant (see compositions.py).
    composition_idle_timeout: timedelta = compositions.IDLE_TIMEOUT

    @property
    def region_name(self) -> str:
        return self.region.region


Params = Mapping[str, Any]
Handler = Callable[[OperationContext, Params], dict[str, Any]]


# ---------------------------------------------------------------- views


def stage_view(stage: Stage) -> dict[str, Any]:
    return {
        "arn": stage.arn,
        "name": stage.name,
        "activeSessionId": stage.active_session_id,
        "tags": dict(stage.tags),
        "autoParticipantRecordingConfiguration": stage.auto_participant_recording,
        "endpoints": dict(stage.endpoints),
    }


def session_view(session: StageSession) -> dict[str, Any]:
    return {
        "sessionId": session.session_id,
        "startTime": session.start_time,
        "endTime": session.end_time,
    }


def participant_view(participant: Participant) -> dict[str, Any]:
    return {
        "participantId": participant.participant_id,
        "userId": participant.user_id,
        "state": participant.state,
        "firstJoinTime": participant.first_join_time,
        "attributes": dict(participant.attributes),
        # Joined participants carry no media: only an ingest publisher has published.
        "published": participant.protocol is not None,
        "recordingState": "DISABLED",
        "protocol": participant.protocol,
        "ingestConfigurationArn": participant.ingest_configuration_arn,
        "redundantIngest": participant.redundant_ingest,
        "replicationType": participant.replication_type,
        "replicationState": participant.replication_state,
        "sourceStageArn": participant.source_stage_arn,
        "sourceSessionId": participant.source_session_id,
    }


def public_key_view(key: PublicKey) -> dict[str, Any]:
    return {
        "arn": key.arn,
        "name": key.name,
        "publicKeyMaterial": key.material,
        "fingerprint": key.fingerprint,
        "tags": dict(key.tags),
    }


# ---------------------------------------------------------------- shared checks


def public_key_or_404(ctx: OperationContext, arn: str) -> PublicKey:
    return or_404(ctx.region.public_keys, arn, "Public key")


def issue_token(ctx: OperationContext, stage: Stage, request: Params) -> dict[str, Any]:
    """A participant token signed by the emulator, as CreateParticipantToken returns it."""
    duration = request.get("duration") or rules.DEFAULT_DURATION_MINUTES
    requested = request.get("capabilities")
    capabilities = list(rules.CAPABILITIES) if requested is None else list(dict.fromkeys(requested))
    user_id: str | None = request.get("userId")
    attributes: dict[str, str] = dict(request.get("attributes") or {})
    participant_id = random_id(12)
    issued_at = int(ctx.now.timestamp())
    expires_at = issued_at + duration * 60
    claims: dict[str, Any] = {
        "exp": expires_at,
        "iat": issued_at,
        "jti": participant_id,
        "resource": stage.arn,
        "topic": stage.stage_id,
        "events_url": stage.endpoints["events"],
        "whip_url": stage.endpoints["whip"],
        "capabilities": rules.capability_claims(capabilities),
        "attributes": attributes,
        "version": rules.CLAIMS_VERSION,
    }
    if user_id is not None:
        claims["user_id"] = user_id
    return {
        "participantId": participant_id,
        "token": ctx.state.issuer.issue(claims),
        "userId": user_id,
        "attributes": attributes,
        "duration": duration,
        "capabilities": capabilities,
        "expirationTime": datetime.fromtimestamp(expires_at, UTC),
    }


# ---------------------------------------------------------------- stages


def create_stage(ctx: OperationContext, params: Params) -> dict[str, Any]:
    tags = dict(params.get("tags") or {})
    check_tag_keys(tags)
    configurations = list(params.get("participantTokenConfigurations") or [])
    for configuration in configurations:
        check_attributes(configuration.get("attributes") or {})
    stage_id = random_id(12)
    while ctx.state.arn(ctx.region_name, "stage", stage_id) in ctx.region.stages:
        stage_id = random_id(12)
    recording = recording_configuration(
        ctx.region, params.get("autoParticipantRecordingConfiguration")
    )
    stage = Stage(
        stage_id=stage_id,
        arn=ctx.state.arn(ctx.region_name, "stage", stage_id),
        name=params.get("name") or "",
        endpoints=stage_endpoints(random_id(12, _HOST_ALPHABET)),
        seq=ctx.state.next_seq(),
        tags=tags,
        auto_participant_recording=recording,
    )
    ctx.region.stages[stage.arn] = stage
    tokens = [issue_token(ctx, stage, configuration) for configuration in configurations]
    return {"stage": stage_view(stage), "participantTokens": tokens}


def get_stage(ctx: OperationContext, params: Params) -> dict[str, Any]:
    return {"stage": stage_view(stage_or_404(ctx.region, params["arn"]))}


def list_stages(ctx: OperationContext, params: Params) -> dict[str, Any]:
    stages = ctx.region.stages.values()
    chosen, token = page("ListStages", ctx.region_name, params, stages, lambda s: s.seq)
    summaries = [
        {"arn": s.arn, "name": s.name, "activeSessionId": s.active_session_id, "tags": s.tags}
        for s in chosen
    ]
    return {"stages": summaries, "nextToken": token}


def update_stage(ctx: OperationContext, params: Params) -> dict[str, Any]:
    stage = stage_or_404(ctx.region, params["arn"])
    if params.get("name") is not None:
        stage.name = params["name"]
    if params.get("autoParticipantRecordingConfiguration") is not None:
        stage.auto_participant_recording = recording_configuration(
            ctx.region, params["autoParticipantRecordingConfiguration"]
        )
    return {"stage": stage_view(stage)}


def delete_stage(ctx: OperationContext, params: Params) -> dict[str, Any]:
    stage = stage_or_404(ctx.region, params["arn"])
    session = stage.active_session()
    leaving = (
        [p for p in session.participants.values() if p.state == "CONNECTED"] if session else []
    )
    stage.close(ctx.now)
    compositions.stage_deleted(ctx, stage.arn)
    del ctx.region.stages[stage.arn]
    departures.participants_left(ctx.region, stage, leaving, ctx.now, stage_deleted=True)
    return {}


# ---------------------------------------------------------------- public keys


def fingerprint(der: bytes) -> str:
    """Colon-separated hex of the SHA-256 of the DER SubjectPublicKeyInfo."""
    return ":".join(f"{byte:02x}" for byte in hashlib.sha256(der).digest())


def _p384_der(material: str) -> bytes:
    try:
        key = serialization.load_pem_public_key(material.encode("utf-8"))
    except (ValueError, UnicodeError):
        raise validation("publicKeyMaterial is not a valid PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise validation("publicKeyMaterial must be an EC P-384 (secp384r1) public key")
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def import_public_key(ctx: OperationContext, params: Params) -> dict[str, Any]:
    tags = dict(params.get("tags") or {})
    check_tag_keys(tags)
    material: str = params["publicKeyMaterial"]
    print_ = fingerprint(_p384_der(material))
    for existing in ctx.region.public_keys.values():
        if existing.fingerprint == print_:
            raise conflict(f"This public key is already imported as {existing.arn}")
    if len(ctx.region.public_keys) >= MAX_PUBLIC_KEYS:
        raise quota_exceeded(
            f"At most {MAX_PUBLIC_KEYS} public keys per region; delete one before importing"
        )
    key_id = random_id(12)
    key = PublicKey(
        key_id=key_id,
        arn=ctx.state.arn(ctx.region_name, "public-key", key_id),
        name=params.get("name") or "",
        material=material,
        fingerprint=print_,
        seq=ctx.state.next_seq(),
        tags=tags,
    )
    ctx.region.public_keys[key.arn] = key
    return {"publicKey": public_key_view(key)}


def get_public_key(ctx: OperationContext, params: Params) -> dict[str, Any]:
    return {"publicKey": public_key_view(public_key_or_404(ctx, params["arn"]))}


def list_public_keys(ctx: OperationContext, params: Params) -> dict[str, Any]:
    keys = ctx.region.public_keys.values()
    chosen, token = page("ListPublicKeys", ctx.region_name, params, keys, lambda k: k.seq)
    summaries = [{"arn": k.arn, "name": k.name, "tags": k.tags} for k in chosen]
    return {"publicKeys": summaries, "nextToken": token}


def delete_public_key(ctx: OperationContext, params: Params) -> dict[str, Any]:
    key = public_key_or_404(ctx, params["arn"])
    del ctx.region.public_keys[key.arn]
    ctx.region.deleted_key_arns.add(key.arn)
    return {}


# ---------------------------------------------------------------- tokens, sessions, participants


def create_participant_token(ctx: OperationContext, params: Params) -> dict[str, Any]:
    stage = stage_or_404(ctx.region, params["stageArn"])
    check_attributes(params.get("attributes") or {})
    return {"participantToken": issue_token(ctx, stage, params)}


def list_stage_sessions(ctx: OperationContext, params: Params) -> dict[str, Any]:
    # The model gives ListStageSessions no ResourceNotFoundException: an unknown
    # stage (or one of another region) has no sessions to list.
    stage = ctx.region.stages.get(params["stageArn"])
    # Newest first; the cursor is the negated sequence so it still ascends.
    sessions = list(stage.sessions.values()) if stage else []
    chosen, token = page("ListStageSessions", ctx.region_name, params, sessions, lambda s: -s.seq)
    return {"stageSessions": [session_view(s) for s in chosen], "nextToken": token}


def _session_or_404(stage: Stage, session_id: str) -> StageSession:
    session = stage.sessions.get(session_id)
    if session is None:
        raise not_found(f"Session {session_id} of stage {stage.arn} not found")
    return session


def get_stage_session(ctx: OperationContext, params: Params) -> dict[str, Any]:
    stage = stage_or_404(ctx.region, params["stageArn"])
    return {"stageSession": session_view(_session_or_404(stage, params["sessionId"]))}


_PARTICIPANT_FILTERS = (
    "filterByUserId",
    "filterByPublished",
    "filterByState",
    "filterByRecordingState",
)


def list_participants(ctx: OperationContext, params: Params) -> dict[str, Any]:
    filters = [name for name in _PARTICIPANT_FILTERS if params.get(name) is not None]
    if len(filters) > 1:
        raise validation(f"Only one filter may be given per request, got: {', '.join(filters)}")
    # The model gives ListParticipants no ResourceNotFoundException: an unknown
    # stage, like an unknown session, lists nothing.
    stage = ctx.region.stages.get(params["stageArn"])
    session = stage.sessions.get(params["sessionId"]) if stage else None
    participants = list(session.participants.values()) if session else []
    if params.get("filterByUserId") is not None:
        participants = [p for p in participants if p.user_id == params["filterByUserId"]]
    if params.get("filterByPublished") is not None:
        # Only ingest publishers publish in the emulator.
        wanted = params["filterByPublished"]
        participants = [p for p in participants if (p.protocol is not None) is wanted]
    if params.get("filterByState") is not None:
        participants = [p for p in participants if p.state == params["filterByState"]]
    if params.get("filterByRecordingState") is not None:
        participants = []  # nothing is ever recorded
    chosen, token = page("ListParticipants", ctx.region_name, params, participants, lambda p: p.seq)
    summaries = []
    for participant in chosen:
        view = participant_view(participant)
        view.pop("attributes")
        summaries.append(view)
    return {"participants": summaries, "nextToken": token}


def get_participant(ctx: OperationContext, params: Params) -> dict[str, Any]:
    stage = stage_or_404(ctx.region, params["stageArn"])
    session = _session_or_404(stage, params["sessionId"])
    participant = session.participants.get(params["participantId"])
    if participant is None:
        raise not_found(f"Participant {params['participantId']} not found in {session.session_id}")
    return {"participant": participant_view(participant)}


def disconnect_participant(ctx: OperationContext, params: Params) -> dict[str, Any]:
    stage = stage_or_404(ctx.region, params["stageArn"])
    session = stage.active_session()
    participant = session.participants.get(params["participantId"]) if session else None
    if participant is None or not stage.disconnect(params["participantId"], ctx.now):
        raise not_found(f"Participant {params['participantId']} is not connected to {stage.arn}")
    departures.participants_left(ctx.region, stage, [participant], ctx.now, disconnected=True)
    return {}


# ---------------------------------------------------------------- tags


def _tagged_or_404(ctx: OperationContext, arn: str) -> Tagged:
    resource = ctx.region.tagged_resource(arn)
    if resource is None:
        raise not_found(f"Resource {arn} not found")
    return resource


def tag_resource(ctx: OperationContext, params: Params) -> dict[str, Any]:
    resource = _tagged_or_404(ctx, params["resourceArn"])
    tags: dict[str, str] = dict(params["tags"])
    check_tag_keys(tags)
    merged = {**resource.tags, **tags}
    if len(merged) > MAX_TAGS:
        raise validation(
            f"A resource may have at most {MAX_TAGS} tags; this would make {len(merged)}"
        )
    resource.tags = merged
    return {}


def untag_resource(ctx: OperationContext, params: Params) -> dict[str, Any]:
    resource = _tagged_or_404(ctx, params["resourceArn"])
    for key in params["tagKeys"]:
        resource.tags.pop(key, None)
    return {}


def list_tags_for_resource(ctx: OperationContext, params: Params) -> dict[str, Any]:
    return {"tags": dict(_tagged_or_404(ctx, params["resourceArn"]).tags)}


def handlers() -> dict[str, Handler]:
    """Every emulated operation by name; any other operation of the model is not emulated."""
    return {
        "CreateStage": create_stage,
        "GetStage": get_stage,
        "ListStages": list_stages,
        "UpdateStage": update_stage,
        "DeleteStage": delete_stage,
        "ImportPublicKey": import_public_key,
        "GetPublicKey": get_public_key,
        "ListPublicKeys": list_public_keys,
        "DeletePublicKey": delete_public_key,
        "CreateParticipantToken": create_participant_token,
        "ListStageSessions": list_stage_sessions,
        "GetStageSession": get_stage_session,
        "ListParticipants": list_participants,
        "GetParticipant": get_participant,
        "DisconnectParticipant": disconnect_participant,
        "TagResource": tag_resource,
        "UntagResource": untag_resource,
        "ListTagsForResource": list_tags_for_resource,
        **configurations.handlers(),
        **compositions.handlers(),
        **ingest.HANDLERS,
        **replication.HANDLERS,
        **events.HANDLERS,
        **revocation.HANDLERS,
    }


#: Operations after which the state is saved (when a state file is configured).
MUTATING = frozenset(
    {
        "CreateStage",
        "UpdateStage",
        "DeleteStage",
        "ImportPublicKey",
        "DeletePublicKey",
        "DisconnectParticipant",
        "TagResource",
        "UntagResource",
    }
    | configurations.MUTATING
    | compositions.MUTATING
    | ingest.MUTATING
    | replication.MUTATING
    | events.MUTATING
    | revocation.MUTATING
)
