/**
 * The browser (and Node) client of the IVS participant token service.
 *
 * `createTokenSource` fetches a participant token for one app user and stage, caches it,
 * refreshes it through the exchange route ahead of its expiry (same participant, no
 * rejoin), backs off on 429/503 as the service asks (`Retry-After`), and turns every
 * refusal into a typed `TokenServiceError`. `keepStageCurrent` hands each refreshed token
 * to an IVS web SDK `Stage` with `stage.exchangeToken(token)`.
 *
 * One self-contained ES module, no dependency: the service's demo page serves this very
 * file. It never logs, and never puts a token in an error message.
 */

import type { components } from "./generated/openapi.js";

type Schemas = components["schemas"];

/** `PUBLISH` or `SUBSCRIBE`. */
export type Capability = Schemas["Capability"];
/** The service's answer carrying a participant token (issue and exchange alike). */
export type ParticipantToken = Schemas["TokenResponseBody"];
/** The body of `POST /v1/participant-tokens`. */
export type TokenRequest = Schemas["TokenRequestBody"];
/** The body of `POST /v1/participant-tokens/{participantId}/exchange`. */
export type ExchangeRequest = Schemas["ExchangeRequestBody"];
/** An RFC 9457 problem document, the body of every error the service answers. */
export type Problem = Schemas["Problem"];
/** One invalid field of a 400 (or the header a 415 names). */
export type FieldProblem = Schemas["FieldProblem"];

export const ISSUE_PATH = "/v1/participant-tokens";

export function exchangePath(participantId: string): string {
  return `${ISSUE_PATH}/${encodeURIComponent(participantId)}/exchange`;
}

// ------------------------------------------------------------------ errors

/**
 * The service refused (any answer but a token): the problem document's fields, the
 * request id to quote to its operators, and how long it asked to wait, if it did.
 */
export class TokenServiceError extends Error {
  override readonly name = "TokenServiceError";
  readonly status: number;
  /** The problem type URI; `code` is its last segment (`rate-limited`, `forbidden`...). */
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  /** The invalid fields of a 400 (`[]` when the service named none). */
  readonly errors: readonly FieldProblem[];
  /** The policy rule that refused a 403, when the service names one. */
  readonly rule: string | undefined;
  /** From the body, else the `X-Request-Id` header. */
  readonly requestId: string | undefined;
  /** From `Retry-After` (seconds, or an HTTP date turned into seconds). */
  readonly retryAfterSeconds: number | undefined;

  constructor(fields: {
    status: number;
    type?: string | undefined;
    title: string;
    detail?: string | undefined;
    errors?: readonly FieldProblem[] | null | undefined;
    rule?: string | null | undefined;
    requestId?: string | null | undefined;
    retryAfterSeconds?: number | undefined;
  }) {
    const detail = fields.detail ?? "";
    super(`${fields.status} ${fields.title}${detail ? `: ${detail}` : ""}`);
    this.status = fields.status;
    this.type = fields.type ?? "about:blank";
    this.title = fields.title;
    this.detail = detail;
    this.errors = fields.errors ?? [];
    this.rule = fields.rule ?? undefined;
    this.requestId = fields.requestId ?? undefined;
    this.retryAfterSeconds = fields.retryAfterSeconds;
  }

  /** The last segment of `type`: `rate-limited`, `changed-concurrently`, ... */
  get code(): string {
    return this.type.slice(this.type.lastIndexOf("/") + 1);
  }

  /**
   * The error a refusal stands for: its problem document (when the body is JSON), else its
   * status line; `X-Request-Id`; `Retry-After` counted from `now` (ms since the epoch).
   * Reads the body.
   */
  static async fromResponse(response: Response, now: number = Date.now()): Promise<TokenServiceError> {
    let body: unknown = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON (a proxy's HTML page, say): the status line is all there is.
    }
    const problem = isProblem(body) ? body : {};
    return new TokenServiceError({
      status: response.status,
      type: typeof problem.type === "string" ? problem.type : undefined,
      title: typeof problem.title === "string" ? problem.title : response.statusText || "HTTP error",
      detail: typeof problem.detail === "string" ? problem.detail : undefined,
      errors: Array.isArray(problem.errors) ? problem.errors : undefined,
      rule: typeof problem.rule === "string" ? problem.rule : undefined,
      requestId:
        (typeof problem.requestId === "string" ? problem.requestId : undefined) ??
        response.headers.get("X-Request-Id"),
      retryAfterSeconds: parseRetryAfter(response.headers.get("Retry-After"), now),
    });
  }
}

/** The source was closed (or its `signal` aborted): no more tokens from it. */
export class TokenSourceClosedError extends Error {
  override readonly name = "TokenSourceClosedError";
  constructor(reason?: unknown) {
    super("the token source is closed", reason === undefined ? undefined : { cause: reason });
  }
}

function isProblem(value: unknown): value is Partial<Problem> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * `Retry-After` in seconds: delta-seconds, or an HTTP date (RFC 9110 10.2.3) counted from
 * `now` (milliseconds since the epoch). Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

// ------------------------------------------------------------------ time

/** Time and timers, injectable so tests need not sleep. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
};

function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new TokenSourceClosedError(signal.reason));
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(new TokenSourceClosedError(signal.reason));
    };
    const handle = clock.setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

// ------------------------------------------------------------------ retries

export interface RetryOptions {
  /** Tries of one request in all, the first included (default 4). */
  maxAttempts?: number;
  /** The first backoff when the service gives no `Retry-After` (default 500 ms). */
  baseDelayMs?: number;
  /**
   * The longest wait between tries (default 30 s). A `Retry-After` longer than this is not
   * waited for: the error is thrown at once, its `retryAfterSeconds` set.
   */
  maxDelayMs?: number;
  /** In [0, 1): the jitter's source (default Math.random). */
  random?: () => number;
}

/** Answers worth another try: rate limited, or the service or IVS briefly unavailable. */
const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);

function isRetryable(error: unknown): boolean {
  if (error instanceof TokenServiceError) {
    // An exchange that lost a race to another change of the participant: retry (api.md).
    return RETRYABLE_STATUSES.has(error.status) || error.code === "changed-concurrently";
  }
  // fetch rejects with a TypeError when the network fails: try again.
  return error instanceof TypeError;
}

/**
 * How long to wait before try `attempt + 1` (attempt counts from 1) after `error`:
 * the service's `Retry-After` when it gave one, else a jittered exponential backoff
 * ("full jitter": uniformly random up to base * 2^(attempt - 1), capped). Undefined: do
 * not retry (not retryable, tries spent, or a `Retry-After` beyond the cap).
 */
export function retryDelayMs(
  error: unknown,
  attempt: number,
  options: Required<RetryOptions>,
): number | undefined {
  if (!isRetryable(error) || attempt >= options.maxAttempts) return undefined;
  const retryAfter = error instanceof TokenServiceError ? error.retryAfterSeconds : undefined;
  if (retryAfter !== undefined) {
    const ms = retryAfter * 1000;
    return ms <= options.maxDelayMs ? ms : undefined;
  }
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(options.random() * ceiling);
}

// ------------------------------------------------------------------ the token source

export interface TokenSourceOptions {
  /** The service's base URL, e.g. `https://tokens.example.com`. */
  serviceUrl: string;
  /** The app user's JWT (your login's), asked for before every request to the service. */
  getAppUserJwt: () => string | Promise<string>;
  stageArn: string;
  /** Omitted: whatever the policy allows this user on this stage. */
  capabilities?: Capability[];
  /** Omitted: the policy's default. */
  durationMinutes?: number;
  /** Sent with the first request and every refresh (an exchange without them drops them). */
  attributes?: Record<string, string>;
  /**
   * Refresh this long before expiry (default 120 s), but never later than half way through
   * the time the token has left, so a short token is not refreshed in a loop.
   */
  refreshLeadSeconds?: number;
  /** Refresh in the background ahead of expiry (default true); else only in getToken(). */
  autoRefresh?: boolean;
  retry?: RetryOptions;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** Default: the system clock and timers. */
  clock?: Clock;
  /** Aborting it closes the source. */
  signal?: AbortSignal;
}

/** What may change at a refresh: a promotion (`capabilities`), new attributes, a lifetime. */
export type TokenChanges = Pick<TokenSourceOptions, "capabilities" | "durationMinutes" | "attributes">;

export type RefreshListener = (token: ParticipantToken, previous: ParticipantToken) => void;
export type ErrorListener = (error: unknown) => void;

export interface TokenSource {
  /** The cached token while it is fresh, else a fresh one (issued, or exchanged). */
  getToken(): Promise<ParticipantToken>;
  /** The latest token, fresh or not, without a request. */
  current(): ParticipantToken | undefined;
  /**
   * Exchange the token now (same participant), with `changes` from here on: a promotion
   * (`{capabilities: ["PUBLISH", "SUBSCRIBE"]}`) once the user may publish, or after the
   * host granted PUBLISH (the service applies the grant to the participant's exchanges).
   */
  refresh(changes?: TokenChanges): Promise<ParticipantToken>;
  /** Called with each token that replaces another (refresh, promotion). Returns an unsubscribe. */
  onRefresh(listener: RefreshListener): () => void;
  /** Called when a background refresh failed (getToken() would throw it). Returns an unsubscribe. */
  onError(listener: ErrorListener): () => void;
  /** Stops refreshing and aborts what is under way; later calls throw TokenSourceClosedError. */
  close(): void;
  readonly closed: boolean;
}

interface Held {
  token: ParticipantToken;
  /** Local clock, ms. */
  expiresAt: number;
  refreshAt: number;
}

const DEFAULT_LEAD_SECONDS = 120;
/** How far the token's `expirationTime` may be from `durationMinutes` after it arrived. */
const CLOCK_SKEW_TOLERANCE_MS = 60_000;

export function createTokenSource(options: TokenSourceOptions): TokenSource {
  return new ServiceTokenSource(options);
}

class ServiceTokenSource implements TokenSource {
  readonly #options: TokenSourceOptions;
  readonly #base: string;
  readonly #fetch: typeof fetch;
  readonly #clock: Clock;
  readonly #retry: Required<RetryOptions>;
  readonly #leadMs: number;
  readonly #abort = new AbortController();
  readonly #refreshListeners = new Set<RefreshListener>();
  readonly #errorListeners = new Set<ErrorListener>();
  #wanted: TokenChanges;
  #held: Held | undefined;
  #inFlight: Promise<ParticipantToken> | undefined;
  #timer: unknown;

  constructor(options: TokenSourceOptions) {
    this.#options = options;
    this.#base = options.serviceUrl.replace(/\/+$/, "");
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#clock = options.clock ?? systemClock;
    this.#retry = {
      maxAttempts: options.retry?.maxAttempts ?? 4,
      baseDelayMs: options.retry?.baseDelayMs ?? 500,
      maxDelayMs: options.retry?.maxDelayMs ?? 30_000,
      random: options.retry?.random ?? Math.random,
    };
    this.#leadMs = (options.refreshLeadSeconds ?? DEFAULT_LEAD_SECONDS) * 1000;
    this.#wanted = definedOnly(options);
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) this.close();
      else signal.addEventListener("abort", () => this.close(), { once: true });
    }
  }

  get closed(): boolean {
    return this.#abort.signal.aborted;
  }

  current(): ParticipantToken | undefined {
    return this.#held?.token;
  }

  getToken(): Promise<ParticipantToken> {
    if (this.closed) return Promise.reject(new TokenSourceClosedError());
    const held = this.#held;
    if (held !== undefined && this.#clock.now() < held.refreshAt) return Promise.resolve(held.token);
    return this.#renew();
  }

  refresh(changes: TokenChanges = {}): Promise<ParticipantToken> {
    if (this.closed) return Promise.reject(new TokenSourceClosedError());
    if (this.#held === undefined) return Promise.reject(new Error("no token yet: call getToken() first"));
    // After the request under way, if any: its answer may predate the changes.
    const previous = this.#inFlight ?? Promise.resolve(this.#held.token);
    return previous
      .catch(() => undefined)
      .then(() => {
        this.#wanted = { ...this.#wanted, ...definedOnly(changes) };
        return this.#renew(true);
      });
  }

  onRefresh(listener: RefreshListener): () => void {
    this.#refreshListeners.add(listener);
    return () => this.#refreshListeners.delete(listener);
  }

  onError(listener: ErrorListener): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  close(): void {
    if (this.closed) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort(this.#options.signal?.reason);
    this.#refreshListeners.clear();
    this.#errorListeners.clear();
  }

  // ---------------------------------------------------------------- internals

  /** One request at a time: callers arriving meanwhile share it (unless forced anew). */
  #renew(force = false): Promise<ParticipantToken> {
    if (this.#inFlight !== undefined && !force) return this.#inFlight;
    const request = this.#obtain().finally(() => {
      if (this.#inFlight === request) this.#inFlight = undefined;
    });
    this.#inFlight = request;
    return request;
  }

  async #obtain(): Promise<ParticipantToken> {
    const previous = this.#held?.token;
    const token =
      previous === undefined
        ? await this.#request(ISSUE_PATH, 201, this.#issueBody())
        : await this.#request(exchangePath(previous.participantId), 200, this.#exchangeBody());
    if (this.closed) throw new TokenSourceClosedError();
    this.#hold(token);
    if (previous !== undefined) {
      for (const listener of [...this.#refreshListeners]) listener(token, previous);
    }
    return token;
  }

  #issueBody(): TokenRequest {
    return { stageArn: this.#options.stageArn, ...this.#exchangeBody() } as TokenRequest;
  }

  /** What is wanted, its undefined fields left out (definedOnly): never sent as null. */
  #exchangeBody(): ExchangeRequest {
    return { ...this.#wanted };
  }

  async #request(path: string, expected: number, body: object): Promise<ParticipantToken> {
    const signal = this.#abort.signal;
    for (let attempt = 1; ; attempt += 1) {
      if (signal.aborted) throw new TokenSourceClosedError(signal.reason);
      let error: unknown;
      try {
        const jwt = await this.#options.getAppUserJwt();
        const response = await this.#fetch(this.#base + path, {
          method: "POST",
          headers: {
            Authorization: `Bearer ${jwt}`,
            "Content-Type": "application/json",
            Accept: "application/json, application/problem+json",
          },
          body: JSON.stringify(body),
          signal,
        });
        if (response.status === expected) return (await response.json()) as ParticipantToken;
        error = await TokenServiceError.fromResponse(response, this.#clock.now());
      } catch (thrown) {
        if (signal.aborted) throw new TokenSourceClosedError(signal.reason);
        error = thrown;
      }
      const delay = retryDelayMs(error, attempt, this.#retry);
      if (delay === undefined) throw error;
      await sleep(this.#clock, delay, signal);
    }
  }

  #hold(token: ParticipantToken): void {
    const now = this.#clock.now();
    const lifetime = token.durationMinutes * 60_000;
    let left = Date.parse(token.expirationTime) - now;
    // A local clock far from the service's would put expiry in the past (a refresh loop)
    // or far off: then the lifetime counts from the answer's arrival instead.
    if (!Number.isFinite(left) || left <= 0 || left > lifetime + CLOCK_SKEW_TOLERANCE_MS) {
      left = lifetime;
    }
    const expiresAt = now + left;
    const refreshAt = expiresAt - Math.min(this.#leadMs, left / 2);
    this.#held = { token, expiresAt, refreshAt };
    this.#schedule(refreshAt - now);
  }

  #schedule(delayMs: number): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#options.autoRefresh === false || this.closed) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#renew().catch((error: unknown) => this.#backgroundFailed(error));
    }, Math.max(0, delayMs));
  }

  #backgroundFailed(error: unknown): void {
    if (this.closed) return;
    for (const listener of [...this.#errorListeners]) listener(error);
    // Still worth trying while the token lives, if the failure may pass: half way to expiry.
    const held = this.#held;
    const left = held === undefined ? 0 : held.expiresAt - this.#clock.now();
    if (isRetryable(error) && left > 2000) this.#schedule(left / 2);
  }
}

/** The changes (or options) given, copied, without the fields left undefined. */
function definedOnly(changes: TokenChanges): TokenChanges {
  const out: TokenChanges = {};
  if (changes.capabilities !== undefined) out.capabilities = [...changes.capabilities];
  if (changes.durationMinutes !== undefined) out.durationMinutes = changes.durationMinutes;
  if (changes.attributes !== undefined) out.attributes = { ...changes.attributes };
  return out;
}

// ------------------------------------------------------------------ the IVS web SDK

/**
 * What `keepStageCurrent` needs of an `amazon-ivs-web-broadcast` `Stage` (1.x): this
 * package does not depend on the SDK, any object with this method will do.
 */
export interface ExchangeableStage {
  exchangeToken(token: string): Promise<void>;
}

export interface KeepStageCurrentOptions {
  /**
   * The token's capabilities changed (a promotion or a demotion). The SDK has already
   * applied them (it unpublishes without PUBLISH and re-runs the strategy); start your
   * camera here and call `stage.refreshStrategy()` once the strategy has streams to publish.
   */
  onCapabilitiesChange?: (capabilities: Capability[], previous: Capability[]) => void;
  /** `stage.exchangeToken` failed (the SDK leaves the stage when IVS refuses the token). */
  onError?: (error: unknown) => void;
}

/**
 * Hands every token that `source` refreshes to `stage.exchangeToken(token)`, in order, one
 * at a time. Call it once the stage is joined. Returns a function that stops it.
 */
export function keepStageCurrent(
  stage: ExchangeableStage,
  source: Pick<TokenSource, "onRefresh">,
  options: KeepStageCurrentOptions = {},
): () => void {
  let queue: Promise<void> = Promise.resolve();
  let stopped = false;
  const unsubscribe = source.onRefresh((token, previous) => {
    queue = queue.then(async () => {
      if (stopped) return;
      try {
        await stage.exchangeToken(token.token);
      } catch (error) {
        options.onError?.(error);
        return;
      }
      if (!sameCapabilities(token.capabilities, previous.capabilities)) {
        options.onCapabilitiesChange?.([...token.capabilities], [...previous.capabilities]);
      }
    });
  });
  return () => {
    stopped = true;
    unsubscribe();
  };
}

function sameCapabilities(a: readonly Capability[], b: readonly Capability[]): boolean {
  return a.length === b.length && a.every((capability) => b.includes(capability));
}
