// The real fetch, watched: which requests went out and what came back. Nothing is faked.

export interface Exchange {
  method: string;
  path: string;
  status: number;
  retryAfter: string | null;
  /** The clock's time when the request went out (ms). */
  at: number;
}

export function watchedFetch(now: () => number = Date.now): { fetch: typeof fetch; seen: Exchange[] } {
  const seen: Exchange[] = [];
  const watched: typeof fetch = async (input, init) => {
    const at = now();
    const response = await fetch(input, init);
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
    seen.push({
      method: init?.method ?? "GET",
      path: url.pathname,
      status: response.status,
      retryAfter: response.headers.get("Retry-After"),
      at,
    });
    return response;
  };
  return { fetch: watched, seen };
}
