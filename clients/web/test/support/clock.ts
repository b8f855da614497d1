// A clock whose time moves only when a test says so: a refresh due in 59 minutes is due
// after `advance(59 * 60_000)`, with no sleep. It implements the package's Clock.
import type { Clock } from "@ivs-token-service/web";

interface Timer {
  id: number;
  at: number;
  callback: () => void;
}

export class ManualClock implements Clock {
  #now: number;
  #timers: Timer[] = [];
  #ids = 0;

  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    this.#ids += 1;
    this.#timers.push({ id: this.#ids, at: this.#now + Math.max(0, ms), callback });
    return this.#ids;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((timer) => timer.id !== handle);
  }

  /** When the next timer is due (ms since the epoch), if one is set. */
  nextDue(): number | undefined {
    return this.#timers.reduce<number | undefined>((soonest, t) => (soonest === undefined || t.at < soonest ? t.at : soonest), undefined);
  }

  /** Moves time on by `ms`, running each timer that falls due, in order. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = Math.max(this.#now, due.at);
      due.callback();
    }
    this.#now = until;
  }
}

/** Resolves once every callback queued so far (promises, I/O already done) has run. */
export function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
