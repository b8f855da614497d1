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
export const ISSUE_PATH = "/v1/participant-tokens";
export function exchangePath(participantId) {
    return `${ISSUE_PATH}/${encodeURIComponent(participantId)}/exchange`;
}
// ------------------------------------------------------------------ errors
/**
 * The service refused (any answer but a token): the problem document's fields, the
 * request id to quote to its operators, and how long it asked to wait, if it did.
 */
export class TokenServiceError extends Error {
    name = "TokenServiceError";
    status;
    /** The problem type URI; `code` is its last segment (`rate-limited`, `forbidden`...). */
    type;
    title;
    detail;
    /** The invalid fields of a 400 (`[]` when the service named none). */
    errors;
    /** The policy rule that refused a 403, when the service names one. */
    rule;
    /** From the body, else the `X-Request-Id` header. */
    requestId;
    /** From `Retry-After` (seconds, or an HTTP date turned into seconds). */
    retryAfterSeconds;
    constructor(fields) {
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
    get code() {
        return this.type.slice(this.type.lastIndexOf("/") + 1);
    }
    /**
     * The error a refusal stands for: its problem document (when the body is JSON), else its
     * status line; `X-Request-Id`; `Retry-After` counted from `now` (ms since the epoch).
     * Reads the body.
     */
    static async fromResponse(response, now = Date.now()) {
        let body = null;
        try {
            body = await response.json();
        }
        catch {
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
            requestId: (typeof problem.requestId === "string" ? problem.requestId : undefined) ??
                response.headers.get("X-Request-Id"),
            retryAfterSeconds: parseRetryAfter(response.headers.get("Retry-After"), now),
        });
    }
}
/** The source was closed (or its `signal` aborted): no more tokens from it. */
export class TokenSourceClosedError extends Error {
    name = "TokenSourceClosedError";
    constructor(reason) {
        super("the token source is closed", reason === undefined ? undefined : { cause: reason });
    }
}
function isProblem(value) {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}
/**
 * `Retry-After` in seconds: delta-seconds, or an HTTP date (RFC 9110 10.2.3) counted from
 * `now` (milliseconds since the epoch). Undefined when absent or unreadable.
 */
export function parseRetryAfter(value, now) {
    if (value === null)
        return undefined;
    const text = value.trim();
    if (/^\d+$/.test(text))
        return Number(text);
    const date = Date.parse(text);
    if (Number.isNaN(date))
        return undefined;
    return Math.max(0, Math.ceil((date - now) / 1000));
}
export const systemClock = {
    now: () => Date.now(),
    setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle),
};
function sleep(clock, ms, signal) {
    return new Promise((resolve, reject) => {
        if (signal.aborted) {
            reject(new TokenSourceClosedError(signal.reason));
            return;
        }
        const onAbort = () => {
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
/** Answers worth another try: rate limited, or the service or IVS briefly unavailable. */
const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);
function isRetryable(error) {
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
export function retryDelayMs(error, attempt, options) {
    if (!isRetryable(error) || attempt >= options.maxAttempts)
        return undefined;
    const retryAfter = error instanceof TokenServiceError ? error.retryAfterSeconds : undefined;
    if (retryAfter !== undefined) {
        const ms = retryAfter * 1000;
        return ms <= options.maxDelayMs ? ms : undefined;
    }
    const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
    return Math.floor(options.random() * ceiling);
}
const DEFAULT_LEAD_SECONDS = 120;
/** How far the token's `expirationTime` may be from `durationMinutes` after it arrived. */
const CLOCK_SKEW_TOLERANCE_MS = 60_000;
export function createTokenSource(options) {
    return new ServiceTokenSource(options);
}
class ServiceTokenSource {
    #options;
    #base;
    #fetch;
    #clock;
    #retry;
    #leadMs;
    #abort = new AbortController();
    #refreshListeners = new Set();
    #errorListeners = new Set();
    #wanted;
    #held;
    #inFlight;
    #timer;
    constructor(options) {
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
            if (signal.aborted)
                this.close();
            else
                signal.addEventListener("abort", () => this.close(), { once: true });
        }
    }
    get closed() {
        return this.#abort.signal.aborted;
    }
    current() {
        return this.#held?.token;
    }
    getToken() {
        if (this.closed)
            return Promise.reject(new TokenSourceClosedError());
        const held = this.#held;
        if (held !== undefined && this.#clock.now() < held.refreshAt)
            return Promise.resolve(held.token);
        return this.#renew();
    }
    refresh(changes = {}) {
        if (this.closed)
            return Promise.reject(new TokenSourceClosedError());
        if (this.#held === undefined)
            return Promise.reject(new Error("no token yet: call getToken() first"));
        // After the request under way, if any: its answer may predate the changes.
        const previous = this.#inFlight ?? Promise.resolve(this.#held.token);
        return previous
            .catch(() => undefined)
            .then(() => {
            this.#wanted = { ...this.#wanted, ...definedOnly(changes) };
            return this.#renew(true);
        });
    }
    onRefresh(listener) {
        this.#refreshListeners.add(listener);
        return () => this.#refreshListeners.delete(listener);
    }
    onError(listener) {
        this.#errorListeners.add(listener);
        return () => this.#errorListeners.delete(listener);
    }
    close() {
        if (this.closed)
            return;
        this.#clock.clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#abort.abort(this.#options.signal?.reason);
        this.#refreshListeners.clear();
        this.#errorListeners.clear();
    }
    // ---------------------------------------------------------------- internals
    /** One request at a time: callers arriving meanwhile share it (unless forced anew). */
    #renew(force = false) {
        if (this.#inFlight !== undefined && !force)
            return this.#inFlight;
        const request = this.#obtain().finally(() => {
            if (this.#inFlight === request)
                this.#inFlight = undefined;
        });
        this.#inFlight = request;
        return request;
    }
    async #obtain() {
        const previous = this.#held?.token;
        const token = previous === undefined
            ? await this.#request(ISSUE_PATH, 201, this.#issueBody())
            : await this.#request(exchangePath(previous.participantId), 200, this.#exchangeBody());
        if (this.closed)
            throw new TokenSourceClosedError();
        this.#hold(token);
        if (previous !== undefined) {
            for (const listener of [...this.#refreshListeners])
                listener(token, previous);
        }
        return token;
    }
    #issueBody() {
        return { stageArn: this.#options.stageArn, ...this.#exchangeBody() };
    }
    /** What is wanted, its undefined fields left out (definedOnly): never sent as null. */
    #exchangeBody() {
        return { ...this.#wanted };
    }
    async #request(path, expected, body) {
        const signal = this.#abort.signal;
        for (let attempt = 1;; attempt += 1) {
            if (signal.aborted)
                throw new TokenSourceClosedError(signal.reason);
            let error;
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
                if (response.status === expected)
                    return (await response.json());
                error = await TokenServiceError.fromResponse(response, this.#clock.now());
            }
            catch (thrown) {
                if (signal.aborted)
                    throw new TokenSourceClosedError(signal.reason);
                error = thrown;
            }
            const delay = retryDelayMs(error, attempt, this.#retry);
            if (delay === undefined)
                throw error;
            await sleep(this.#clock, delay, signal);
        }
    }
    #hold(token) {
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
    #schedule(delayMs) {
        this.#clock.clearTimeout(this.#timer);
        this.#timer = undefined;
        if (this.#options.autoRefresh === false || this.closed)
            return;
        this.#timer = this.#clock.setTimeout(() => {
            this.#timer = undefined;
            this.#renew().catch((error) => this.#backgroundFailed(error));
        }, Math.max(0, delayMs));
    }
    #backgroundFailed(error) {
        if (this.closed)
            return;
        for (const listener of [...this.#errorListeners])
            listener(error);
        // Still worth trying while the token lives, if the failure may pass: half way to expiry.
        const held = this.#held;
        const left = held === undefined ? 0 : held.expiresAt - this.#clock.now();
        if (isRetryable(error) && left > 2000)
            this.#schedule(left / 2);
    }
}
/** The changes (or options) given, copied, without the fields left undefined. */
function definedOnly(changes) {
    const out = {};
    if (changes.capabilities !== undefined)
        out.capabilities = [...changes.capabilities];
    if (changes.durationMinutes !== undefined)
        out.durationMinutes = changes.durationMinutes;
    if (changes.attributes !== undefined)
        out.attributes = { ...changes.attributes };
    return out;
}
/**
 * Hands every token that `source` refreshes to `stage.exchangeToken(token)`, in order, one
 * at a time. Call it once the stage is joined. Returns a function that stops it.
 */
export function keepStageCurrent(stage, source, options = {}) {
    let queue = Promise.resolve();
    let stopped = false;
    const unsubscribe = source.onRefresh((token, previous) => {
        queue = queue.then(async () => {
            if (stopped)
                return;
            try {
                await stage.exchangeToken(token.token);
            }
            catch (error) {
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
function sameCapabilities(a, b) {
    return a.length === b.length && a.every((capability) => b.includes(capability));
}
