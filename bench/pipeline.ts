// Export pipeline benchmarks against a real Azurite: store → parquet → blob throughput, peak RSS of
// an initial sync (measured in a child process that does only the export), and fan-out time.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BlobServiceClient, ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import { loadConfig } from '../src/lib/platform/config.js';
import { createServices, type Services } from '../src/lib/services.js';
import { ENQUEUE_CONCURRENCY, enqueueEnabled, expandShard, tick } from '../src/lib/export/fanout.js';
import { messageSender } from '../src/lib/platform/queue-sender.js';
import { QueueClient } from '@azure/storage-queue';
import { encryptSecret } from '../src/lib/integration/crypto.js';
import { TABLES } from '../src/lib/platform/storage.js';
import { PendingPairs } from '../src/lib/source/pending.js';
import { FILE_TYPES, type FileType } from '../src/lib/contract/schemas.js';
import type { ExportJob, ShardJob } from '../src/lib/export/message.js';
import { DEV_ACCOUNT, DEV_KEY } from '../src/local/azurite.js';

export const BENCH_KEY = Buffer.alloc(32, 3).toString('base64');

export function benchServices(connectionString: string, env: Record<string, string> = {}): Services {
  return createServices(loadConfig({ AzureWebJobsStorage: connectionString, SAS_ENCRYPTION_KEY: BENCH_KEY, ALLOW_EMULATOR_SAS_URLS: 'true', EXPORT_TIME_BUDGET_SECONDS: '100000', ...env }));
}

export function deliveryRow(i: number) {
  return {
    delivery_id: `dlv_${i.toString(36).padStart(8, '0')}`,
    internal_customer_id: `cio_${(i % 50_000).toString(36)}`,
    subject_id: i % 3 ? `sub_${(i >> 2).toString(36)}` : null,
    event_id: i % 5 ? null : `evt_${i.toString(36)}`,
    delivery_type: ['email', 'push', 'sms', 'in-app', 'webhook', 'slack'][i % 6],
    campaign_id: i % 4 ? (i % 97) + 1 : null,
    action_id: i % 4 ? (i % 997) + 1 : null,
    newsletter_id: i % 4 ? null : (i % 31) + 1,
    content_id: i % 8 ? null : (i % 7) + 1,
    trigger_id: null,
    created_at: 1_767_225_600_000 + i * 1000,
    transactional_message_id: i % 10 ? null : (i % 13) + 1,
  };
}

/** Fills a workspace's deliveries log through the source log (segments of 5,000, as ingest would). */
export async function fillDeliveries(services: Services, workspaceId: number, rows: number): Promise<void> {
  const segment = 5000;
  const tasks: Promise<unknown>[] = [];
  for (let i = 0; i < rows; i += segment) {
    const records = Array.from({ length: Math.min(segment, rows - i) }, (_, j) => {
      // As ingest hands records over: without their null values (built, not deleted: a delete slows the object).
      const record: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(deliveryRow(i + j))) if (v !== null) record[k] = v;
      return record;
    });
    tasks.push(services.source.append(workspaceId, [{ fileType: 'deliveries', records }]));
    if (tasks.length >= 4) await Promise.all(tasks.splice(0));
  }
  await Promise.all(tasks);
}

export async function customerSas(connectionString: string, name: string): Promise<string> {
  const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(name);
  await container.createIfNotExists();
  const sas = generateBlobSASQueryParameters(
    { containerName: name, permissions: ContainerSASPermissions.parse('racwl'), expiresOn: new Date(Date.now() + 30 * 86400_000) },
    new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY),
  ).toString();
  return `${container.url}?${sas}`;
}

export interface ExportBenchResult {
  rows: number;
  files: number;
  bytes: number;
  seconds: number;
  rowsPerSecond: number;
  peakRssMiB: number;
}

/** Ingests `rows` deliveries, then runs the initial sync in a child process and reports its time and peak RSS. */
/** The Node options the deployed worker runs with (app setting languageWorkers__node__arguments; infra/main.bicep). */
export const DEPLOYED_NODE_OPTIONS = ['--max-old-space-size=256'];

/**
 * `warmUp`: the child first exports that many rows of another workspace (untimed), as a worker that
 * has run exports before (the JIT has compiled the path, V8's heap has grown to its working size).
 */
export async function benchInitialSync(connectionString: string, workspaceId: number, rows: number, nodeOptions: string[] = DEPLOYED_NODE_OPTIONS, warmUp = 0): Promise<ExportBenchResult> {
  const services = benchServices(connectionString);
  await services.storage.ready();
  const workspaces = warmUp ? [workspaceId + 1000, workspaceId] : [workspaceId];
  for (const [i, ws] of workspaces.entries()) {
    await fillDeliveries(services, ws, i === workspaces.length - 1 ? rows : warmUp);
    const sasUrl = await customerSas(connectionString, `bench-${ws}`);
    await services.integrations.put(ws, { sasUrl, files: ['deliveries'] });
  }
  const execArgv = [...process.execArgv, ...nodeOptions];
  const child = fork(fileURLToPath(import.meta.url), ['--export-child', connectionString, ...workspaces.map(String)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as ExportBenchResult));
    child.once('exit', (code) => code !== 0 && reject(new Error(`export child exited with ${code}`)));
  });
}

async function exportChild(connectionString: string, workspaceIds: number[]): Promise<void> {
  const services = benchServices(connectionString);
  await services.storage.ready();
  const workspaceId = workspaceIds[workspaceIds.length - 1];
  for (const warmUp of workspaceIds.slice(0, -1)) await services.exporter().run({ workspaceId: warmUp, fileType: 'deliveries' }, 'bench');
  const t0 = performance.now();
  const out = await services.exporter().run({ workspaceId, fileType: 'deliveries' }, 'bench');
  const seconds = (performance.now() - t0) / 1000;
  const rows = out.files.reduce((n, f) => n + f.rows, 0);
  const result: ExportBenchResult = {
    rows,
    files: out.files.length,
    bytes: out.files.reduce((n, f) => n + f.bytes, 0),
    seconds,
    rowsPerSecond: rows / seconds,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  process.send!(result);
}

const INSTANCE_CONCURRENCY = 6;
/** Sends in flight in one fan-out instance: its expansions (host.json) × ENQUEUE_CONCURRENCY each. */
export const INSTANCE_SENDS = INSTANCE_CONCURRENCY * ENQUEUE_CONCURRENCY;

/**
 * The fan-out before markers, measured in the same run for comparison: every enabled pair of
 * `workspaces` integrations (8 files each), as the sweep still does a page at a time.
 */
export async function benchFullFanOut(connectionString: string, workspaces: number): Promise<{ workspaces: number; messages: number; seconds: number }> {
  const services = benchServices(connectionString, { EXPORT_QUEUE_NAME: 'bench-fanout-full', STORAGE_PREFIX: `full${workspaces}` });
  await services.storage.ready();
  // Settings written straight to the table (the probe of a PUT per workspace is not what is measured).
  const table = services.storage.table(TABLES.integrations);
  const sas = encryptSecret('https://example.blob.core.windows.net/c?sv=1&sr=c&sp=racwl&sig=x', Buffer.from(BENCH_KEY, 'base64'));
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < workspaces; i++) {
    writes.push(table.upsertEntity({ partitionKey: String(5_000_000 + i), rowKey: 'settings', sas, account: 'a', container: 'c', blobPath: '', files: FILE_TYPES.join(','), schemaVersion: 'v4', enabled: true, generations: '{}', disabledAt: '{}' }, 'Replace'));
    if (writes.length >= 64) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
  const exporter = services.exporter();
  const t0 = performance.now();
  const result = await enqueueEnabled(services.integrations.list(), (job) => exporter.enqueue(job), 64);
  const seconds = (performance.now() - t0) / 1000;
  return { workspaces: result.workspaces, messages: result.enqueued, seconds };
}

export interface QueueSendsResult {
  sender: 'QueueClient.sendMessage' | 'messageSender';
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  /** CPU of this process (user + system) per message: what the sender costs, apart from Azurite. */
  cpuMsPerMessage: number;
}

/**
 * Export messages put into one fresh queue with no work around them, as many in flight as a
 * fan-out instance has (INSTANCE_CONCURRENCY × ENQUEUE_CONCURRENCY): through QueueClient.sendMessage,
 * or through the app's sender (queue-sender.ts). With the app's sender and as many messages as the
 * dense tick, it is the floor the queue service sets for that tick.
 */
export async function benchQueueSends(connectionString: string, messages: number, sender: QueueSendsResult['sender'], queueName: string): Promise<QueueSendsResult> {
  const queue = new QueueClient(connectionString, queueName);
  await queue.createIfNotExists();
  const light = messageSender(queue);
  const send = sender === 'messageSender' ? (text: string) => light.send(text) : (text: string) => queue.sendMessage(text).then(() => undefined);
  let next = 0;
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: INSTANCE_SENDS }, async () => {
    for (let i = next++; i < messages; i = next++) await send(Buffer.from(JSON.stringify({ workspaceId: 5_000_000 + (i >> 3), fileType: FILE_TYPES[i & 7] })).toString('base64'));
  }));
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  return { sender, messages, seconds, messagesPerSecond: messages / seconds, cpuMsPerMessage: (used.user + used.system) / 1000 / messages };
}

export interface FanOutBenchResult {
  workspaces: number;
  activeWorkspaces: number;
  messages: number;
  /** The fan-out invocations after the timer (pages of shards). */
  invocations: number;
  /** The timer invocation: one message per shard. */
  tickSeconds: number;
  /** Every fan-out message run as one instance would (wall clock), continuations included. */
  expandSeconds: number;
  /** The slowest single fan-out invocation. */
  maxShardSeconds: number;
  /** Timer plus expansion: one tick from start to the last export message queued. */
  seconds: number;
}

/** How a shard message was expanded: by pages (now), or whole, with a lease query per workspace (before). */
export type ExpandPath = 'pages' | 'whole';

const marked = new Set<string>();

/**
 * One tick for `workspaces` workspaces (8 files each) of which `active` have changes in all 8 files:
 * the timer, then every fan-out message (and the continuations they send) run into the real queue,
 * host.json's batchSize + newBatchThreshold at a time as one Functions instance runs them. The
 * integrations table is not on this path (the tick reads only markers), so only markers are written.
 */
export async function benchFanOut(connectionString: string, workspaces: number, active: number, queueName = 'bench-fanout', path: ExpandPath = 'pages'): Promise<FanOutBenchResult> {
  const prefix = `b${workspaces}a${active}`;
  const services = benchServices(connectionString, { EXPORT_QUEUE_NAME: queueName, STORAGE_PREFIX: prefix });
  await services.storage.ready();
  if (!marked.has(`${connectionString}|${prefix}`)) await markActive(services, workspaces, active);
  marked.add(`${connectionString}|${prefix}`);
  const exporter = services.exporter();
  const enqueue = (job: ExportJob) => exporter.enqueue(job);
  const t0 = performance.now();
  const queue: ShardJob[] = [];
  await tick(services, async (job) => { if ('shard' in job) queue.push(job); });
  const tickSeconds = (performance.now() - t0) / 1000;
  let messages = 0;
  let invocations = 0;
  let running = 0;
  let maxShardSeconds = 0;
  const t1 = performance.now();
  await Promise.all(Array.from({ length: INSTANCE_CONCURRENCY }, async () => {
    for (;;) {
      const job = queue.shift();
      if (!job) {
        if (running === 0) return;
        await new Promise((r) => setTimeout(r, 2)); // a continuation may still come
        continue;
      }
      running++;
      const s0 = performance.now();
      const sent = path === 'pages' ? (await expandShard(services, job, enqueue, async (next) => { queue.push(next); })).enqueued : await expandWhole(services, job.shard, enqueue);
      messages += sent;
      invocations++;
      running--;
      maxShardSeconds = Math.max(maxShardSeconds, (performance.now() - s0) / 1000);
    }
  }));
  const expandSeconds = (performance.now() - t1) / 1000;
  return { workspaces, activeWorkspaces: active, messages, invocations, tickSeconds, expandSeconds, maxShardSeconds, seconds: tickSeconds + expandSeconds };
}

async function markActive(services: Services, workspaces: number, active: number): Promise<void> {
  const pending = new PendingPairs(services.storage);
  const writes: Promise<unknown>[] = [];
  // Active workspaces spread over the whole range, as real ones would be.
  const step = workspaces / active;
  for (let i = 0; i < active; i++) {
    writes.push(pending.mark(5_000_000 + Math.floor(i * step), FILE_TYPES));
    if (writes.length >= 64) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
}

/** The expansion before pages, for the same-run comparison: a whole shard, a lease query per marked workspace, 32 workspaces at once. */
async function expandWhole(services: Services, shard: number, enqueue: (job: ExportJob) => Promise<void>): Promise<number> {
  const byWorkspace = new Map<number, FileType[]>();
  const pending = new PendingPairs(services.storage);
  for (let after: string | undefined = ''; after !== undefined;) {
    const page: { pairs: { workspaceId: number; fileType: FileType }[]; next?: string } = await pending.page(shard, after);
    for (const p of page.pairs) byWorkspace.set(p.workspaceId, [...(byWorkspace.get(p.workspaceId) ?? []), p.fileType]);
    after = page.next;
  }
  const now = Date.now();
  const cursors = services.storage.table(TABLES.cursors);
  let sent = 0;
  const entries = [...byWorkspace];
  await Promise.all(Array.from({ length: 32 }, async () => {
    for (let e = entries.shift(); e; e = entries.shift()) {
      const [workspaceId, fileTypes] = e;
      const running = new Set<string>();
      for await (const c of cursors.listEntities({ queryOptions: { filter: `PartitionKey eq '${workspaceId}' and leaseUntil gt ${now}L`, select: ['RowKey'] } })) running.add(String(c.rowKey));
      const due = fileTypes.filter((fileType) => !running.has(fileType));
      await Promise.all(due.map((fileType) => enqueue({ workspaceId, fileType })));
      sent += due.length;
    }
  }));
  return sent;
}

if (process.argv[2] === '--export-child') {
  exportChild(process.argv[3], process.argv.slice(4).map(Number)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
