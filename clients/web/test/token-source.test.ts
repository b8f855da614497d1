// createTokenSource against the real service: issue, cache, refresh through the exchange
// route, promotion, a real 429 waited out, and the service's refusals as typed errors.
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";

import {
  createTokenSource,
  TokenServiceError,
  TokenSourceClosedError,
  type ParticipantToken,
  type TokenSourceOptions,
} from "@ivs-token-service/web";

import { ManualClock } from "./support/clock.js";
import { watchedFetch } from "./support/fetch.js";
import {
  appUserJwt,
  claimsOf,
  LIMITED_ROLE,
  SERVICE_URL,
  STAGE_ARN,
  uniqueUser,
} from "./support/service.js";

const ISSUE = "/v1/participant-tokens";

/** A source for a new user on the test stage, on a manual clock, closed after the test. */
function sourceFor(
  t: TestContext,
  roles: string[],
  options: Partial<TokenSourceOptions> = {},
): { source: ReturnType<typeof createTokenSource>; clock: ManualClock; seen: ReturnType<typeof watchedFetch>["seen"] } {
  const user = uniqueUser("web-client");
  const clock = new ManualClock();
  const watched = watchedFetch(() => clock.now());
  const source = createTokenSource({
    serviceUrl: SERVICE_URL,
    getAppUserJwt: () => appUserJwt(user, roles),
    stageArn: STAGE_ARN,
    fetch: watched.fetch,
    clock,
    ...options,
  });
  t.after(() => source.close());
  return { source, clock, seen: watched.seen };
}

function nextRefresh(source: ReturnType<typeof createTokenSource>): Promise<[ParticipantToken, ParticipantToken]> {
  return new Promise((resolve) => {
    const stop = source.onRefresh((token, previous) => {
      stop();
      resolve([token, previous]);
    });
  });
}

/** How long until the source's refresh timer fires (ms). */
function refreshDueIn(clock: ManualClock): number {
  return (clock.nextDue() ?? Number.NaN) - clock.now();
}

/** The service writes `expirationTime` in whole seconds: expiry is known to within one. */
function assertAbout(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) <= 1_000, `${actual} is not about ${expected}`);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

test("getToken issues a participant token for the stage with the capabilities asked for", async (t) => {
  const { source, seen } = sourceFor(t, ["publisher"], { capabilities: ["PUBLISH", "SUBSCRIBE"] });
  const token = await source.getToken();
  assert.deepEqual(
    seen.map((s) => [s.method, s.path, s.status]),
    [["POST", ISSUE, 201]],
  );
  assert.equal(token.stageArn, STAGE_ARN);
  assert.deepEqual(token.capabilities, ["PUBLISH", "SUBSCRIBE"]);
  assert.equal(claimsOf(token.token).jti, token.participantId);
});

test("getToken answers from the cache while the token is fresh", async (t) => {
  const { source, clock, seen } = sourceFor(t, []);
  const first = await source.getToken();
  clock.advance(30 * 60_000); // half of the default 60 minutes
  const second = await source.getToken();
  assert.equal(second, first);
  assert.equal(seen.length, 1);
});

test("concurrent getToken calls share one request", async (t) => {
  const { source, seen } = sourceFor(t, []);
  const [a, b, c] = await Promise.all([source.getToken(), source.getToken(), source.getToken()]);
  assert.equal(a, b);
  assert.equal(b, c);
  assert.equal(seen.length, 1);
});

test("the token is refreshed through the exchange route ahead of expiry, same participant", async (t) => {
  const { source, clock, seen } = sourceFor(t, [], { durationMinutes: 60, refreshLeadSeconds: 300 });
  const first = await source.getToken();
  assertAbout(refreshDueIn(clock), 55 * 60_000); // five minutes before expiry
  const refreshed = nextRefresh(source);
  clock.advance(55 * 60_000);
  const [token, previous] = await refreshed;
  assert.equal(previous, first);
  assert.equal(token.participantId, first.participantId);
  assert.notEqual(token.token, first.token);
  assert.deepEqual(seen.at(-1), {
    method: "POST",
    path: `${ISSUE}/${first.participantId}/exchange`,
    status: 200,
    retryAfter: null,
    at: clock.now(),
  });
  assert.equal(await source.getToken(), token);
});

test("a short token is refreshed half way through, not in a loop", async (t) => {
  const { source, clock, seen } = sourceFor(t, [], { durationMinutes: 1, refreshLeadSeconds: 120 });
  await source.getToken();
  assertAbout(refreshDueIn(clock), 30_000);
  const refreshed = nextRefresh(source);
  clock.advance(30_000);
  await refreshed;
  assert.equal(seen.length, 2);
});

test("getToken past the refresh time exchanges the token when background refresh is off", async (t) => {
  const { source, clock, seen } = sourceFor(t, [], { autoRefresh: false, durationMinutes: 10 });
  const first = await source.getToken();
  clock.advance(9 * 60_000);
  const second = await source.getToken();
  assert.equal(second.participantId, first.participantId);
  assert.deepEqual(
    seen.map((s) => s.path),
    [ISSUE, `${ISSUE}/${first.participantId}/exchange`],
  );
});

test("a refresh keeps the capabilities and attributes the source asked for", async (t) => {
  const { source } = sourceFor(t, ["publisher"], {
    capabilities: ["SUBSCRIBE"],
    attributes: { displayName: "Sam" },
  });
  await source.getToken();
  const token = await source.refresh();
  assert.deepEqual(token.capabilities, ["SUBSCRIBE"]);
  assert.deepEqual(token.attributes, { displayName: "Sam" });
});

test("refresh with new capabilities promotes the participant without a new participant id", async (t) => {
  const { source } = sourceFor(t, ["publisher"], { capabilities: ["SUBSCRIBE"] });
  const first = await source.getToken();
  const promoted = await source.refresh({ capabilities: ["PUBLISH", "SUBSCRIBE"] });
  assert.equal(promoted.participantId, first.participantId);
  assert.deepEqual(promoted.capabilities, ["PUBLISH", "SUBSCRIBE"]);
  assert.equal(source.current(), promoted);
});

test("a 429 is waited out for as long as Retry-After says, then the token arrives", { skip: LIMITED_ROLE === undefined && "TOKEN_SERVICE_TEST_LIMITED_ROLE is not set" }, async (t) => {
  // The real service and the real clock: this role may have one token a second.
  const user = uniqueUser("eager");
  const watched = watchedFetch();
  const options = {
    serviceUrl: SERVICE_URL,
    getAppUserJwt: () => appUserJwt(user, [LIMITED_ROLE ?? ""]),
    stageArn: STAGE_ARN,
    fetch: watched.fetch,
  };
  const first = createTokenSource(options);
  const second = createTokenSource(options);
  t.after(() => {
    first.close();
    second.close();
  });
  await first.getToken();
  const token = await second.getToken();
  const [, refused, admitted] = watched.seen;
  assert.equal(refused?.status, 429);
  assert.match(refused?.retryAfter ?? "", /^\d+$/);
  assert.equal(admitted?.status, 201);
  const waited = (admitted?.at ?? 0) - (refused?.at ?? 0);
  assert.ok(waited >= Number(refused?.retryAfter) * 1000 - 50, `retried after ${waited} ms`);
  assert.equal(token.userId, user);
});

test("a Retry-After longer than the longest wait is thrown at once, with its seconds", { skip: LIMITED_ROLE === undefined && "TOKEN_SERVICE_TEST_LIMITED_ROLE is not set" }, async (t) => {
  const user = uniqueUser("impatient");
  const watched = watchedFetch();
  const options = {
    serviceUrl: SERVICE_URL,
    getAppUserJwt: () => appUserJwt(user, [LIMITED_ROLE ?? ""]),
    stageArn: STAGE_ARN,
    fetch: watched.fetch,
    retry: { maxDelayMs: 100 },
  };
  const first = createTokenSource(options);
  const second = createTokenSource(options);
  t.after(() => {
    first.close();
    second.close();
  });
  await first.getToken();
  const error = await rejection(second.getToken());
  assert.ok(error instanceof TokenServiceError);
  assert.equal(error.status, 429);
  assert.equal(error.retryAfterSeconds, Number(watched.seen[1]?.retryAfter));
  assert.equal(watched.seen.length, 2);
});

test("a capability the policy refuses is a TokenServiceError 403 naming the rule", async (t) => {
  const { source } = sourceFor(t, [], { capabilities: ["PUBLISH"] });
  const error = await rejection(source.getToken());
  assert.ok(error instanceof TokenServiceError);
  assert.equal(error.status, 403);
  assert.match(error.detail, /PUBLISH/);
  assert.equal(typeof error.rule, "string");
  assert.match(error.requestId ?? "", /\S/);
});

test("an invalid app-user JWT is a TokenServiceError 401 with the service's request id", async (t) => {
  const { source, seen } = sourceFor(t, [], { getAppUserJwt: () => "not-a-jwt" });
  const error = await rejection(source.getToken());
  assert.ok(error instanceof TokenServiceError);
  assert.equal(error.status, 401);
  assert.equal(error.code, "unauthenticated");
  assert.match(error.requestId ?? "", /\S/);
  assert.equal(seen.length, 1); // a refusal, not a failure that passes: no retry
});

test("an invalid field is a TokenServiceError 400 listing the field", async (t) => {
  const { source } = sourceFor(t, [], { durationMinutes: 0 });
  const error = await rejection(source.getToken());
  assert.ok(error instanceof TokenServiceError);
  assert.equal(error.status, 400);
  assert.deepEqual(
    error.errors.map((e) => e.field),
    ["durationMinutes"],
  );
});

test("no error message carries a token or the app user's JWT", async (t) => {
  const jwt = appUserJwt(uniqueUser("secretive"), []);
  const { source } = sourceFor(t, [], { getAppUserJwt: () => jwt, capabilities: ["PUBLISH"] });
  const error = await rejection(source.getToken());
  assert.ok(error instanceof TokenServiceError);
  assert.ok(!JSON.stringify({ ...error, message: error.message }).includes(jwt));
  assert.doesNotMatch(error.message, /eyJ/);
});

test("close stops background refresh and later calls reject", async (t) => {
  const { source, clock, seen } = sourceFor(t, []);
  await source.getToken();
  source.close();
  clock.advance(2 * 3600_000);
  assert.equal(clock.nextDue(), undefined);
  assert.equal(seen.length, 1);
  assert.ok((await rejection(source.getToken())) instanceof TokenSourceClosedError);
  assert.ok(source.closed);
});

test("aborting the signal closes the source", async (t) => {
  const controller = new AbortController();
  const { source } = sourceFor(t, [], { signal: controller.signal });
  await source.getToken();
  controller.abort();
  assert.ok(source.closed);
  assert.ok((await rejection(source.refresh())) instanceof TokenSourceClosedError);
});
