// The real token service the tests run against (scripts/test.mjs starts one unless
// TOKEN_SERVICE_URL names one), and app-user JWTs for it, minted as the app's login would.
import { createHmac, randomUUID } from "node:crypto";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\``);
  return value;
}

export const SERVICE_URL = required("TOKEN_SERVICE_URL");
export const STAGE_ARN = required("TOKEN_SERVICE_TEST_STAGE_ARN");
const SECRET = required("TOKEN_SERVICE_AUTH_SHARED_SECRET");
/** Set when the tests may act as the host's backend (the admin API). */
export const ADMIN_TOKEN = process.env.TOKEN_SERVICE_TEST_ADMIN_TOKEN || undefined;
/** A role the service limits to about one token a second, to meet a real 429. */
export const LIMITED_ROLE = process.env.TOKEN_SERVICE_TEST_LIMITED_ROLE || undefined;

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString("base64url");
}

/** An HS256 app-user JWT signed with the service's shared secret. */
export function appUserJwt(sub: string, roles: string[] = [], ttlSeconds = 600): string {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = { sub, roles, iat: now, exp: now + ttlSeconds, jti: randomUUID() };
  const payload = base64url(JSON.stringify(claims));
  const signature = createHmac("sha256", SECRET).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

/** A user id no other test uses, so that rate limits and participants never mix. */
export function uniqueUser(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

/** The claims of a JWT, read without checking its signature (what the IVS SDK reads). */
export function claimsOf(token: string): Record<string, unknown> {
  const part = token.split(".")[1];
  if (part === undefined) throw new Error("not a JWT");
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
}

/** As the host's backend would: grant or revoke PUBLISH for a participant. */
export async function setPublish(participantId: string, publish: boolean): Promise<void> {
  if (ADMIN_TOKEN === undefined) throw new Error("TOKEN_SERVICE_TEST_ADMIN_TOKEN is not set");
  const response = await fetch(
    `${SERVICE_URL}/admin/participants/${encodeURIComponent(participantId)}/capabilities`,
    {
      method: "POST",
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ publish }),
    },
  );
  if (response.status !== 200) throw new Error(`the admin grant answered ${response.status}`);
}
