"""How participant tokens are made: signed here, by IVS, or here while a key is active."""

from __future__ import annotations

import enum


class Mode(enum.StrEnum):
    LOCAL = "local"
    IVS = "ivs"
    #: Local signing while an active key exists, CreateParticipantToken otherwise.
    AUTO = "auto"
