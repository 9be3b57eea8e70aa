// whenIdle(): tests and the CLI wait for the pipeline to settle. Idle means no invocation running and
// every polled queue empty (visible or not), seen twice in a row so a message sent just before a
// completion is not missed.
import { HostError } from './errors.js';
import type { Invoker } from './invocation.js';
import { wakePollers, type QueuePoller } from './queue.js';

export interface WhenIdleOptions {
  /** Reject after this long (default 120 s). */
  timeoutMs?: number;
}

export async function whenIdle(invoker: Invoker, pollers: readonly QueuePoller[], opts: WhenIdleOptions = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  const running = (): number => invoker.inFlight + pollers.reduce((n, p) => n + p.active, 0);
  let quiet = 0;
  wakePollers(pollers);
  for (;;) {
    if (running() === 0) {
      const counts = await Promise.all(
        pollers.map((p) =>
          p.queue.getProperties().then(
            (r) => r.approximateMessagesCount ?? 0,
            () => 0,
          ),
        ),
      );
      if (running() === 0 && counts.every((c) => c === 0)) {
        if (++quiet >= 2) return;
      } else {
        quiet = 0;
        if (counts.some((c) => c > 0)) wakePollers(pollers);
      }
    } else {
      quiet = 0;
    }
    if (Date.now() > deadline) {
      const detail = pollers.map((p) => `${p.queue.name}: ${p.active} running`).join(', ');
      throw new HostError(`whenIdle: still busy after ${opts.timeoutMs ?? 120_000} ms (${invoker.inFlight} invocations in flight; ${detail})`);
    }
    await invoker.nextActivity(50);
  }
}
