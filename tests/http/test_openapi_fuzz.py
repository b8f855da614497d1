"""Schemathesis against the service's own OpenAPI document, every route, with real credentials.

The app is the real composition root (`create_app`) in process over ASGI, with a private
Redis, the IVS emulator (stage lookups and key imports only: local mode signs itself) and a
real signing key. A hook gives each operation the credential it needs: the app user's JWT
for `/v1/...`, the events secret for `/v1/ivs-events`, an admin token for `/admin/...`.

Every check runs on every case: no 5xx, status codes, content types, headers and bodies
(problem+json included) as documented, invalid data refused with 4xx, valid data accepted
unless the documented refusals (404 unknown stage, 403 policy, 409 state, 429 limit) apply.

`make test` tries a few examples per operation (FUZZ_EXAMPLES, default 25); `make fuzz`
runs many more and prints the counts per operation.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import schemathesis
from botocore.config import Config as BotoConfig
from hypothesis import HealthCheck, settings
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.server import EmulatorServer
from schemathesis.generation.case import Case
from schemathesis.python import asgi

from tests.http.conftest import ADMIN_TOKEN, SHARED_SECRET, rotate_key
from tests.support.redis_server import private_redis_server
from token_service.auth import mint_user_token
from token_service.bootstrap.app import create_app
from token_service.config import load_settings
from token_service.policy.loader import PUBLISHER_ROLE
from token_service.policy.model import ATTRIBUTES_MAX_BYTES

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
#: Where `make fuzz` wants the per-operation counts written (JSON), if anywhere.
REPORT = os.environ.get("FUZZ_REPORT")
EVENTS_SECRET = "fuzz-events-secret-" + "e" * 32
USER = "fuzz-user"

#: What JSON Schema cannot say: a ban's `until` must be in the future (else 400).
CONFIG = schemathesis.Config.from_dict(
    {
        "operations": [
            {
                "include-path": "/admin/bans",
                "include-method": "POST",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429"]
                    }
                },
            }
        ]
    }
)

#: (operation, phase, generation mode, status) -> cases that passed every check.
SEEN: Counter[tuple[str, str, str, int]] = Counter()
#: operation -> seconds spent calling and checking it.
SECONDS: Counter[str] = Counter()


class Fixture:
    """What the hooks need to aim some cases at real things (a stage, a participant, a key)."""

    def __init__(self, stage_arn: str, participant_id: str, key_name: str) -> None:
        self.stage_arn = stage_arn
        self.participant_id = participant_id
        self.key_name = key_name


@pytest.fixture(scope="module")
def fuzz_target(
    tmp_path_factory: pytest.TempPathFactory, emulator_boto3_session: boto3.session.Session
) -> Iterator[tuple[schemathesis.BaseSchema, Fixture]]:
    emulator = EmulatorServer(options=EmulatorOptions()).start()
    try:
        with private_redis_server() as redis_url:
            ivs_client = emulator_boto3_session.client(
                "ivs-realtime",
                endpoint_url=emulator.url,
                config=BotoConfig(retries={"total_max_attempts": 1}),
            )
            keys_dir = tmp_path_factory.mktemp("fuzz") / "keys"
            key = rotate_key(ivs_client, keys_dir)
            stage_arn = str(ivs_client.create_stage(name="fuzz")["stage"]["arn"])
            app_settings = load_settings(
                {
                    "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator.url,
                    "TOKEN_SERVICE_AWS_REGION": "us-east-1",
                    "TOKEN_SERVICE_KEYS_DIR": str(keys_dir),
                    "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
                    "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
                    "TOKEN_SERVICE_REDIS_URL": redis_url,
                    "TOKEN_SERVICE_EVENTS_SECRET": EVENTS_SECRET,
                    # Limits high enough that most cases reach the issuing code; 429 is
                    # documented and still checked when it happens.
                    "TOKEN_SERVICE_RATE_LIMIT_USER": "100000/second",
                    "TOKEN_SERVICE_RATE_LIMIT_IP": "100000/second",
                    "TOKEN_SERVICE_RATE_LIMIT_STAGE": "100000/second",
                    # The same for admin authentication failures: a locked-out IP's 429
                    # would stand in for the 401 the missing-credentials checks expect.
                    "TOKEN_SERVICE_ADMIN_AUTH_FAILURE_RATE": "100000/second",
                }
            )
            app = create_app(app_settings, ivs_client=ivs_client)
            schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app, config=CONFIG)
            try:
                with asgi.get_client(app) as client:
                    issued = client.post(
                        "/v1/participant-tokens",
                        json={"stageArn": stage_arn},
                        headers={"Authorization": f"Bearer {_user_token()}"},
                    )
                assert issued.status_code == 201, issued.text
                target = Fixture(stage_arn, issued.json()["participantId"], key.name)
                yield _configure(schema, target), target
            finally:
                asgi.shutdown_lifespans()
    finally:
        emulator.stop(wait=False)


def _size(attributes: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items())


def _user_token() -> str:
    return mint_user_token(
        SHARED_SECRET.encode(), sub=USER, roles=[PUBLISHER_ROLE], ttl_seconds=24 * 3600
    )


def _credential(path: str) -> str:
    if path.startswith("/admin"):
        return ADMIN_TOKEN
    if path == "/v1/ivs-events":
        return EVENTS_SECRET
    return _user_token()


def _configure(schema: schemathesis.BaseSchema, target: Fixture) -> schemathesis.BaseSchema:
    @schema.auth()
    class Credentials:
        """The hook that supplies valid credentials: admin, events secret or app user."""

        def get(self, case: Case, context: schemathesis.AuthContext) -> str:
            return _credential(context.operation.path)

        def set(self, case: Case, data: str, context: schemathesis.AuthContext) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    @schema.hook
    def map_case(context: schemathesis.HookContext, case: Case) -> Case:
        """Aim half the fully valid cases at things that exist, so success paths run too."""
        if case.meta is None or case.meta.generation.mode.is_negative:
            return case
        # Half of them, chosen from the case itself: strategies must not draw from `random`.
        if zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode()) % 2:
            return case
        params = dict(case.path_parameters or {})
        if "participantId" in params:
            params["participantId"] = target.participant_id
        if "name" in params:
            params["name"] = target.key_name
        case.path_parameters = params
        if isinstance(case.query, dict) and "stageArn" in case.query:
            case.query = {**case.query, "stageArn": target.stage_arn}
        if isinstance(case.body, dict) and "stageArn" in case.body:
            case.body = {**case.body, "stageArn": target.stage_arn}
        return case

    @schema.hook("map_case")
    def fit_attributes(context: schemathesis.HookContext, case: Case) -> Case:
        """Valid attributes take at most 1023 bytes of UTF-8 in all: the document says so in
        words, as JSON Schema cannot (the service answers 400, checked by its own tests)."""
        if case.meta is None or case.meta.generation.mode.is_negative:
            return case
        attributes = case.body.get("attributes") if isinstance(case.body, dict) else None
        if isinstance(attributes, dict):
            kept: dict[str, str] = {}
            for key, value in attributes.items():
                if _size({**kept, key: value}) <= ATTRIBUTES_MAX_BYTES:
                    kept[key] = value
            case.body = {**case.body, "attributes": kept}
        return case

    return schema


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_target: tuple[schemathesis.BaseSchema, Fixture]) -> schemathesis.BaseSchema:
    return fuzz_target[0]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: Case) -> None:
    started = time.perf_counter()
    response = case.call_and_validate()
    label = case.operation.label
    phase = case.meta.phase.name.value if case.meta is not None else "explicit"
    mode = case.meta.generation.mode.value if case.meta is not None else "positive"
    SEEN[(label, phase, mode, response.status_code)] += 1
    SECONDS[label] += time.perf_counter() - started


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    """After the module: cases per operation and status on stdout (`make fuzz` shows it),
    and as JSON in FUZZ_REPORT when set."""
    yield
    operations = sorted({key[0] for key in SEEN})
    rows = []
    for operation in operations:
        seen = {k: n for k, n in SEEN.items() if k[0] == operation}
        statuses = Counter[int]()
        for (_, _, _, status), n in seen.items():
            statuses[status] += n
        rows.append(
            {
                "operation": operation,
                "cases": sum(seen.values()),
                "positive": sum(n for k, n in seen.items() if k[2] == "positive"),
                "negative": sum(n for k, n in seen.items() if k[2] == "negative"),
                "statuses": dict(sorted(statuses.items())),
                "seconds": round(SECONDS[operation], 1),
            }
        )
    print(f"\nschemathesis: {sum(SEEN.values())} cases passed every check")
    for row in rows:
        print(
            f"{row['operation']:<60} {row['cases']:>6} cases "
            f"({row['positive']} positive, {row['negative']} negative) "
            f"statuses {row['statuses']} {row['seconds']} s"
        )
    if REPORT:
        Path(REPORT).write_text(json.dumps(rows, indent=2) + "\n")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    request.node._nodeid = request.node.nodeid
