// Helpers of the fault-injection suite (test/faults): gates that hold an export at a seam, blob
// inventories (to prove no file was rewritten), exact checks of exported files against the source
// log, a local Functions host with fault seams and every log line captured, and summary lines.
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { parquetReadObjects } from 'hyparquet';
import type { ContainerClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import { startHost, type Host, type HostJson, type LogRecord } from '../../src/local/host.js';
import { Exporter } from '../../src/lib/export/job.js';
import type { ExportJob } from '../../src/lib/export/message.js';
import { getServices, useClock, type Services } from '../../src/lib/services.js';
import { SCHEMAS, type FileType } from '../../src/lib/contract/schemas.js';
import type { SourceRecord } from '../../src/lib/source/source-log.js';
import type { Clock } from '../../src/lib/platform/clock.js';
import { TEST_KEY } from './env.js';

export type Rec = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Gates: an export waits at a seam until the test opens the gate.

export class Gate {
  private resolveReached!: () => void;
  private resolveOpen!: () => void;
  /** Resolves the first time something waits at the gate. */
  readonly reached = new Promise<void>((r) => (this.resolveReached = r));
  private readonly opened = new Promise<void>((r) => (this.resolveOpen = r));
  hits = 0;

  wait(): Promise<void> {
    this.hits++;
    this.resolveReached();
    return this.opened;
  }

  open(): void {
    this.resolveOpen();
  }
}

/** A promise that rejects after `ms` with `what` (guards awaits that must happen). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

/** Polls `check` until it returns a truthy value (observing an outcome, not creating a fault). */
export async function waitFor<T>(check: () => Promise<T> | T, what: string, timeoutMs = 20_000, everyMs = 50): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<Awaited<T>>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// ---------------------------------------------------------------------------------------------
// Blob inventories

export interface BlobInfo {
  name: string;
  etag: string;
  createdOn: number;
  lastModified: number;
  size: number;
  metadata: Record<string, string>;
}

/** Committed blobs (what a customer sees), with what identifies one version of each. */
export async function inventory(client: ContainerClient, prefix?: string): Promise<Map<string, BlobInfo>> {
  const out = new Map<string, BlobInfo>();
  for await (const b of client.listBlobsFlat({ prefix, includeMetadata: true })) {
    out.set(b.name, {
      name: b.name,
      etag: String(b.properties.etag),
      createdOn: b.properties.createdOn?.getTime() ?? 0,
      lastModified: b.properties.lastModified.getTime(),
      size: b.properties.contentLength ?? 0,
      metadata: b.metadata ?? {},
    });
  }
  return out;
}

/** Names listed only when uncommitted blobs are included: blocks staged but never committed. */
export async function uncommittedOnly(client: ContainerClient): Promise<string[]> {
  const committed = new Set((await inventory(client)).keys());
  const names: string[] = [];
  for await (const b of client.listBlobsFlat({ includeUncommitedBlobs: true })) if (!committed.has(b.name)) names.push(b.name);
  return names;
}

/** Blobs of `before` that are gone or are another version in `after` (rewritten / deleted). */
export function changedBlobs(before: Map<string, BlobInfo>, after: Map<string, BlobInfo>): string[] {
  const changed: string[] = [];
  for (const [name, b] of before) {
    const a = after.get(name);
    if (!a || a.etag !== b.etag || a.createdOn !== b.createdOn || a.lastModified !== b.lastModified || a.size !== b.size) changed.push(name);
  }
  return changed;
}

// ---------------------------------------------------------------------------------------------
// Reading exported files

const normalize = (v: unknown): unknown => (v === undefined ? null : v instanceof Date ? v.getTime() : typeof v === 'bigint' ? Number(v) : v);

/** Every row of a parquet blob, values normalized (timestamps → epoch ms, INT64 → number). */
export async function readRows(client: ContainerClient, name: string): Promise<Rec[]> {
  const buffer = await client.getBlockBlobClient(name).downloadToBuffer();
  const file = buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer;
  const rows = (await parquetReadObjects({ file })) as Rec[];
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, normalize(v)])));
}

/** `endposition` metadata of an exported file (base64url JSON: a source seq_num or a person key). */
export const decodeEnd = (s: string | undefined): number | string | undefined =>
  s === undefined ? undefined : (JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as number | string);

export interface ParsedName {
  name: string;
  sequence: number;
  part?: number;
}

/** `<blobPath>/<name>_v4_<ws>_<seq>[_<part>].parquet` → sequence (and part). */
export function parseFileName(fileType: FileType, ws: number, name: string): ParsedName | undefined {
  const base = name.split('/').pop()!;
  const m = new RegExp(`^${SCHEMAS[fileType].name}_v4_${ws}_(\\d{20})(?:_(\\d{20}))?\\.parquet$`).exec(base);
  if (!m) return undefined;
  return { name, sequence: Number(m[1]), ...(m[2] ? { part: Number(m[2]) } : {}) };
}

/** Exported parquet files of an inventory, in listing order. */
export const parquetNames = (m: Map<string, BlobInfo>): string[] => [...m.keys()].filter((n) => n.endsWith('.parquet')).sort();

/** The file sequence of any export file name (v1 or v4, any path; a metrics part gives its first sequence). */
export const sequenceOf = (name: string): number => Number(/_(\d{20})(?:_\d{20})?\.parquet$/.exec(name)?.[1]);

/**
 * SPEC section 5.6: sequences that name more than one file (whatever the schema version or path; the
 * parts of one initial metrics sync are one file here). Returns the problems found.
 */
export function sequenceReuse(names: string[]): string[] {
  const files = new Map<number, Set<string>>();
  for (const n of names) {
    const file = n.replace(/(_\d{20})_\d{20}\.parquet$/, '$1.parquet');
    files.set(sequenceOf(n), (files.get(sequenceOf(n)) ?? new Set()).add(file));
  }
  return [...files].filter(([, f]) => f.size > 1).map(([seq, f]) => `sequence ${seq} names ${f.size} files: ${[...f].join(', ')}`);
}

/** A promise's outcome or error, never a rejection (a worker run the test lets go on by itself). */
export const settle = <T>(p: Promise<T>): Promise<{ outcome: T } | { error: unknown }> => p.then((outcome) => ({ outcome }), (error: unknown) => ({ error }));

/**
 * File sequences in listing order: consecutive from `first`, never reused, no gaps; initial metrics
 * parts share one sequence with parts 1..n. Returns the problems found.
 */
export function sequenceProblems(fileType: FileType, ws: number, names: string[], first: number): string[] {
  const problems: string[] = [];
  let expected = first;
  let partSeq: number | undefined;
  let nextPart = 1;
  for (const n of names) {
    const p = parseFileName(fileType, ws, n);
    if (!p) {
      problems.push(`unexpected file name ${n}`);
      continue;
    }
    if (p.part !== undefined) {
      if (partSeq === undefined) {
        if (p.sequence !== expected) problems.push(`${n}: part sequence ${p.sequence}, expected ${expected}`);
        partSeq = p.sequence;
        expected = p.sequence + 1;
      } else if (p.sequence !== partSeq) problems.push(`${n}: parts of two sequences`);
      if (p.part !== nextPart) problems.push(`${n}: part ${p.part}, expected ${nextPart}`);
      nextPart++;
      continue;
    }
    if (p.sequence !== expected) problems.push(`${n}: sequence ${p.sequence}, expected ${expected} (gap or reuse)`);
    expected = p.sequence + 1;
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Exact checks against the source log

/** The exported row a source record becomes (v4 columns; no anonymization). */
export function expectedRow(fileType: FileType, ws: number, seq: number, record: SourceRecord): Rec {
  const row: Rec = {};
  for (const c of SCHEMAS[fileType].columns) {
    row[c.name] = c.name === 'workspace_id' ? ws : c.name === 'seq_num' ? seq : ((record[c.name] as unknown) ?? null);
  }
  return row;
}

export const keyOf = (fileType: FileType, r: Rec) => SCHEMAS[fileType].primaryKey.map((k) => String(r[k])).join('\u0000');

export interface Verdict {
  files: number;
  rows: number;
  /** Source changes not in any file (a key's latest version of a file range missing). */
  lost: number;
  /** Rows that should not be there: duplicated keys, versions outside the file's range, repeated seq_nums. */
  duplicates: number;
  problems: string[];
}

export interface LoggedRecord {
  seq: number;
  record: SourceRecord;
}

export async function sourceRecords(services: Pick<Services, 'source'>, ws: number, fileType: FileType): Promise<LoggedRecord[]> {
  const head = await services.source.head(ws, fileType);
  const out: LoggedRecord[] = [];
  for await (const r of services.source.read(ws, fileType, 0, head.seq)) out.push(r);
  return out;
}

/**
 * Files of a log-ordered run (every type except initial People/Attributes): each file's metadata
 * says where it ends in the source log, so the files must partition (startSeq, headSeq] and each must
 * hold exactly the latest version, within its range, of every key changed in that range.
 */
export async function verifyLogFiles(opts: {
  client: ContainerClient;
  ws: number;
  fileType: FileType;
  names: string[];
  records: LoggedRecord[];
  startSeq: number;
  headSeq: number;
}): Promise<Verdict> {
  const { client, ws, fileType, names, records } = opts;
  const v: Verdict = { files: names.length, rows: 0, lost: 0, duplicates: 0, problems: [] };
  const props = await inventory(client);
  const seqSeen = new Set<number>();
  let start = opts.startSeq;
  for (const name of names) {
    const meta = props.get(name)?.metadata ?? {};
    const end = decodeEnd(meta.endposition);
    if (typeof end !== 'number' || end <= start) {
      v.problems.push(`${name}: end position ${String(end)} does not follow ${start}`);
      continue;
    }
    const latest = new Map<string, LoggedRecord>();
    for (const r of records) if (r.seq > start && r.seq <= end) latest.set(keyOf(fileType, r.record), r);
    const rows = await readRows(client, name);
    v.rows += rows.length;
    if (rows.length === 0) v.problems.push(`${name}: empty file`);
    if (Number(meta.rows) !== rows.length) v.problems.push(`${name}: metadata says ${meta.rows} rows, file has ${rows.length}`);
    const got = new Map<string, Rec>();
    for (const row of rows) {
      const k = keyOf(fileType, row);
      if (got.has(k)) {
        v.duplicates++;
        v.problems.push(`${name}: key ${k} twice`);
      }
      got.set(k, row);
      if (typeof row.seq_num === 'number') {
        if (seqSeen.has(row.seq_num)) {
          v.duplicates++;
          v.problems.push(`${name}: seq_num ${row.seq_num} already exported in another file`);
        }
        seqSeen.add(row.seq_num);
      }
    }
    for (const [k, r] of latest) {
      const row = got.get(k);
      if (!row) {
        v.lost++;
        v.problems.push(`${name}: key ${k} (seq ${r.seq}) missing`);
        continue;
      }
      const want = expectedRow(fileType, ws, r.seq, r.record);
      if (JSON.stringify(row) !== JSON.stringify(want)) {
        v.lost++;
        v.problems.push(`${name}: key ${k} is not its latest version in range (${start}, ${end}]: ${JSON.stringify(row).slice(0, 300)} vs ${JSON.stringify(want).slice(0, 300)}`);
      }
    }
    for (const k of got.keys()) {
      if (!latest.has(k)) {
        v.duplicates++;
        v.problems.push(`${name}: key ${k} has no change in range (${start}, ${end}]`);
      }
    }
    start = end;
  }
  if (start !== opts.headSeq) {
    const missing = records.filter((r) => r.seq > start && r.seq <= opts.headSeq).length;
    v.lost += missing;
    v.problems.push(`files end at ${start}, the source at ${opts.headSeq}: ${missing} changes not exported`);
  }
  return v;
}

/** The people state at `peopleSeq` / `attributesSeq`, replayed from the logs (what an initial snapshot holds). */
export function snapshotRows(fileType: 'people' | 'attributes', ws: number, people: LoggedRecord[], attributes: LoggedRecord[], peopleSeq: number, attributesSeq: number): Rec[] {
  const person = new Map<string, SourceRecord>();
  for (const r of people) if (r.seq <= peopleSeq) person.set(r.record.internal_customer_id as string, r.record);
  const attrs = new Map<string, Map<string, [string, number]>>();
  for (const r of attributes) {
    if (r.seq > attributesSeq) continue;
    const id = r.record.internal_customer_id as string;
    const m = attrs.get(id) ?? new Map<string, [string, number]>();
    attrs.set(id, m);
    const value = (r.record.attribute_value as string | null | undefined) ?? null;
    if (value === null) m.delete(r.record.attribute_name as string);
    else m.set(r.record.attribute_name as string, [value, r.record.timestamp as number]);
  }
  const rows: Rec[] = [];
  for (const [id, p] of person) {
    if (p.deleted === true || p.suppressed === true || !p.customer_id) continue;
    if (fileType === 'people') {
      rows.push({
        workspace_id: ws,
        customer_id: p.customer_id,
        internal_customer_id: id,
        deleted: p.deleted === true,
        suppressed: p.suppressed === true,
        created_at: p.created_at ?? null,
        updated_at: p.updated_at ?? null,
        email_addr: p.email_addr ?? null,
      });
    } else {
      for (const [name, [value, ts]] of attrs.get(id) ?? []) rows.push({ workspace_id: ws, internal_customer_id: id, attribute_name: name, attribute_value: value, timestamp: ts });
    }
  }
  return rows;
}

/** Initial People/Attributes files: together exactly `expected`, every key once, files in key order. */
export async function verifySnapshotFiles(opts: { client: ContainerClient; fileType: 'people' | 'attributes'; names: string[]; expected: Rec[] }): Promise<Verdict> {
  const { client, fileType, names } = opts;
  const v: Verdict = { files: names.length, rows: 0, lost: 0, duplicates: 0, problems: [] };
  const props = await inventory(client);
  const got = new Map<string, Rec>();
  let previousEnd = '';
  for (const name of names) {
    const end = decodeEnd(props.get(name)?.metadata.endposition);
    if (typeof end !== 'string' || end <= previousEnd) v.problems.push(`${name}: end position ${String(end)} does not follow ${previousEnd}`);
    previousEnd = String(end);
    const rows = await readRows(client, name);
    if (rows.length === 0) v.problems.push(`${name}: empty file`);
    v.rows += rows.length;
    for (const row of rows) {
      const k = keyOf(fileType, row);
      if (got.has(k)) {
        v.duplicates++;
        v.problems.push(`${name}: key ${k} in two snapshot rows`);
      }
      got.set(k, row);
    }
  }
  const want = new Map(opts.expected.map((r) => [keyOf(fileType, r), r]));
  for (const [k, r] of want) {
    const row = got.get(k);
    if (!row || JSON.stringify(row) !== JSON.stringify(r)) {
      v.lost++;
      v.problems.push(`snapshot: ${k} ${row ? `differs: ${JSON.stringify(row)} vs ${JSON.stringify(r)}` : 'missing'}`);
    }
  }
  for (const k of got.keys()) {
    if (!want.has(k)) {
      v.duplicates++;
      v.problems.push(`snapshot: unexpected row ${k}`);
    }
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Summary lines (copied into docs/RELIABILITY.md)

/** Prints `FAULT-SUMMARY <name> {counts}`; also appends it to $FAULT_SUMMARY_FILE when set. */
export function summary(name: string, counts: Record<string, unknown>): void {
  const line = `FAULT-SUMMARY ${name} ${JSON.stringify(counts)}`;
  console.log(line);
  if (process.env.FAULT_SUMMARY_FILE) appendFileSync(process.env.FAULT_SUMMARY_FILE, line + '\n');
}

// ---------------------------------------------------------------------------------------------
// The app in the local Functions host, with fault seams and every log line captured

/** ExportFaults seams that also learn which job they run in. */
export interface JobFaults {
  afterSourceRead?(job: ExportJob): void | Promise<void>;
  afterBlockStaged?(blocks: number, job: ExportJob): void | Promise<void>;
  afterBlobCommit?(job: ExportJob): void | Promise<void>;
  afterCheckpoint?(job: ExportJob): void | Promise<void>;
}

export interface FaultHost {
  readonly host: Host;
  readonly services: Services;
  readonly logs: LogRecord[];
  readonly queue: QueueClient;
  readonly poison: QueueClient;
  /** HTTP call on loopback; every response text is checked for a SAS signature. */
  call(method: string, path: string, body?: unknown, opts?: { raw?: string; contentType?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; text: string; headers: Headers }>;
  /** POST ingest; throws unless 202 with every record accepted. */
  ingest(ws: number, name: string, records: unknown[]): Promise<void>;
  /** One timer tick, then wait until the queue is drained. */
  sync(timeoutMs?: number): Promise<void>;
  /** Seams of every export the host runs from now on (undefined: none). */
  setFaults(faults?: JobFaults): void;
  /**
   * Log lines and response texts that carried a SAS signature (must stay empty): any `sig=`, and
   * the signature values of every SAS URL the test sent in a request body (raw or URL-encoded).
   */
  leaks(): string[];
  /** Log lines and responses checked by leaks(). */
  readonly checked: { logLines: number; responses: number; signatures: number };
  stop(): Promise<void>;
}

const SIG = /sig=/i;
let hosts = 0;

/**
 * Starts src/index.ts in the local host with its own export queue. The app's services are the
 * same module instance the test imports, so the exporter factory is wrapped to add fault seams.
 */
export async function startFaultHost(opts: { name?: string; settings?: Record<string, string>; clock?: Clock; connectionString?: string; hostJson?: HostJson } = {}): Promise<FaultHost> {
  const queueName = `flt-${process.pid}-${Date.now().toString(36)}-${hosts++}`;
  const connectionString = opts.connectionString ?? inject('storageConnectionString');
  Object.assign(process.env, {
    AzureWebJobsStorage: connectionString,
    SAS_ENCRYPTION_KEY: TEST_KEY,
    ALLOW_EMULATOR_SAS_URLS: 'true', // the customer containers are on Azurite (path-style loopback URLs)
    EXPORT_QUEUE_NAME: queueName,
    EXPORT_SCHEDULE: '0 0 0 1 1 *', // the tests tick the timer themselves
    ...opts.settings,
  });
  if (opts.clock) useClock(opts.clock);
  const logs: LogRecord[] = [];
  const leaked: string[] = [];
  const host = await startHost({
    entry: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
    port: 0,
    hostJson: opts.hostJson ?? { version: '2.0', extensions: { queues: { batchSize: 8, maxPollingInterval: '00:00:00.200', visibilityTimeout: '00:00:00', maxDequeueCount: 5 } } },
    log: (r) => {
      logs.push(r);
      const text = JSON.stringify(r);
      if (SIG.test(text)) leaked.push(`log: ${text}`);
    },
  });
  const services = await getServices();
  let current: JobFaults | undefined;
  services.exporter = (log) => {
    let job: ExportJob = { workspaceId: 0, fileType: 'deliveries' };
    const exporter = new Exporter({
      config: services.config,
      storage: services.storage,
      source: services.source,
      people: services.people,
      deliveryOwners: services.deliveryOwners,
      integrations: services.integrations,
      cursors: services.cursors,
      clock: services.clock,
      log,
      faults: {
        afterSourceRead: () => current?.afterSourceRead?.(job),
        afterBlockStaged: (n) => current?.afterBlockStaged?.(n, job),
        afterBlobCommit: () => current?.afterBlobCommit?.(job),
        afterCheckpoint: () => current?.afterCheckpoint?.(job),
      },
    });
    const run = exporter.run.bind(exporter);
    exporter.run = (j, owner) => {
      job = j;
      return run(j, owner);
    };
    return exporter;
  };
  const responses: string[] = [];
  const signatures = new Set<string>();
  const remember = (text: string | undefined) => {
    if (!text || !SIG.test(text)) return;
    for (const m of text.matchAll(/[?&]sig=([^&"\s]+)/g)) {
      if (m[1].length < 20) continue; // real signatures are 44 characters; short ones are test junk
      signatures.add(m[1]);
      signatures.add(decodeURIComponent(m[1]));
    }
  };
  const queue = new QueueClient(connectionString, queueName);
  const poison = new QueueClient(connectionString, `${queueName}-poison`);
  await poison.createIfNotExists();
  const call: FaultHost['call'] = async (method, path, body, o = {}) => {
    const sent = o.raw !== undefined ? o.raw : body === undefined ? undefined : JSON.stringify(body);
    remember(sent);
    const r = await fetch(`${host.url}/api${path}`, { method, headers: { 'content-type': o.contentType ?? 'application/json', ...o.headers }, body: sent });
    const text = await r.text();
    responses.push(text);
    if (SIG.test(text)) leaked.push(`response ${method} ${path}: ${text}`);
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: r.status, body: parsed as any, text, headers: r.headers };
  };
  const self: FaultHost = {
    host,
    services,
    logs,
    queue,
    poison,
    call,
    async ingest(ws, name, records) {
      const r = await call('POST', `/workspaces/${ws}/ingest/${name}`, records);
      if (r.status !== 202 || r.body?.accepted !== records.length) throw new Error(`ingest ${name}: ${r.status} ${r.text}`);
    },
    async sync(timeoutMs = 30_000) {
      await host.invoke('exportTimer');
      await host.whenIdle({ timeoutMs });
    },
    setFaults(f) {
      current = f;
    },
    leaks: () => {
      const found = [...leaked];
      const texts = [...logs.map((l) => JSON.stringify(l)), ...responses];
      for (const sig of signatures) for (const t of texts) if (t.includes(sig) || t.includes(encodeURIComponent(sig))) found.push(`signature ${sig.slice(0, 6)}… in ${t.slice(0, 200)}`);
      return found;
    },
    get checked() {
      return { logLines: logs.length, responses: responses.length, signatures: signatures.size };
    },
    async stop() {
      await host.stop();
      const leaks = self.leaks();
      summary(`secrets (${opts.name ?? queueName})`, { ...self.checked, leaks: leaks.length });
    },
  };
  return self;
}

/** Texts of the messages in a queue (peek, up to 32). */
export async function peekTexts(queue: QueueClient): Promise<string[]> {
  const r = await queue.peekMessages({ numberOfMessages: 32 }).catch(() => undefined);
  return (r?.peekedMessageItems ?? []).map((m) => m.messageText);
}
