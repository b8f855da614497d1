// `npm test`: the client's tests (node --test) against a REAL token service.
//
// With TOKEN_SERVICE_URL set, the tests use that service, and need beside it
//   TOKEN_SERVICE_AUTH_SHARED_SECRET   the HS256 secret it verifies app-user JWTs with
//   TOKEN_SERVICE_TEST_STAGE_ARN       a stage it issues tokens for
// and optionally TOKEN_SERVICE_TEST_ADMIN_TOKEN (the host's PUBLISH grant) and
// TOKEN_SERVICE_TEST_LIMITED_ROLE (a role limited to about 1 token a second: the real 429);
// the tests that need one of these are skipped without it. Its policy must be the default
// one as to capabilities (the role `publisher` may publish, other users only subscribe).
//
// Without TOKEN_SERVICE_URL, this script starts `token-service serve --dev` on a free
// port with a generated secret, admin token and policy (the default policy's rules plus a
// role limited to 1 token a second), hands all of it to the tests, and stops it after.
// The command is TOKEN_SERVICE_COMMAND (split on spaces), else the repository's
// `.venv/bin/python -m token_service`, run from the repository's root so that it is this
// checkout's code that serves.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repository = resolve(packageDir, "../..");
const testDir = join(packageDir, ".test-build", "test");
const LIMITED_ROLE = "rate-limit-probe";
const POLICY = `# The default policy's rules, plus one role limited to one token a second.
[[rules]]
name = "rate-limit probe"
roles = ["${LIMITED_ROLE}"]
capabilities = ["SUBSCRIBE"]
rate_limits = { user = "1/second" }

[[rules]]
name = "publishers"
roles = ["publisher"]
capabilities = ["PUBLISH", "SUBSCRIBE"]

[[rules]]
name = "viewers"
capabilities = ["SUBSCRIBE"]
`;

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Resolves with the banner once its three rules of '=' went by; rejects on an early exit. */
function banner(child, timeoutMs) {
  return new Promise((resolveBanner, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`no banner within ${timeoutMs} ms:\n${text}`)), timeoutMs);
    const onData = (chunk) => {
      text += chunk;
      if ((text.match(/^={20,}$/gm) ?? []).length >= 3) {
        clearTimeout(timer);
        child.stdout.off("data", onData);
        child.stdout.resume(); // keep draining, so a full pipe never blocks the server
        resolveBanner(text);
      }
    };
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`serve --dev exited (${code}) before its banner:\n${text}`));
    });
  });
}

async function healthy(base, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${base}/healthz did not answer 200 in time`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startService() {
  const scratch = mkdtempSync(join(tmpdir(), "ivs-token-client-test-"));
  const policy = join(scratch, "policy.toml");
  writeFileSync(policy, POLICY);
  const port = await freePort();
  const secret = randomBytes(48).toString("base64url");
  const admin = "test-admin-" + randomBytes(24).toString("base64url");
  const command = process.env.TOKEN_SERVICE_COMMAND?.trim().split(/\s+/) ?? [
    join(repository, ".venv", "bin", "python"),
    "-m",
    "token_service",
  ];
  const [program, ...args] = command;
  const child = spawn(program, [...args, "serve", "--dev", "--port", String(port)], {
    cwd: repository,
    stdio: ["ignore", "pipe", "inherit"],
    env: {
      ...process.env,
      TOKEN_SERVICE_AUTH_SHARED_SECRET: secret,
      TOKEN_SERVICE_ADMIN_TOKENS: admin,
      TOKEN_SERVICE_POLICY_FILE: policy,
      TOKEN_SERVICE_REDIS_URL: "",
      TOKEN_SERVICE_LOG_LEVEL: "WARNING",
      // Generous: only the probe role's own limit is under test.
      TOKEN_SERVICE_RATE_LIMIT_USER: "600/minute",
      TOKEN_SERVICE_RATE_LIMIT_IP: "6000/minute",
    },
  });
  const stop = () => {
    child.kill("SIGTERM");
    rmSync(scratch, { recursive: true, force: true });
  };
  try {
    const text = await banner(child, 60_000);
    const stage = text.match(/demo stage\s+(arn:\S+)/);
    if (stage === null) throw new Error(`no demo stage in the banner:\n${text}`);
    const base = `http://127.0.0.1:${port}`;
    await healthy(base, 30_000);
    return {
      stop,
      child,
      env: {
        TOKEN_SERVICE_URL: base,
        TOKEN_SERVICE_AUTH_SHARED_SECRET: secret,
        TOKEN_SERVICE_TEST_STAGE_ARN: stage[1],
        TOKEN_SERVICE_TEST_ADMIN_TOKEN: admin,
        TOKEN_SERVICE_TEST_LIMITED_ROLE: LIMITED_ROLE,
      },
    };
  } catch (error) {
    stop();
    throw error;
  }
}

const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : readdirSync(testDir)
      .filter((name) => name.endsWith(".test.js"))
      .sort()
      .map((name) => join(testDir, name));

let service;
if (!process.env.TOKEN_SERVICE_URL) {
  service = await startService();
  console.log(`token service (serve --dev) at ${service.env.TOKEN_SERVICE_URL}`);
}
const tests = spawn(process.execPath, ["--test", ...files], {
  stdio: "inherit",
  env: { ...process.env, ...service?.env },
});
const code = await new Promise((resolveCode) => tests.once("exit", (status, signal) => resolveCode(status ?? (signal ? 1 : 0))));
if (service !== undefined) {
  const exited = new Promise((r) => service.child.once("exit", r));
  service.stop();
  await exited;
}
process.exitCode = code;
