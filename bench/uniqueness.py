"""A million tokens through the deployed service: no participant ID issued twice, none unrecorded.

The service as deployed (bench/deployment.py: uvicorn, workers = cores, Redis, limits on
but high, mapping log on) is driven at saturation (closed loop, keep-alive) by separate
load-generator processes until they have received `--tokens` 201s between them. From
each 201 they keep the body's `participantId` and the token's `jti` (its payload
decoded, not verified: the tests check the signatures) and write them to a file.

Then, over every 201 of the run:

- no `participantId` repeats, and no `jti` repeats;
- each token's `jti` is its response's `participantId`;
- every 201 has its mapping record in Redis (`ts:{ts}:p:<participantId>` keys, listed by
  SCAN and compared ID by ID); a record without a 201 is allowed only for a request
  answered 503 (in `deny` mode, a request whose admission script ran in Redis after the
  gate's deadline is refused and its token never signed), so at most one per 503.

Non-201 answers are counted by status and problem detail, with when they happened.

    python bench/uniqueness.py                     # 1,000,000 tokens (make uniqueness)
    python bench/uniqueness.py --tokens 2000 --output /tmp/u.md
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import redis
import uvloop
from deployment import BodyConn, deployed
from run import _requests

from token_service.mapping.records import record_key

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "uniqueness.md"
#: Stop early (and fail) once this many requests were refused: something is wrong.
MAX_ERRORS = 1000


class Issued(msgspec.Struct):
    participantId: str  # noqa: N815 - the wire name
    token: str


class Claims(msgspec.Struct):
    jti: str


class Problem(msgspec.Struct):
    detail: str = ""


# ---------------------------------------------------------------- load generator (own process)


async def _issue(spec: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Closed loop until `tokens` 201s; a "participantId jti" line per 201."""
    reqs = _requests(spec)
    target: int = spec["target"]
    issued = msgspec.json.Decoder(Issued)
    claims = msgspec.json.Decoder(Claims)
    problem = msgspec.json.Decoder(Problem)
    pairs: list[str] = []
    errors: dict[str, int] = {}
    #: "status detail" -> [count, first and last seconds into the run]
    refusals: dict[str, list[float]] = {}
    state = {"inflight": 0, "next_report": time.perf_counter() + 10}
    conns = [await BodyConn.open(spec["port"]) for _ in range(spec["connections"])]
    started = time.perf_counter()

    async def loop(conn: BodyConn, offset: int) -> None:
        i = offset
        while len(pairs) + state["inflight"] < target and sum(errors.values()) < MAX_ERRORS:
            state["inflight"] += 1
            try:
                status, body = await conn.request(reqs[i % len(reqs)])
            finally:
                state["inflight"] -= 1
            i += 7
            if status != 201:
                errors[str(status)] = errors.get(str(status), 0) + 1
                try:
                    why = f"{status} {problem.decode(body).detail}"
                except msgspec.DecodeError:
                    why = f"{status} (no problem document)"
                seen = refusals.setdefault(why, [0, time.perf_counter() - started, 0.0])
                seen[0] += 1
                seen[2] = time.perf_counter() - started
                continue
            answer = issued.decode(body)
            payload = answer.token.split(".")[1]
            jti = claims.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).jti
            pairs.append(f"{answer.participantId} {jti}\n")
            if time.perf_counter() > state["next_report"]:
                state["next_report"] += 10
                elapsed = time.perf_counter() - started
                print(
                    f"  {len(pairs)} tokens in {elapsed:.0f} s ({len(pairs) / elapsed:.0f}/s)",
                    file=sys.stderr,
                    flush=True,
                )

    await asyncio.gather(*(loop(c, i) for i, c in enumerate(conns)))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    result = {"ok": len(pairs), "errors": errors, "refusals": refusals, "seconds": elapsed}
    return result, pairs


def loadgen_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    uvloop.install()
    result, pairs = asyncio.run(_issue(spec))
    Path(spec["ids"]).write_text("".join(pairs))
    print(json.dumps(result))


# ---------------------------------------------------------------- checks


@dataclass
class Checks:
    ok: int
    errors: dict[str, int]
    seconds: float
    unique_ids: int
    unique_jtis: int
    #: 201s whose token's jti is not their participantId.
    jti_mismatches: int
    records: int
    missing_records: int
    extra_records: int
    #: A few participant IDs seen more than once, if any.
    repeated: list[str]
    #: "status detail" -> [count, first and last seconds into the run] of the non-201s.
    refusals: dict[str, list[float]]

    @property
    def unique(self) -> bool:
        """No participant ID or jti issued twice, and each token's jti its participantId."""
        return (
            self.unique_ids == self.ok and self.unique_jtis == self.ok and self.jti_mismatches == 0
        )

    @property
    def recorded(self) -> bool:
        """Every 201 has its record; a record without a 201 only for a request answered 503.

        A request whose admission script ran in Redis but whose reply came after the
        gate's deadline (`TOKEN_SERVICE_REDIS_TIMEOUT_SECONDS`) is refused with 503 and no
        token is signed: its record stays, naming a participant that never got a token.
        """
        return self.missing_records == 0 and self.extra_records <= self.errors.get("503", 0)

    @property
    def passed(self) -> bool:
        return self.unique and self.recorded


def check(id_files: list[Path], results: list[dict[str, Any]], redis_port: int) -> Checks:
    ids: set[str] = set()
    jtis: set[str] = set()
    repeated: list[str] = []
    mismatches = 0
    ok = 0
    for path in id_files:
        with path.open() as handle:
            for line in handle:
                participant_id, jti = line.split()
                ok += 1
                if participant_id in ids and len(repeated) < 10:
                    repeated.append(participant_id)
                ids.add(participant_id)
                jtis.add(jti)
                mismatches += jti != participant_id
    prefix = record_key("")
    with redis.Redis(port=redis_port, decode_responses=True) as client:
        records = {
            key.removeprefix(prefix) for key in client.scan_iter(match=prefix + "*", count=10000)
        }
    errors: dict[str, int] = {}
    refusals: dict[str, list[float]] = {}
    for result in results:
        for status, n in result["errors"].items():
            errors[status] = errors.get(status, 0) + n
        for why, (n, first, last) in result["refusals"].items():
            seen = refusals.setdefault(why, [0, first, last])
            seen[0] += n
            seen[1], seen[2] = min(seen[1], first), max(seen[2], last)
    return Checks(
        ok=ok,
        errors=errors,
        seconds=max(r["seconds"] for r in results),
        unique_ids=len(ids),
        unique_jtis=len(jtis),
        jti_mismatches=mismatches,
        records=len(records),
        missing_records=len(ids - records),
        extra_records=len(records - ids),
        repeated=repeated,
        refusals=refusals,
    )


def report(c: Checks, args: argparse.Namespace, workers: int) -> str:
    refusals = "; ".join(
        f"{n:.0f} x {why} (from {first:.0f} s to {last:.0f} s into the run)"
        for why, (n, first, last) in sorted(c.refusals.items())
    )
    return "\n".join(
        [
            f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {c.ok} tokens: "
            f"no participant ID issued twice: **{'PASS' if c.unique else 'FAIL'}**; "
            f"every 201 recorded: **{'PASS' if c.recorded else 'FAIL'}**",
            "",
            f"- machine: {os.cpu_count()} cores ({platform.machine()}), Python "
            f"{platform.python_version()}; service workers {workers}; {args.loadgens} load "
            f"generator(s) x {args.connections} keep-alive connections, closed loop",
            f"- issued: **{c.ok} tokens (201) in {c.seconds:.0f} s** ({c.ok / c.seconds:.0f}/s); "
            f"non-201: {c.errors or 'none'}" + (f" ({refusals})" if refusals else ""),
            f"- distinct participantId: **{c.unique_ids}**; distinct jti: **{c.unique_jtis}**; "
            f"tokens whose jti is not their participantId: {c.jti_mismatches}"
            + (f"; repeated: {c.repeated}" if c.repeated else ""),
            f"- mapping records in Redis: **{c.records}** (missing for a 201: "
            f"{c.missing_records}; without a 201: {c.extra_records}, allowed up to the "
            f"{c.errors.get('503', 0)} requests answered 503)",
            "",
        ]
    )


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--loadgens", type=int, default=1, help="load-generator processes")
    parser.add_argument("--connections", type=int, default=32, help="per load generator")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--stages", type=int, default=50)
    parser.add_argument("--workers", type=int, default=0, help="default: the core count")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args.loadgen)
        return
    workers = args.workers or os.cpu_count() or 1
    with deployed(workers=workers, users=args.users, stages=args.stages) as d:
        print(f"issuing {args.tokens} tokens with {args.loadgens} load generator(s) ...")
        procs, id_files = [], []
        for n in range(args.loadgens):
            share = args.tokens // args.loadgens + (n < args.tokens % args.loadgens)
            id_files.append(d.workdir / f"ids-{n}.txt")
            spec_path = d.workdir / f"uniqueness-{n}.json"
            spec = {**d.spec, "target": share, "connections": args.connections}
            spec_path.write_text(json.dumps({**spec, "ids": str(id_files[-1])}))
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--loadgen", str(spec_path)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        results = []
        for proc in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"load generator failed ({proc.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
        print("checking participant IDs, jti and the mapping records in Redis ...")
        checks = check(id_files, results, d.redis_port)
    text = report(checks, args, workers)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if not args.output.exists():
        args.output.write_text(
            "# No participant ID issued twice (`make uniqueness`, bench/uniqueness.py)\n\n"
        )
    with args.output.open("a") as handle:
        handle.write(text + "\n")
    if not checks.passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
