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
    }


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
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
