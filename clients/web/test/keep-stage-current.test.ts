// keepStageCurrent with the real service's tokens and a stand-in for the IVS web SDK's
// Stage that records what it is handed (a real Stage needs a browser and IVS to join).
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";

import { createTokenSource, keepStageCurrent, type Capability } from "@ivs-token-service/web";

import { ManualClock, settled } from "./support/clock.js";
import { ADMIN_TOKEN, appUserJwt, claimsOf, SERVICE_URL, setPublish, STAGE_ARN, uniqueUser } from "./support/service.js";

/** Records each token handed to `exchangeToken`; fails the calls listed in `failing`. */
class RecordingStage {
  readonly exchanged: string[] = [];
  readonly failing = new Set<number>();

  async exchangeToken(token: string): Promise<void> {
    this.exchanged.push(token);
    if (this.failing.has(this.exchanged.length)) throw new Error("the SDK refused the exchange");
  }
}

function joinedViewer(t: TestContext, roles: string[] = [], capabilities: Capability[] = ["SUBSCRIBE"]) {
  const user = uniqueUser("stage");
  const clock = new ManualClock();
  const source = createTokenSource({
    serviceUrl: SERVICE_URL,
    getAppUserJwt: () => appUserJwt(user, roles),
    stageArn: STAGE_ARN,
    capabilities,
    clock,
  });
  t.after(() => source.close());
  return { source, clock, stage: new RecordingStage() };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000 && !condition(); i += 1) await new Promise((r) => setTimeout(r, 5));
  assert.ok(condition(), "timed out waiting");
}

test("each refreshed token is handed to stage.exchangeToken, in order", async (t) => {
  const { source, stage } = joinedViewer(t);
  const first = await source.getToken();
  keepStageCurrent(stage, source);
  const second = await source.refresh();
  const third = await source.refresh();
  await until(() => stage.exchanged.length === 2);
  assert.deepEqual(stage.exchanged, [second.token, third.token]);
  assert.equal(claimsOf(third.token).jti, first.participantId);
});

test("the background refresh ahead of expiry reaches the stage", async (t) => {
  const { source, clock, stage } = joinedViewer(t);
  await source.getToken();
  keepStageCurrent(stage, source);
  clock.advance(59 * 60_000);
  await until(() => stage.exchanged.length === 1);
  assert.equal(stage.exchanged[0], source.current()?.token);
});

test("a promotion reaches the stage and is announced with the capabilities before and after", async (t) => {
  const { source, stage } = joinedViewer(t, ["publisher"]);
  await source.getToken();
  const changes: Array<[Capability[], Capability[]]> = [];
  keepStageCurrent(stage, source, { onCapabilitiesChange: (now, before) => changes.push([now, before]) });
  await source.refresh({ capabilities: ["PUBLISH", "SUBSCRIBE"] });
  await until(() => changes.length === 1);
  assert.deepEqual(changes, [[["PUBLISH", "SUBSCRIBE"], ["SUBSCRIBE"]]]);
  assert.deepEqual(claimsOf(stage.exchanged[0] ?? "").capabilities, { allow_publish: true, allow_subscribe: true });
});

test("the host's PUBLISH grant reaches the viewer's stage at its next refresh", { skip: ADMIN_TOKEN === undefined && "TOKEN_SERVICE_TEST_ADMIN_TOKEN is not set" }, async (t) => {
  const { source, stage } = joinedViewer(t);
  const viewer = await source.getToken();
  const changes: Capability[][] = [];
  keepStageCurrent(stage, source, { onCapabilitiesChange: (now) => changes.push(now) });
  await setPublish(viewer.participantId, true); // the host, through the app's backend
  const token = await source.refresh(); // the viewer's app, told by the app's own signalling
  await until(() => changes.length === 1);
  assert.deepEqual(token.capabilities, ["PUBLISH", "SUBSCRIBE"]);
  assert.deepEqual(changes, [["PUBLISH", "SUBSCRIBE"]]);
});

test("a refresh that keeps the capabilities announces no change", async (t) => {
  const { source, stage } = joinedViewer(t);
  await source.getToken();
  let announced = 0;
  keepStageCurrent(stage, source, { onCapabilitiesChange: () => (announced += 1) });
  await source.refresh();
  await until(() => stage.exchanged.length === 1);
  await settled();
  assert.equal(announced, 0);
});

test("a failed exchangeToken is reported and the next refresh is still handed over", async (t) => {
  const { source, stage } = joinedViewer(t);
  await source.getToken();
  stage.failing.add(1);
  const errors: unknown[] = [];
  keepStageCurrent(stage, source, { onError: (error) => errors.push(error) });
  await source.refresh();
  const next = await source.refresh();
  await until(() => stage.exchanged.length === 2);
  assert.equal(errors.length, 1);
  assert.equal(stage.exchanged[1], next.token);
});

test("the returned function stops the hand-over", async (t) => {
  const { source, stage } = joinedViewer(t);
  await source.getToken();
  const stop = keepStageCurrent(stage, source);
  stop();
  await source.refresh();
  await settled();
  assert.deepEqual(stage.exchanged, []);
});
