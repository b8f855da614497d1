"""`--state FILE`: the emulator's state as JSON, loaded at start and saved after changes.

Saved atomically (a temporary file renamed over the old one) so a crash never
leaves half a file, and readable only by its owner: it holds the emulator's own
token-signing key. Stage sessions and participants are saved too, so tokens
disconnected before a restart stay refused after it.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from ivs_realtime_emulator.records import (
    IngestConfiguration,
    ParticipantEvent,
    ParticipantReplica,
    RedundantCredential,
)
from ivs_realtime_emulator.state import (
    Composition,
    CompositionDestination,
    EmulatorState,
    EncoderConfiguration,
    Participant,
    PublicKey,
    RegionState,
    Stage,
    StageSession,
    StorageConfiguration,
)
from ivs_realtime_emulator.tokens import InternalIssuer

FORMAT_VERSION = 1


class StateFileError(Exception):
    """The state file exists but cannot be used; the message says which file and why."""


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _required_time(value: str) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected a timestamp, got {value!r}")
    return datetime.fromisoformat(value)


def _participant(p: Participant) -> dict[str, Any]:
    return {
        "participantId": p.participant_id,
        "userId": p.user_id,
        "attributes": p.attributes,
        "capabilities": p.capabilities,
        "firstJoinTime": _time(p.first_join_time),
        "seq": p.seq,
        "state": p.state,
        "events": [_event(e) for e in p.events],
        "tokenExpiration": _time(p.token_expiration),
        "protocol": p.protocol,
        "ingestConfigurationArn": p.ingest_configuration_arn,
        "redundantIngest": p.redundant_ingest,
        "replicationType": p.replication_type,
        "replicationState": p.replication_state,
        "sourceStageArn": p.source_stage_arn,
        "sourceSessionId": p.source_session_id,
    }


def _token_json(token: dict[str, Any] | None) -> dict[str, Any] | None:
    if token is None:
        return None
    return {**token, "expirationTime": _time(token.get("expirationTime"))}


def _token_loaded(token: dict[str, Any] | None) -> dict[str, Any] | None:
    if token is None:
        return None
    return {**token, "expirationTime": _parse_time(token.get("expirationTime"))}


def _event(e: ParticipantEvent) -> dict[str, Any]:
    return {
        "name": e.name,
        "eventTime": _time(e.event_time),
        "participantId": e.participant_id,
        "replica": e.replica,
        "remoteParticipantId": e.remote_participant_id,
        "errorCode": e.error_code,
        "destinationStageArn": e.destination_stage_arn,
        "destinationSessionId": e.destination_session_id,
        "previousToken": _token_json(e.previous_token),
        "newToken": _token_json(e.new_token),
    }


def _load_event(d: dict[str, Any]) -> ParticipantEvent:
    return ParticipantEvent(
        name=d["name"],
        event_time=_required_time(d["eventTime"]),
        participant_id=d["participantId"],
        replica=d["replica"],
        remote_participant_id=d["remoteParticipantId"],
        error_code=d["errorCode"],
        destination_stage_arn=d["destinationStageArn"],
        destination_session_id=d["destinationSessionId"],
        previous_token=_token_loaded(d["previousToken"]),
        new_token=_token_loaded(d["newToken"]),
    )


def _ingest(c: IngestConfiguration) -> dict[str, Any]:
    return {
        "configId": c.config_id,
        "arn": c.arn,
        "name": c.name,
        "ingestProtocol": c.ingest_protocol,
        "insecureIngest": c.insecure_ingest,
        "streamKey": c.stream_key,
        "participantId": c.participant_id,
        "seq": c.seq,
        "stageArn": c.stage_arn,
        "userId": c.user_id,
        "attributes": c.attributes,
        "tags": c.tags,
        "redundantIngest": c.redundant_ingest,
        "redundantCredentials": [
            {"participantId": r.participant_id, "streamKey": r.stream_key}
            for r in c.redundant_credentials
        ],
        "state": c.state,
    }


def _load_ingest(d: dict[str, Any]) -> IngestConfiguration:
    return IngestConfiguration(
        config_id=d["configId"],
        arn=d["arn"],
        name=d["name"],
        ingest_protocol=d["ingestProtocol"],
        insecure_ingest=d["insecureIngest"],
        stream_key=d["streamKey"],
        participant_id=d["participantId"],
        seq=d["seq"],
        stage_arn=d["stageArn"],
        user_id=d["userId"],
        attributes=dict(d["attributes"]),
        tags=dict(d["tags"]),
        redundant_ingest=d["redundantIngest"],
        redundant_credentials=[
            RedundantCredential(r["participantId"], r["streamKey"])
            for r in d["redundantCredentials"]
        ],
        state=d["state"],
    )


def _replica(r: ParticipantReplica) -> dict[str, Any]:
    return {
        "sourceStageArn": r.source_stage_arn,
        "participantId": r.participant_id,
        "sourceSessionId": r.source_session_id,
        "destinationStageArn": r.destination_stage_arn,
        "destinationSessionId": r.destination_session_id,
        "seq": r.seq,
        "reconnectWindowSeconds": r.reconnect_window_seconds,
        "attributes": r.attributes,
        "replicationState": r.replication_state,
    }


def _load_replica(d: dict[str, Any]) -> ParticipantReplica:
    return ParticipantReplica(
        source_stage_arn=d["sourceStageArn"],
        participant_id=d["participantId"],
        source_session_id=d["sourceSessionId"],
        destination_stage_arn=d["destinationStageArn"],
        destination_session_id=d["destinationSessionId"],
        seq=d["seq"],
        reconnect_window_seconds=d["reconnectWindowSeconds"],
        attributes=dict(d["attributes"]),
        replication_state=d["replicationState"],
    )


def _session(s: StageSession) -> dict[str, Any]:
    return {
        "sessionId": s.session_id,
        "startTime": _time(s.start_time),
        "endTime": _time(s.end_time),
        "seq": s.seq,
        "participants": [_participant(p) for p in s.participants.values()],
    }


def _stage(s: Stage) -> dict[str, Any]:
    return {
        "stageId": s.stage_id,
        "arn": s.arn,
        "name": s.name,
        "endpoints": s.endpoints,
        "seq": s.seq,
        "tags": s.tags,
        "autoParticipantRecordingConfiguration": s.auto_participant_recording,
        "sessions": [_session(session) for session in s.sessions.values()],
        "activeSessionId": s.active_session_id,
        "disconnected": sorted(s.disconnected),
    }


def _key(k: PublicKey) -> dict[str, Any]:
    return {
        "keyId": k.key_id,
        "arn": k.arn,
        "name": k.name,
        "material": k.material,
        "fingerprint": k.fingerprint,
        "seq": k.seq,
        "tags": k.tags,
    }


def _encoder(c: EncoderConfiguration) -> dict[str, Any]:
    return {
        "configurationId": c.configuration_id,
        "arn": c.arn,
        "name": c.name,
        "video": c.video,
        "seq": c.seq,
        "tags": c.tags,
    }


def _storage(c: StorageConfiguration) -> dict[str, Any]:
    return {
        "configurationId": c.configuration_id,
        "arn": c.arn,
        "name": c.name,
        "s3": c.s3,
        "seq": c.seq,
        "tags": c.tags,
    }


def _destination(d: CompositionDestination) -> dict[str, Any]:
    return {
        "id": d.destination_id,
        "configuration": d.configuration,
        "state": d.state,
        "startTime": _time(d.start_time),
        "endTime": _time(d.end_time),
        "detail": d.detail,
    }


def _composition(c: Composition) -> dict[str, Any]:
    return {
        "compositionId": c.composition_id,
        "arn": c.arn,
        "stageArn": c.stage_arn,
        "layout": c.layout,
        "destinations": [_destination(d) for d in c.destinations],
        "state": c.state,
        "startTime": _time(c.start_time),
        "endTime": _time(c.end_time),
        "seq": c.seq,
        "tags": c.tags,
        "idempotencyToken": c.idempotency_token,
    }


def to_json(state: EmulatorState) -> dict[str, Any]:
    return {
        "formatVersion": FORMAT_VERSION,
        "accountId": state.account_id,
        "seq": state.seq,
        "issuerKey": state.issuer.to_pem(),
        "regions": {
            name: {
                "stages": [_stage(s) for s in region.stages.values()],
                "publicKeys": [_key(k) for k in region.public_keys.values()],
                "deletedKeyArns": sorted(region.deleted_key_arns),
                "encoderConfigurations": [
                    _encoder(c) for c in region.encoder_configurations.values()
                ],
                "storageConfigurations": [
                    _storage(c) for c in region.storage_configurations.values()
                ],
                "compositions": [_composition(c) for c in region.compositions.values()],
                "ingestConfigurations": [_ingest(c) for c in region.ingest_configurations.values()],
                "replicas": [_replica(r) for r in region.replicas],
                "revokedTokenIds": sorted(region.revoked_token_ids),
            }
            for name, region in state.regions.items()
        },
    }


def _load_participant(d: dict[str, Any]) -> Participant:
    return Participant(
        participant_id=d["participantId"],
        user_id=d["userId"],
        attributes=dict(d["attributes"]),
        capabilities=list(d["capabilities"]),
        first_join_time=_required_time(d["firstJoinTime"]),
        seq=d["seq"],
        state=d["state"],
        # Files written before these members existed load with their defaults.
        events=[_load_event(e) for e in d.get("events", [])],
        token_expiration=_parse_time(d.get("tokenExpiration")),
        protocol=d.get("protocol"),
        ingest_configuration_arn=d.get("ingestConfigurationArn"),
        redundant_ingest=d.get("redundantIngest"),
        replication_type=d.get("replicationType", "NONE"),
        replication_state=d.get("replicationState"),
        source_stage_arn=d.get("sourceStageArn"),
        source_session_id=d.get("sourceSessionId"),
    )


def _load_session(d: dict[str, Any]) -> StageSession:
    participants = [_load_participant(p) for p in d["participants"]]
    return StageSession(
        session_id=d["sessionId"],
        start_time=_required_time(d["startTime"]),
        end_time=_parse_time(d["endTime"]),
        seq=d["seq"],
        participants={p.participant_id: p for p in participants},
    )


def _load_stage(d: dict[str, Any]) -> Stage:
    sessions = [_load_session(s) for s in d["sessions"]]
    return Stage(
        stage_id=d["stageId"],
        arn=d["arn"],
        name=d["name"],
        endpoints=dict(d["endpoints"]),
        seq=d["seq"],
        tags=dict(d["tags"]),
        auto_participant_recording=d["autoParticipantRecordingConfiguration"],
        sessions={s.session_id: s for s in sessions},
        active_session_id=d["activeSessionId"],
        disconnected=set(d["disconnected"]),
    )


def _load_key(d: dict[str, Any]) -> PublicKey:
    return PublicKey(
        key_id=d["keyId"],
        arn=d["arn"],
        name=d["name"],
        material=d["material"],
        fingerprint=d["fingerprint"],
        seq=d["seq"],
        tags=dict(d["tags"]),
    )


def _load_encoder(d: dict[str, Any]) -> EncoderConfiguration:
    return EncoderConfiguration(
        configuration_id=d["configurationId"],
        arn=d["arn"],
        name=d["name"],
        video=dict(d["video"]),
        seq=d["seq"],
        tags=dict(d["tags"]),
    )


def _load_storage(d: dict[str, Any]) -> StorageConfiguration:
    return StorageConfiguration(
        configuration_id=d["configurationId"],
        arn=d["arn"],
        name=d["name"],
        s3=dict(d["s3"]),
        seq=d["seq"],
        tags=dict(d["tags"]),
    )


def _load_destination(d: dict[str, Any]) -> CompositionDestination:
    return CompositionDestination(
        destination_id=d["id"],
        configuration=dict(d["configuration"]),
        state=d["state"],
        start_time=_required_time(d["startTime"]),
        end_time=_parse_time(d["endTime"]),
        detail=d["detail"],
    )


def _load_composition(d: dict[str, Any]) -> Composition:
    return Composition(
        composition_id=d["compositionId"],
        arn=d["arn"],
        stage_arn=d["stageArn"],
        layout=dict(d["layout"]),
        destinations=[_load_destination(x) for x in d["destinations"]],
        state=d["state"],
        start_time=_required_time(d["startTime"]),
        end_time=_parse_time(d["endTime"]),
        seq=d["seq"],
        tags=dict(d["tags"]),
        idempotency_token=d["idempotencyToken"],
    )


def from_json(document: dict[str, Any]) -> EmulatorState:
    if document.get("formatVersion") != FORMAT_VERSION:
        raise ValueError(f"unsupported formatVersion {document.get('formatVersion')!r}")
    state = EmulatorState(
        account_id=document["accountId"],
        issuer=InternalIssuer.from_pem(document["issuerKey"]),
        seq=document["seq"],
    )
    for name, region in document["regions"].items():
        stages = [_load_stage(s) for s in region["stages"]]
        keys = [_load_key(k) for k in region["publicKeys"]]
        # Files saved before configurations and compositions existed have none.
        encoders = [_load_encoder(c) for c in region.get("encoderConfigurations", [])]
        storages = [_load_storage(c) for c in region.get("storageConfigurations", [])]
        compositions = [_load_composition(c) for c in region.get("compositions", [])]
        state.regions[name] = RegionState(
            region=name,
            stages={s.arn: s for s in stages},
            public_keys={k.arn: k for k in keys},
            deleted_key_arns=set(region["deletedKeyArns"]),
            encoder_configurations={c.arn: c for c in encoders},
            storage_configurations={c.arn: c for c in storages},
            compositions={c.arn: c for c in compositions},
            ingest_configurations={
                c.arn: c for c in map(_load_ingest, region.get("ingestConfigurations", []))
            },
            replicas=[_load_replica(r) for r in region.get("replicas", [])],
            revoked_token_ids=set(region.get("revokedTokenIds", [])),
        )
    return state


def load(path: Path) -> EmulatorState | None:
    """The saved state, None if the file does not exist yet, StateFileError if unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateFileError(f"cannot read state file {path}: {error}") from error
    try:
        return from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as error:
        raise StateFileError(f"state file {path} is not a valid emulator state: {error}") from error


def save(state: EmulatorState, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(to_json(state), file, indent=1)
            # On disk before the rename, or a power cut could leave the new name empty.
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
