// Backoff timing, decided without a service: the delays themselves, then the waits between
// tries on a manual clock. The service's real 429 is met in token-source.test.ts; here a
// stand-in for fetch answers 503s and 429s so that each wait can be measured exactly.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  createTokenSource,
  parseRetryAfter,
  retryDelayMs,
  TokenServiceError,
  type RetryOptions,
} from "@ivs-token-service/web";

import { ManualClock, settled } from "./support/clock.js";

const RETRY: Required<RetryOptions> = {
  maxAttempts: 6,
  baseDelayMs: 500,
  maxDelayMs: 4_000,
  random: () => 0.999_999,
};

function refusal(status: number, retryAfterSeconds?: number, type?: string): TokenServiceError {
  return new TokenServiceError({ status, title: "refused", retryAfterSeconds, type });
}

test("without Retry-After the wait doubles from the base delay, up to the cap", () => {
  const waits = [1, 2, 3, 4, 5].map((attempt) => retryDelayMs(refusal(503), attempt, RETRY));
  assert.deepEqual(waits, [499, 999, 1_999, 3_999, 3_999]);
});

test("the wait is jittered: uniformly random below the exponential ceiling", () => {
  const low = retryDelayMs(refusal(429), 3, { ...RETRY, random: () => 0 });
  const middle = retryDelayMs(refusal(429), 3, { ...RETRY, random: () => 0.5 });
  assert.deepEqual([low, middle], [0, 1_000]);
});

test("Retry-After decides the wait when the service gives one", () => {
  assert.equal(retryDelayMs(refusal(429, 3), 1, RETRY), 3_000);
});

test("a Retry-After beyond the longest wait is not waited for", () => {
  assert.equal(retryDelayMs(refusal(429, 3_600), 1, RETRY), undefined);
});

test("no retry once the attempts are spent", () => {
  assert.equal(retryDelayMs(refusal(503), 6, RETRY), undefined);
});

test("refusals that another try cannot change are not retried", () => {
  for (const status of [400, 401, 403, 404, 409, 413, 415]) {
    assert.equal(retryDelayMs(refusal(status), 1, RETRY), undefined, String(status));
  }
});

test("an exchange that lost a race to another change is retried", () => {
  const raced = refusal(409, undefined, "https://ivs-token-service.dev/problems/changed-concurrently");
  assert.equal(typeof retryDelayMs(raced, 1, RETRY), "number");
});

test("a network failure is retried", () => {
  assert.equal(typeof retryDelayMs(new TypeError("fetch failed"), 1, RETRY), "number");
});

test("Retry-After is read as seconds or as an HTTP date from now", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("7", now), 7);
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:42 GMT", now), 42);
  assert.equal(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter("soon", now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

// ---------------------------------------------------------------- waits between tries

const ISSUED = {
  token: "header.claims.signature",
  participantId: "p1",
  userId: "u1",
  stageArn: "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456",
  capabilities: ["SUBSCRIBE"],
  attributes: {},
  durationMinutes: 60,
  expirationTime: new Date(Date.now() + 3_600_000).toISOString(),
  signer: "local",
  keyArn: null,
};

/** Answers the given responses in turn, noting the clock's time of each request. */
function scripted(clock: ManualClock, answers: Array<() => Response>): { fetch: typeof fetch; times: number[] } {
  const times: number[] = [];
  const fetchStandIn: typeof fetch = async () => {
    times.push(clock.now());
    const next = answers.shift();
    if (next === undefined) throw new Error("more requests than answers");
    return next();
  };
  return { fetch: fetchStandIn, times };
}

const problem = (status: number, headers: Record<string, string> = {}) => () =>
  new Response(JSON.stringify({ type: "about:blank", title: "refused", status, detail: "try later" }), {
    status,
    headers: { "Content-Type": "application/problem+json", ...headers },
  });
const issued = () => () => new Response(JSON.stringify(ISSUED), { status: 201 });

/** Runs the clock forward timer by timer until `promise` settles. */
async function runUntilSettled<T>(clock: ManualClock, promise: Promise<T>): Promise<T> {
  let done = false;
  const watched = promise.finally(() => {
    done = true;
  });
  watched.catch(() => undefined);
  for (let i = 0; i < 100 && !done; i += 1) {
    await settled();
    const due = clock.nextDue();
    if (!done && due !== undefined && due - clock.now() < 3_600_000 / 2) clock.advance(due - clock.now());
  }
  return watched;
}

function source(clock: ManualClock, fetchStandIn: typeof fetch, retry: RetryOptions = {}) {
  return createTokenSource({
    serviceUrl: "http://service.invalid",
    getAppUserJwt: () => "jwt",
    stageArn: ISSUED.stageArn,
    fetch: fetchStandIn,
    clock,
    autoRefresh: false,
    retry: { random: () => 0.5, ...retry },
  });
}

test("a 503 with Retry-After is tried again exactly that many seconds later", async () => {
  const clock = new ManualClock();
  const { fetch: f, times } = scripted(clock, [problem(503, { "Retry-After": "2" }), issued()]);
  const token = await runUntilSettled(clock, source(clock, f).getToken());
  assert.equal(token.participantId, "p1");
  assert.deepEqual(times.map((t) => t - (times[0] ?? 0)), [0, 2_000]);
});

test("429s without Retry-After are tried again after jittered, growing waits", async () => {
  const clock = new ManualClock();
  const { fetch: f, times } = scripted(clock, [problem(429), problem(429), problem(429), issued()]);
  await runUntilSettled(clock, source(clock, f, { baseDelayMs: 1_000 }).getToken());
  const waits = times.slice(1).map((t, i) => t - (times[i] ?? 0));
  assert.deepEqual(waits, [500, 1_000, 2_000]);
});

test("after the last attempt the last refusal is thrown", async () => {
  const clock = new ManualClock();
  const { fetch: f, times } = scripted(clock, [problem(503), problem(503), problem(503, { "X-Request-Id": "req-3" })]);
  const error = await runUntilSettled(clock, source(clock, f, { maxAttempts: 3 }).getToken()).catch((e: unknown) => e);
  assert.ok(error instanceof TokenServiceError);
  assert.equal(error.status, 503);
  assert.equal(error.requestId, "req-3");
  assert.equal(times.length, 3);
});

test("closing the source ends a wait between tries", async () => {
  const clock = new ManualClock();
  const { fetch: f, times } = scripted(clock, [problem(503, { "Retry-After": "5" }), issued()]);
  const tokens = source(clock, f);
  const pending = tokens.getToken().catch((e: unknown) => e);
  while (clock.nextDue() === undefined) await settled(); // waiting out the Retry-After
  tokens.close();
  const error = await pending;
  assert.equal((error as Error).name, "TokenSourceClosedError");
  assert.equal(times.length, 1);
  assert.equal(clock.nextDue(), undefined);
});
