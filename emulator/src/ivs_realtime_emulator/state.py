"""The emulator's resources, per region: stages, sessions, participants, public keys.

Plain data plus the few state transitions that must stay consistent (a join that
opens a session, a disconnect that may close it). Every method is synchronous and
short: the emulator runs on one event loop, so a transition never interleaves
with another request's.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ivs_realtime_emulator.records import (
    IngestConfiguration,
    ParticipantEvent,
    ParticipantReplica,
)
from ivs_realtime_emulator.tokens import InternalIssuer

ALPHANUMERIC = string.ascii_letters + string.digits
#: Where every stage's event WebSocket lives (the real service's global form).
EVENTS_ENDPOINT = "wss://global.events.live-video.net"

CONNECTED = "CONNECTED"
DISCONNECTED = "DISCONNECTED"

#: Composition and destination states (the model's CompositionState, DestinationState).
ACTIVE = "ACTIVE"
STOPPED = "STOPPED"


def random_id(length: int, alphabet: str = ALPHANUMERIC) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def stage_endpoints(host_id: str) -> dict[str, str]:
    """Endpoints shaped like the real ones: one host prefix per stage."""
    return {
        "events": EVENTS_ENDPOINT,
        "whip": f"https://{host_id}.global-bm.whip.live-video.net",
        "rtmp": f"rtmp://{host_id}.global-contribute.live-video.net/app/",
        "rtmps": f"rtmps://{host_id}.global-contribute.live-video.net:443/app/",
    }


@dataclass
class Participant:
    participant_id: str
    user_id: str | None
    attributes: dict[str, str]
    capabilities: list[str]
    first_join_time: datetime
    seq: int
    state: str = CONNECTED
    #: What ListParticipantEvents lists for this participant in its session.
    events: list[ParticipantEvent] = field(default_factory=list)
    #: When its current token expires (for TOKEN_EXCHANGED's previousToken).
    token_expiration: datetime | None = None
    #: RTMP/RTMPS for a publisher of an ingest configuration; None for a join.
    protocol: str | None = None
    ingest_configuration_arn: str | None = None
    redundant_ingest: bool | None = None
    #: NONE, SOURCE (replicated elsewhere) or REPLICA (a copy from a source stage).
    replication_type: str = "NONE"
    replication_state: str | None = None
    source_stage_arn: str | None = None
    source_session_id: str | None = None


@dataclass
class StageSession:
    session_id: str
    start_time: datetime
    seq: int
    end_time: datetime | None = None
    participants: dict[str, Participant] = field(default_factory=dict)


@dataclass
class Stage:
    stage_id: str
    arn: str
    name: str
    endpoints: dict[str, str]
    seq: int
    tags: dict[str, str] = field(default_factory=dict)
    #: Stored and returned as given; the emulator records nothing.
    auto_participant_recording: dict[str, Any] | None = None
    sessions: dict[str, StageSession] = field(default_factory=dict)
    active_session_id: str | None = None
    #: Participant IDs disconnected by DisconnectParticipant: their tokens may not join again.
    disconnected: set[str] = field(default_factory=set)

    def active_session(self) -> StageSession | None:
        if self.active_session_id is None:
            return None
        return self.sessions[self.active_session_id]

    def connect(
        self,
        *,
        participant_id: str,
        user_id: str | None,
        attributes: dict[str, str],
        capabilities: list[str],
        now: datetime,
        seq: int,
        replica: bool = False,
    ) -> Participant:
        """Join: the first participant opens a session; a connected one rejoining is a no-op."""
        session = self.active_session()
        if session is None:
            session = StageSession(session_id=f"st-{random_id(13)}", start_time=now, seq=seq)
            self.sessions[session.session_id] = session
            self.active_session_id = session.session_id
        existing = session.participants.get(participant_id)
        if existing is not None and existing.state == CONNECTED:
            return existing
        participant = Participant(
            participant_id=participant_id,
            user_id=user_id,
            attributes=attributes,
            capabilities=capabilities,
            first_join_time=existing.first_join_time if existing else now,
            seq=seq,
            events=existing.events if existing else [],
        )
        participant.events.append(ParticipantEvent("JOINED", now, participant_id, replica=replica))
        session.participants[participant_id] = participant
        return participant

    def disconnect(self, participant_id: str, now: datetime, *, ban: bool = True) -> bool:
        """Disconnect a connected participant (for good if `ban`); the session ends with its last.

        Its LEFT event is recorded. `ban=False` (a replica stopping, a revoked token, an
        RTMP publish ending) does not bar its participant ID from this stage.
        """
        session = self.active_session()
        if session is None:
            return False
        participant = session.participants.get(participant_id)
        if participant is None or participant.state != CONNECTED:
            return False
        participant.state = DISCONNECTED
        participant.events.append(_left(participant, now))
        if ban:
            self.disconnected.add(participant_id)
        if all(p.state != CONNECTED for p in session.participants.values()):
            session.end_time = now
            self.active_session_id = None
        return True

    def close(self, now: datetime) -> None:
        """The stage is deleted: everyone connected is disconnected and the session ends."""
        session = self.active_session()
        if session is not None:
            for participant in session.participants.values():
                if participant.state == CONNECTED:
                    participant.events.append(_left(participant, now))
                participant.state = DISCONNECTED
            session.end_time = now
            self.active_session_id = None


def _left(participant: Participant, now: datetime) -> ParticipantEvent:
    replica = participant.replication_type == "REPLICA"
    return ParticipantEvent("LEFT", now, participant.participant_id, replica=replica)


@dataclass
class PublicKey:
    key_id: str
    arn: str
    name: str
    material: str
    fingerprint: str
    seq: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class EncoderConfiguration:
    configuration_id: str
    arn: str
    name: str
    #: width, height, framerate, bitrate: every member filled with its default.
    video: dict[str, Any]
    seq: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class StorageConfiguration:
    configuration_id: str
    arn: str
    name: str
    #: {"bucketName": ...}; the emulator never touches a bucket.
    s3: dict[str, Any]
    seq: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class CompositionDestination:
    destination_id: str
    #: The DestinationConfiguration as given, with its documented defaults filled.
    configuration: dict[str, Any]
    state: str
    start_time: datetime
    end_time: datetime | None = None
    #: {"s3": {"recordingPrefix": ...}} for an S3 destination.
    detail: dict[str, Any] | None = None


@dataclass
class Composition:
    composition_id: str
    arn: str
    stage_arn: str
    layout: dict[str, Any]
    destinations: list[CompositionDestination]
    state: str
    start_time: datetime
    seq: int
    end_time: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    idempotency_token: str | None = None

    @property
    def running(self) -> bool:
        return self.state not in (STOPPED, "FAILED")


class Tagged(Protocol):
    """Any resource TagResource, UntagResource and ListTagsForResource address."""

    arn: str
    tags: dict[str, str]


@dataclass
class RegionState:
    region: str
    stages: dict[str, Stage] = field(default_factory=dict)
    public_keys: dict[str, PublicKey] = field(default_factory=dict)
    #: ARNs of deleted keys, so join can say `key_deleted` rather than `unknown_key`.
    deleted_key_arns: set[str] = field(default_factory=set)
    encoder_configurations: dict[str, EncoderConfiguration] = field(default_factory=dict)
    storage_configurations: dict[str, StorageConfiguration] = field(default_factory=dict)
    compositions: dict[str, Composition] = field(default_factory=dict)
    ingest_configurations: dict[str, IngestConfiguration] = field(default_factory=dict)
    replicas: list[ParticipantReplica] = field(default_factory=list)
    #: Token IDs (participant IDs) revoked by RevokeConnectionToken: they never join again.
    revoked_token_ids: set[str] = field(default_factory=set)

    def tagged_resource(self, arn: str) -> Tagged | None:
        found: Tagged | None = (
            self.stages.get(arn)
            or self.public_keys.get(arn)
            or self.encoder_configurations.get(arn)
            or self.storage_configurations.get(arn)
            or self.compositions.get(arn)
            or self.ingest_configurations.get(arn)
        )
        return found


class EmulatorState:
    """Every region's resources, the sequence that orders them and the internal token issuer."""

    def __init__(self, account_id: str, issuer: InternalIssuer, seq: int = 0) -> None:
        self.account_id = account_id
        self.issuer = issuer
        self.regions: dict[str, RegionState] = {}
        self.seq = seq

    def region(self, name: str) -> RegionState:
        state = self.regions.get(name)
        if state is None:
            state = self.regions[name] = RegionState(region=name)
        return state

    def next_seq(self) -> int:
        """A number larger than every one before: creation order, and pagination cursors."""
        self.seq += 1
        return self.seq

    def arn(self, region: str, resource_type: str, resource_id: str) -> str:
        return f"arn:aws:ivs:{region}:{self.account_id}:{resource_type}/{resource_id}"
