// Queue triggers: one poller per queue function with host.json `extensions.queues` semantics (batch
// size, new-batch threshold, back-off to maxPollingInterval), leases renewed while a message runs,
// and the poison queue `<queue>-poison` after maxDequeueCount.
import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
import { HostError } from './errors.js';
import type { QueueSettings } from './host-json.js';
import type { InvocationRequest } from './invocation.js';
import { errorText, type HostLog } from './logging.js';
import { decodeMessage, queueInput, type QueueStorage } from './queue-storage.js';
import type { Registered } from './registration.js';
import type { AppSettings } from './settings.js';

/** The real listener's minimum polling interval. */
const MIN_POLL_MS = 100;
/** Messages being processed stay invisible this long, renewed at half-time (as the real host). */
const LEASE_SECONDS = 600;

export interface PollerDeps {
  config: QueueSettings;
  storage: QueueStorage;
  log: HostLog;
  run(request: InvocationRequest): Promise<unknown>;
  isStopping(): boolean;
  /** A message finished (for whenIdle). */
  notifyActivity(): void;
}

function sleep(ms: number, signal?: { wake?: () => void }): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) {
      signal.wake = () => {
        clearTimeout(t);
        resolve();
      };
    }
  });
}

export class QueuePoller {
  /** Messages being processed now. */
  active = 0;
  loop?: Promise<void>;
  /** Messages currently leased, for release on a forced stop. */
  readonly leased = new Map<string, { popReceipt: string }>();
  private delay = MIN_POLL_MS;
  private readonly signal: { wake?: () => void } = {};

  constructor(
    readonly fn: Registered,
    readonly queue: QueueClient,
    private readonly poison: QueueClient,
    private readonly deps: PollerDeps,
  ) {}

  /** Polls now rather than after the back-off (also ends a wait when stopping). */
  wake(): void {
    this.delay = MIN_POLL_MS;
    this.signal.wake?.();
  }

  start(): void {
    this.loop = this.pollLoop();
  }

  private async pollLoop(): Promise<void> {
    const { config, storage, log, isStopping } = this.deps;
    try {
      await storage.ensure(this.queue);
    } catch (e) {
      log('error', `cannot create queue '${this.queue.name}': ${(e as Error).message}`, { function: this.fn.metadata.name });
    }
    while (!isStopping()) {
      // Fetch a new batch only when the running count is down to newBatchThreshold.
      if (this.active > config.newBatchThreshold) {
        await sleep(MIN_POLL_MS, this.signal);
        continue;
      }
      let messages: DequeuedMessageItem[] = [];
      try {
        messages = (await this.queue.receiveMessages({ numberOfMessages: config.batchSize, visibilityTimeout: LEASE_SECONDS }))
          .receivedMessageItems;
      } catch (e) {
        log('warn', `polling '${this.queue.name}' failed: ${(e as Error).message}`, { function: this.fn.metadata.name });
        storage.forget(this.queue);
        await storage.ensure(this.queue).catch(() => undefined);
      }
      if (isStopping() && messages.length) {
        // Leave them for the next start.
        await Promise.all(messages.map((m) => this.queue.updateMessage(m.messageId, m.popReceipt, undefined, 0).catch(() => undefined)));
        break;
      }
      if (messages.length) {
        this.delay = MIN_POLL_MS;
        for (const m of messages) {
          this.active++;
          this.processMessage(m)
            .catch((e) => log('error', `message ${m.messageId}: ${errorText(e)}`, { function: this.fn.metadata.name }))
            .finally(() => {
              this.active--;
              this.signal.wake?.();
              this.deps.notifyActivity();
            });
        }
        continue;
      }
      // Empty: exponential back-off up to maxPollingInterval.
      await sleep(this.delay, this.signal);
      this.delay = Math.min(this.delay * 2, Math.max(config.maxPollingIntervalMs, MIN_POLL_MS));
    }
  }

  private async processMessage(message: DequeuedMessageItem): Promise<void> {
    const { config, storage, log } = this.deps;
    const fnName = this.fn.metadata.name;
    let popReceipt = message.popReceipt;
    this.leased.set(message.messageId, { popReceipt });
    const renew = setInterval(async () => {
      try {
        const r = await this.queue.updateMessage(message.messageId, popReceipt, undefined, LEASE_SECONDS);
        if (r.popReceipt) popReceipt = r.popReceipt;
        this.leased.set(message.messageId, { popReceipt });
      } catch (e) {
        log('warn', `could not renew the lease of message ${message.messageId}: ${(e as Error).message}`, { function: fnName });
      }
    }, (LEASE_SECONDS * 1000) / 2);
    renew.unref();
    let ok = false;
    try {
      const text = decodeMessage(message.messageText, config.messageEncoding);
      await this.deps.run({
        fn: this.fn,
        input: queueInput(text),
        reason: `New queue message detected on '${this.queue.name}'`,
        triggerMetadata: {
          id: message.messageId,
          queueTrigger: text,
          dequeueCount: message.dequeueCount,
          insertionTime: message.insertedOn?.toISOString(),
          expirationTime: message.expiresOn?.toISOString(),
          nextVisibleTime: message.nextVisibleOn?.toISOString(),
          popReceipt: message.popReceipt,
        },
      });
      ok = true;
    } catch (e) {
      if (e instanceof HostError) {
        log('error', `message ${message.messageId} on '${this.queue.name}' failed before the function ran: ${e.message}`, { function: fnName });
      }
      // (handler errors were logged by the invoker)
    } finally {
      clearInterval(renew);
    }
    try {
      if (ok) {
        await this.queue.deleteMessage(message.messageId, popReceipt);
      } else if (message.dequeueCount >= config.maxDequeueCount) {
        await storage.ensure(this.poison);
        await this.poison.sendMessage(message.messageText);
        await this.queue.deleteMessage(message.messageId, popReceipt);
        log('warn', `Message ${message.messageId} has reached MaxDequeueCount of ${config.maxDequeueCount}. Moving message to queue '${this.poison.name}'.`, { function: fnName });
      } else {
        await this.queue.updateMessage(message.messageId, popReceipt, undefined, Math.ceil(config.visibilityTimeoutMs / 1000));
      }
    } catch (e) {
      // Lost the lease (e.g. it expired): the message reappears and is retried; nothing else to do.
      log('warn', `could not complete message ${message.messageId}: ${(e as Error).message}`, { function: fnName });
    } finally {
      this.leased.delete(message.messageId);
    }
  }
}

/** One poller per queue-triggered function (not started); throws on a missing setting. */
export function createPollers(functions: Iterable<Registered>, settings: AppSettings, deps: PollerDeps): QueuePoller[] {
  const pollers: QueuePoller[] = [];
  for (const fn of functions) {
    if (fn.trigger.type !== 'queueTrigger') continue;
    const queueName = settings.resolve(String(fn.trigger.queueName), `${fn.metadata.name}.queueName`);
    const service = deps.storage.service(fn.trigger.connection as string | undefined);
    pollers.push(new QueuePoller(fn, service.getQueueClient(queueName), service.getQueueClient(`${queueName}-poison`), deps));
  }
  return pollers;
}

/** Every poller polls now rather than after its back-off (a function run by hand may have queued work). */
export function wakePollers(pollers: readonly QueuePoller[]): void {
  for (const p of pollers) p.wake();
}
