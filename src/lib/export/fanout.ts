// The timer's work, proportional to the pairs that have work: the tick enqueues one message per shard
// of the pending-pair markers (source/pending.ts); a worker expands one page of a shard into one
// export message per marked pair and chains the next page. A slow safety net, the sweep, enqueues
// every enabled pair of every integration once per SWEEP_INTERVAL_MS, one page per message.
import { TABLES, type AppStorage } from '../platform/storage.js';
import { isConflict, isNotFound } from '../platform/errors.js';
import type { Integration, Integrations } from '../integration/settings.js';
import type { Clock } from '../platform/clock.js';
import { V1_FILE_TYPES, type FileType } from '../contract/schemas.js';
import { PENDING_PAGE, PENDING_SHARDS, PendingPairs } from '../source/pending.js';
import type { ExportJob, FanOutJob, ShardJob } from './message.js';

export const SWEEP_INTERVAL_MS = 24 * 3600 * 1000;
export const SWEEP_PAGE = 500;

export interface FanOutDeps {
  storage: AppStorage;
  integrations: Integrations;
  clock: Clock;
}

export interface TickResult {
  shards: number;
  sweep: boolean;
}

export interface FanOutResult {
  workspaces: number;
  enqueued: number;
}

/** The timer tick: a fixed number of messages, whatever the number of workspaces. */
export async function tick(deps: FanOutDeps, enqueue: (job: FanOutJob) => Promise<void>): Promise<TickResult> {
  const sweep = await sweepDue(deps);
  const shards = Array.from({ length: PENDING_SHARDS }, (_, shard) => shard);
  await Promise.all([...shards.map((shard) => enqueue({ shard })), ...(sweep ? [enqueue({ sweep: '' })] : [])]);
  return { shards: shards.length, sweep };
}

export interface ShardPageResult {
  enqueued: number;
  /** True when the shard holds more markers: the next page's message was sent. */
  chained: boolean;
}

/** Sends in flight in one expansion: with 16, Azurite took 1,007 messages/s, with 64 1,502 (README Measured); on Azure 64 at ~10 ms each outrun one queue's 2,000/s. */
export const ENQUEUE_CONCURRENCY = 64;

/**
 * One page of a shard: a message per marked pair, then the next page's message. A running pair is
 * queued too: its export answers busy and keeps the marker (one query fewer per marked workspace).
 */
export async function expandShard(
  deps: Pick<FanOutDeps, 'storage'>,
  job: ShardJob,
  enqueue: (job: ExportJob) => Promise<void>,
  next: (job: ShardJob) => Promise<void>,
  pageSize = PENDING_PAGE,
): Promise<ShardPageResult> {
  const page = await new PendingPairs(deps.storage).page(job.shard, job.after ?? '', pageSize);
  await forEach(page.pairs, ENQUEUE_CONCURRENCY, enqueue);
  // Chained last: a crash before it retries this page and the chain goes on from there, never twice.
  if (page.next) await next({ shard: job.shard, after: page.next });
  return { enqueued: page.pairs.length, chained: page.next !== undefined };
}

/** One page of the sweep: every enabled pair of its integrations; then the next page. */
export async function sweepPage(deps: FanOutDeps, token: string, enqueue: (job: ExportJob) => Promise<void>, next: (job: FanOutJob) => Promise<void>, size = SWEEP_PAGE): Promise<FanOutResult> {
  const page = await deps.integrations.page(token, size);
  const result = await enqueueEnabled(page.integrations, enqueue);
  if (page.next) await next({ sweep: page.next });
  return result;
}

/**
 * Every enabled pair of these integrations. Running pairs too: their export answers busy (a lease
 * query here would read the whole cursors table, history included, for every page).
 */
export async function enqueueEnabled(
  integrations: Iterable<Omit<Integration, 'sasUrl'>> | AsyncIterable<Omit<Integration, 'sasUrl'>>,
  enqueue: (job: ExportJob) => Promise<void>,
  concurrency = 32,
): Promise<FanOutResult> {
  const result: FanOutResult = { workspaces: 0, enqueued: 0 };
  await forEach(integrations, concurrency, async (integration) => {
    if (!integration.enabled) return;
    result.workspaces++;
    const due = integration.files.filter((fileType: FileType) => integration.schemaVersion !== 'v1' || V1_FILE_TYPES.includes(fileType));
    await Promise.all(due.map((fileType) => enqueue({ workspaceId: integration.workspaceId, fileType })));
    result.enqueued += due.length;
  });
  return result;
}

/** The sweep is due when none started within SWEEP_INTERVAL_MS; the ETag lets one tick start it. */
async function sweepDue(deps: FanOutDeps): Promise<boolean> {
  const table = deps.storage.table(TABLES.pending);
  const now = deps.clock.now();
  try {
    let etag: string | undefined;
    try {
      const e = await table.getEntity<{ startedAt: number }>('sweep', 'state');
      if (now - Number(e.startedAt) < SWEEP_INTERVAL_MS) return false;
      etag = e.etag;
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    const entity = { partitionKey: 'sweep', rowKey: 'state', startedAt: now };
    if (etag) await table.updateEntity(entity, 'Replace', { etag });
    else await table.createEntity(entity);
    return true;
  } catch (e) {
    if (isConflict(e)) return false; // another tick started it
    throw e;
  }
}

/** `work` on every item, `concurrency` at once; throws the first failure (after the started ones settle). */
async function forEach<T>(items: Iterable<T> | AsyncIterable<T>, concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  const pending = new Set<Promise<void>>();
  const failures: unknown[] = [];
  for await (const item of items) {
    if (failures.length) break;
    const task = work(item).catch((e: unknown) => { failures.push(e); });
    pending.add(task);
    void task.finally(() => pending.delete(task));
    if (pending.size >= concurrency) await Promise.race(pending);
  }
  await Promise.all(pending);
  if (failures.length) throw failures[0];
}
