"""Records of the ingest, replication and event features, kept apart from `state.py`.

Plain data with no behaviour: ingest configurations, participant replicas and the
events of a participant. `state.py` holds them in each region and participant;
`ingest.py`, `replication.py` and `events.py` change them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ACTIVE = "ACTIVE"
INACTIVE = "INACTIVE"
STOPPED = "STOPPED"


@dataclass
class ParticipantEvent:
    """One entry of ListParticipantEvents (the model's `Event`)."""

    name: str
    event_time: datetime
    participant_id: str
    replica: bool = False
    remote_participant_id: str | None = None
    error_code: str | None = None
    destination_stage_arn: str | None = None
    destination_session_id: str | None = None
    #: ExchangedParticipantToken views, for TOKEN_EXCHANGED.
    previous_token: dict[str, Any] | None = None
    new_token: dict[str, Any] | None = None


@dataclass
class RedundantCredential:
    participant_id: str
    stream_key: str


@dataclass
class IngestConfiguration:
    config_id: str
    arn: str
    name: str
    ingest_protocol: str
    insecure_ingest: bool
    stream_key: str
    participant_id: str
    seq: int
    #: "" when associated with no stage, as the model's pattern `^$|...` allows.
    stage_arn: str = ""
    user_id: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    redundant_ingest: bool = False
    redundant_credentials: list[RedundantCredential] = field(default_factory=list)
    #: ACTIVE while a publisher streams with its key (`POST /_emulator/ingest`).
    state: str = INACTIVE


@dataclass
class ParticipantReplica:
    """A participant replicated from a source stage into a destination stage."""

    source_stage_arn: str
    participant_id: str
    source_session_id: str
    destination_stage_arn: str
    destination_session_id: str
    seq: int
    reconnect_window_seconds: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    replication_state: str = ACTIVE
