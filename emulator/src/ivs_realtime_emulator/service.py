"""One emulator instance: its state, quotas, faults and stats, and the request pipeline.

Framework-free: `app.py` hands it the raw method, path, headers and body, and
sends back the `Answer`. An AWS operation goes through

    route (model) -> SigV4 scope (region) -> injected latency -> quota ->
    injected throttle/error -> input from every location -> validation ->
    handler -> output shaping

and every failure becomes the AWS error botocore expects. State changes happen
only in synchronous code between awaits, so concurrent requests never see a
half-done operation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from botocore.model import OperationModel

from ivs_realtime_emulator import auth, model, persistence
from ivs_realtime_emulator.errors import AwsError, throttled
from ivs_realtime_emulator.exchange import exchange, parse_exchange_request
from ivs_realtime_emulator.faults import FaultSpecError, FaultTable, parse_fault_request
from ivs_realtime_emulator.ingest import IngestRejected, parse_ingest_request, simulate
from ivs_realtime_emulator.join import JoinRejected, join, parse_join_request
from ivs_realtime_emulator.operations import MUTATING, OperationContext, handlers
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.quotas import RateLimiter
from ivs_realtime_emulator.state import EmulatorState
from ivs_realtime_emulator.stats import Stats
from ivs_realtime_emulator.tokens import InternalIssuer

logger = logging.getLogger(__name__)

_JSON = "application/json"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, independent of the web framework."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


def _emulator_error(status: int, reason: str, message: str) -> Answer:
    return Answer(status, {"reason": reason, "message": message})


class EmulatorService:
    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.state = self._initial_state(options)
        self.stats = Stats()
        self.faults = FaultTable(options.faults, seed=options.fault_seed)
        self.limiter = RateLimiter(enabled=options.quotas_enabled)
        self._handlers = handlers()

    @staticmethod
    def _initial_state(options: EmulatorOptions) -> EmulatorState:
        if options.state_file is not None:
            loaded = persistence.load(options.state_file)
            if loaded is not None:
                if loaded.account_id != options.account_id:
                    raise persistence.StateFileError(
                        f"state file {options.state_file} belongs to account "
                        f"{loaded.account_id}, not {options.account_id}"
                    )
                return loaded
        return EmulatorState(options.account_id, InternalIssuer.generate())

    def _save(self) -> None:
        if self.options.state_file is not None:
            persistence.save(self.state, self.options.state_file)

    # ------------------------------------------------------------ AWS operations

    async def handle_aws(
        self, method: str, raw_path: str, query_string: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        """Serve one request of the IVS real-time wire protocol; `headers` in lower case."""
        request_id = str(uuid.uuid4())
        found = model.match_route(method, raw_path)
        if found is None:
            path = raw_path.split("?", 1)[0]
            unknown = AwsError(
                "UnknownOperationException", f"No ivs-realtime operation answers {method} {path}"
            )
            return self._aws_error(unknown, request_id)
        operation, labels = found
        name = operation.name
        self.stats.called(name)
        try:
            answer = await self._run(
                name=name,
                operation=operation,
                labels=labels,
                query_string=query_string,
                headers=headers,
                body=body,
            )
        except AwsError as error:
            if error.code == "ThrottlingException":
                self.stats.throttled(name)
            else:
                self.stats.failed(name)
            return self._aws_error(error, request_id)
        except Exception:  # any bug answers as AWS's own 500, never a framework page
            logger.exception("emulator failed on %s", name)
            self.stats.failed(name)
            failure = AwsError("InternalServerException", "The emulator failed unexpectedly")
            return self._aws_error(failure, request_id)
        answer.headers["x-amzn-RequestId"] = request_id
        return answer

    async def _run(
        self,
        *,
        name: str,
        operation: OperationModel,
        labels: dict[str, str],
        query_string: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Answer:
        region = auth.region_of_request(headers)
        handler = self._handlers.get(name)
        if handler is None:
            raise AwsError(
                "NotImplementedException",
                f"{name} is an ivs-realtime operation the emulator does not emulate",
            )
        fault = self.faults.for_operation(name)
        if fault is not None and fault.latency_ms > 0:
            await asyncio.sleep(fault.latency_ms / 1000)
        # From here to the return there is no await: the operation is atomic.
        if not self.limiter.allow(region, name, time.monotonic()):
            limit = self.limiter.limit_of(name)
            raise throttled(f"Rate exceeded: {name} allows {limit} requests per second")
        if fault is not None and self.faults.hits(fault.throttle_rate):
            raise throttled(f"Rate exceeded (injected fault on {name})")
        self.stats.accepted(name, time.monotonic())
        if fault is not None and self.faults.hits(fault.error_rate):
            raise AwsError(fault.error, f"Injected fault: {fault.error} on {name}")
        query = parse_qs(query_string, keep_blank_values=True)
        params = model.extract_params(operation, labels, query, headers, body)
        model.validate_input(operation, params)
        context = OperationContext(
            state=self.state,
            region=self.state.region(region),
            now=datetime.now(UTC),
            composition_idle_timeout=timedelta(
                seconds=self.options.composition_idle_timeout_seconds
            ),
        )
        output = handler(context, params)
        if name in MUTATING:
            self._save()
        return Answer(200, model.shape_output(operation.output_shape, output))

    @staticmethod
    def _aws_error(error: AwsError, request_id: str) -> Answer:
        status = error.status or model.error_status(error.code)
        return Answer(
            status,
            model.error_body(error.code, error.message),
            {"x-amzn-ErrorType": error.code, "x-amzn-RequestId": request_id},
        )

    # ------------------------------------------------------------ emulator routes

    def join(self, body: bytes) -> Answer:
        try:
            token = parse_join_request(body)
            joined = join(self.state, token, datetime.now(UTC))
        except JoinRejected as rejected:
            return _emulator_error(rejected.status, rejected.reason, rejected.message)
        self._save()
        return Answer(200, joined.to_json())

    def exchange(self, body: bytes) -> Answer:
        try:
            token, participant_id = parse_exchange_request(body)
            exchanged = exchange(self.state, token, datetime.now(UTC), participant_id)
        except JoinRejected as rejected:
            return _emulator_error(rejected.status, rejected.reason, rejected.message)
        self._save()
        return Answer(200, exchanged.to_json())

    def ingest(self, body: bytes) -> Answer:
        """An RTMP(S) encoder starts or stops publishing with an ingest configuration's key."""
        try:
            stream_key, action, protocol = parse_ingest_request(body)
            result = simulate(self.state, stream_key, action, protocol, datetime.now(UTC))
        except IngestRejected as rejected:
            return _emulator_error(rejected.status, rejected.reason, rejected.message)
        self._save()
        return Answer(200, result)

    def set_faults(self, body: bytes) -> Answer:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return _emulator_error(400, "invalid_request", "the body must be JSON")
        try:
            operation, spec = parse_fault_request(
                document, model.operation_names(), model.error_codes()
            )
        except FaultSpecError as error:
            return _emulator_error(400, "invalid_request", str(error))
        self.faults.set(operation, spec)
        return Answer(200, {"operation": operation, **spec.to_json()})

    def clear_faults(self) -> Answer:
        self.faults.clear()
        return Answer(200, {"faults": {}})

    def get_faults(self) -> Answer:
        return Answer(200, {"faults": self.faults.snapshot()})

    def get_stats(self) -> Answer:
        return Answer(200, self.stats.snapshot())
