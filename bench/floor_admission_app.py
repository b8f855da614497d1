"""The token route's floor for bench/floor.py: Litestar, the admission script, a signature.

What no design of `POST /v1/participant-tokens` can leave out: the one Redis script call
that refuses banned users, decides the three rate limits and stores the mapping record
(the service's own script, through its own `RedisGate`), and one ES384 signature. No
authentication, policy, metrics or logging: the service's CPU per token can only be
above this app's. It signs as the service does (`tokens/compact_jws.py`).
"""

from __future__ import annotations

import os
import secrets
import time

from cryptography.hazmat.primitives.asymmetric import ec
from floor_apps import TokenBody, floor_record
from litestar import Litestar, post

from token_service.admission.gate import RedisGate
from token_service.admission.ratelimit import RateLimits
from token_service.domain import Rate
from token_service.infra.lane import RedisLane
from token_service.infra.redis import build_redis
from token_service.mapping.store import RedisMappingStore
from token_service.tokens.compact_jws import encode_es384


class _Floor:
    """What the service's token route cannot do without: the admission script, a signature.

    Built lazily on the first request, inside the worker (a Redis pool belongs to the
    event loop that uses it).
    """

    def __init__(self) -> None:
        self.ready = False
        self.gate: RedisGate
        self.rates: RateLimits
        self.key: ec.EllipticCurvePrivateKey
        self.served = 0

    def build(self) -> None:
        url = os.environ["FLOOR_REDIS_URL"]
        client = build_redis(url)
        store = RedisMappingStore(client, retention_seconds=86_400)
        # As the service: the script call over the lane (token_service/infra/lane.py).
        self.gate = RedisGate(client, store, retention_seconds=86_400, lane=RedisLane(url))
        high = Rate(count=1_000_000, period_seconds=1)
        self.rates = RateLimits(user=high, ip=high, stage=high)
        self.key = ec.generate_private_key(ec.SECP384R1())
        self.ready = True


_floor = _Floor()


@post("/v1/participant-tokens", status_code=201)
async def admit_and_sign(data: TokenBody) -> dict[str, str]:
    """One admission script call (bans, three limits, the mapping record), one signature."""
    if not _floor.ready:
        _floor.build()
    _floor.served += 1
    user = f"user-{_floor.served % 2000}"
    now = int(time.time())
    participant_id = secrets.token_urlsafe(9)
    limits = _floor.rates.for_request(
        user_key=user, ip_subject="127.0.0.1", stage_arn=data.stage_arn
    )
    record = floor_record(
        participant_id,
        user,
        data.stage_arn,
        capability="PUBLISH",
        signer="local",
        key_arn="arn:aws:ivs:us-east-1:123456789012:public-key/AbCdEfGhIjKl",
    )
    admission = await _floor.gate.admit(
        limits, issuer=None, user_id=user, stage_arn=data.stage_arn, record=record
    )
    if not admission.admitted:
        raise RuntimeError("the floor's limits are set far above any load")
    claims = {
        "exp": now + 3600,
        "iat": now,
        "jti": participant_id,
        "resource": data.stage_arn,
        "topic": data.stage_arn.rsplit("/", 1)[-1],
        "events_url": "wss://global.events.live-video.net",
        "whip_url": "https://453fdfd2ad24df.global-bm.whip.live-video.net",
        "user_id": user,
        "capabilities": {"allow_publish": True},
        "version": "1.0",
    }
    # Signed as the service signs (tokens/compact_jws.py).
    token = encode_es384(claims, _floor.key, "k")
    return {"token": token, "participantId": participant_id, "stageArn": data.stage_arn}


def litestar_admission_app() -> Litestar:
    """One-route Litestar doing the service's one Redis script call and one signature."""
    return Litestar([admit_and_sign], debug=False, logging_config=None, openapi_config=None)
