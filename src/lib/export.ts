// One export job for a (workspace, file type): cursor → delta → parquet files → cursor.
//
// Crash safety: a run (what it covers, how far it got) is saved in the cursor before any file is
// written, and checkpointed after each file. A file's name comes from the cursor (its sequence), its
// content from an immutable source range, and it is committed create-only with its end position in
// its metadata. A retry after a crash between commit and checkpoint finds the file already there,
// reads where it ended, and checkpoints that: nothing is written twice, nothing is skipped.
import { ContainerClient } from '@azure/storage-blob';
import type { Config } from './config.js';
import type { AppStorage } from './storage.js';
import { encodeKey } from './storage.js';
import { z } from 'zod';
import { columnsFor, FILE_TYPES, SCHEMAS, V1_FILE_TYPES, type FileType, type SchemaVersion } from './schemas.js';
import { ParquetFileWriter, type Row } from './parquet.js';
import { CreateOnlyBlob } from './blob-file.js';
import { blobName, fileName } from './naming.js';
import type { SourceLog, SourceRecord } from './source.js';
import type { PeopleState, PersonState } from './people-state.js';
import type { Integration, Integrations } from './integration.js';
import { containerError } from './integration.js';
import { CursorMoved, resetCursor, type Cursor, type Cursors, type Run } from './cursors.js';
import { randomUUID } from 'node:crypto';
import type { Clock } from './clock.js';
import { UserError } from './errors.js';
import { redact } from './sas.js';
import type { Logger } from './log.js';
import { failureKind, telemetry } from './telemetry.js';

const exportMessage = z.strictObject({
  workspaceId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  fileType: z.enum(FILE_TYPES),
});

/** The export queue's message: `{workspaceId, fileType}` (base64 JSON on the wire; never a SAS). */
export function parseExportMessage(message: unknown): { success: true; data: ExportJob } | { success: false; issues: string[] } {
  const parsed = exportMessage.safeParse(message);
  return parsed.success ? { success: true, data: parsed.data } : { success: false, issues: parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`) };
}

export const EVENTS_INITIAL_WINDOW_MS = 30 * 24 * 3600 * 1000;

export interface ExportJob {
  workspaceId: number;
  fileType: FileType;
}

export type ExportStatus = 'skipped' | 'busy' | 'nothing' | 'done' | 'continued' | 'failed';

export interface ExportOutcome {
  status: ExportStatus;
  files: { name: string; sequence: number; rows: number; bytes: number }[];
  reason?: string;
  failureKind?: 'credentials' | 'bad_data';
}


/** Fault seams for tests (issue: crash at every step). Production passes none. */
export interface ExportFaults {
  afterSourceRead?(): void | Promise<void>;
  afterBlockStaged?(blocks: number): void | Promise<void>;
  afterBlobCommit?(): void | Promise<void>;
  afterCheckpoint?(): void | Promise<void>;
}

export interface ExporterDeps {
  config: Config;
  storage: AppStorage;
  source: SourceLog;
  people: PeopleState;
  integrations: Integrations;
  cursors: Cursors;
  clock: Clock;
  log?: Logger;
  faults?: ExportFaults;
}

interface FileResult {
  rows: number;
  bytes: number;
  end: number | string;
}

/** Rows of one file: written to `write`, returns how far into the run it got (undefined = nothing left). */
type Producer = (write: (row: Row) => Promise<void> | void) => Promise<{ rows: number; end: number | string }>;

const SNAPSHOT_TYPES: readonly FileType[] = ['people', 'attributes'];

export class Exporter {
  constructor(private readonly deps: ExporterDeps) {}

  /** One export invocation for a pair, traced: a span with the outcome, metrics, a structured log line. */
  async run(job: ExportJob, owner: string): Promise<ExportOutcome> {
    const started = this.deps.clock.now();
    const fields = { workspaceId: job.workspaceId, fileType: job.fileType };
    return telemetry.exportSpan({ 'workspace.id': job.workspaceId, 'export.file_type': job.fileType }, async (span) => {
      let outcome: ExportOutcome;
      try {
        outcome = await this.runPair(job, owner);
      } catch (e) {
        const kind = failureKind(e);
        telemetry.failure(kind, fields);
        this.deps.log?.error('export failed', { ...fields, outcome: 'error', failureKind: kind, error: redact(String((e as Error)?.message ?? e)), durationMs: this.deps.clock.now() - started });
        throw e;
      }
      const rows = outcome.files.reduce((n, f) => n + f.rows, 0);
      const bytes = outcome.files.reduce((n, f) => n + f.bytes, 0);
      const sequences = outcome.files.map((f) => f.sequence);
      const summary = {
        ...fields,
        outcome: outcome.status,
        files: outcome.files.length,
        rows,
        bytes,
        ...(sequences.length ? { firstSequence: Math.min(...sequences), lastSequence: Math.max(...sequences) } : {}),
        durationMs: this.deps.clock.now() - started,
        ...(outcome.reason ? { reason: outcome.reason } : {}),
      };
      span.setAttributes({
        'export.outcome': outcome.status,
        'export.files': outcome.files.length,
        'export.rows': rows,
        'export.bytes': bytes,
        ...(sequences.length ? { 'export.sequence': Math.max(...sequences) } : {}),
      });
      if (outcome.status === 'failed') {
        const kind = outcome.failureKind ?? 'credentials';
        telemetry.failure(kind, fields);
        span.setAttribute('export.failure_kind', kind);
        this.deps.log?.warn('export failed', { ...summary, failureKind: kind });
      } else {
        this.deps.log?.info('export finished', summary);
      }
      const lag = await this.lagSeconds(job).catch(() => undefined);
      if (lag !== undefined) {
        telemetry.lag(fields, lag);
        span.setAttribute('export.lag_seconds', lag);
      }
      return outcome;
    });
  }

  /** Age of the oldest change of the pair not exported yet (0 when up to date). */
  private async lagSeconds(job: ExportJob): Promise<number | undefined> {
    const cursor = await this.deps.cursors.get(job.workspaceId, job.fileType);
    const oldest = await this.deps.source.oldestCommitAfter(job.workspaceId, job.fileType, cursor.lastSeq);
    return oldest === undefined ? 0 : Math.max(0, Math.round((this.deps.clock.now() - oldest) / 1000));
  }

  private async runPair(job: ExportJob, owner: string): Promise<ExportOutcome> {
    const { integrations, cursors, clock, config } = this.deps;
    const started = clock.now();
    const integration = await integrations.get(job.workspaceId);
    if (!integration || !integration.enabled || !integration.files.includes(job.fileType)) {
      return { status: 'skipped', files: [], reason: 'no enabled integration for this file type' };
    }
    if (integration.schemaVersion === 'v1' && !V1_FILE_TYPES.includes(job.fileType)) {
      return { status: 'skipped', files: [], reason: 'schema v1 has no such file' };
    }
    // Lease: one worker per pair; a crashed worker's lease expires.
    let cursor = await cursors.get(job.workspaceId, job.fileType);
    if (cursor.leaseUntil > clock.now() && cursor.leaseOwner !== owner) return { status: 'busy', files: [] };
    try {
      cursor = await cursors.save({ ...cursor, leaseOwner: owner, leaseUntil: clock.now() + config.leaseMs });
    } catch (e) {
      if (e instanceof CursorMoved) return { status: 'busy', files: [] };
      throw e;
    }

    const files: ExportOutcome['files'] = [];
    try {
      // Re-enabled sync or schema upgrade: this file type starts over (its sequence carries on).
      const generation = integration.generations[job.fileType] ?? 0;
      if (cursor.generation !== generation) cursor = await cursors.save(resetCursor(cursor, generation));
      if (!cursor.run) {
        const run = await this.startRun(cursor);
        if (!run) {
          await cursors.save({ ...cursor, leaseUntil: 0, leaseOwner: undefined });
          return { status: 'nothing', files };
        }
        cursor = await cursors.save({ ...cursor, run, ...(run.partSequence !== undefined ? { nextSequence: cursor.nextSequence + 1 } : {}) });
      } else if (!SNAPSHOT_TYPES.includes(job.fileType) || cursor.run.kind === 'changeset') {
        // A resumed log run (after a failure or a continuation) also takes what arrived since it
        // started: its files are cut from `position` on, so a later target changes nothing already written.
        const head = await this.deps.source.head(job.workspaceId, job.fileType);
        if (head.seq > cursor.run.targetSeq) cursor = await cursors.save({ ...cursor, run: { ...cursor.run, targetSeq: head.seq } });
      }
      const anonymize = cursor.run!.kind === 'initial' ? await this.anonymizedPeople(job) : undefined;
      for (let first = true; ; first = false) {
        // Disabled, turned off or restarted while we worked: stop here; the cursor keeps what was done.
        if (!first && !(await this.stillWanted(job, generation))) {
          await cursors.save({ ...cursor, leaseOwner: undefined, leaseUntil: 0 });
          return { status: 'skipped', files, reason: 'the integration changed during the export' };
        }
        const run = cursor.run!;
        const isPart = run.partSequence !== undefined;
        const sequence = isPart ? run.partSequence! : cursor.nextSequence;
        const name = fileName(job.fileType, integration.schemaVersion, job.workspaceId, sequence, isPart ? run.nextPart : undefined);
        const producer = this.producer(cursor, integration.schemaVersion, anonymize);
        const file = await this.writeFile(integration, name, job.fileType, producer, run, !!integration.sasPolicyId);
        if (!file) {
          // Nothing left: the run is complete.
          cursor = await cursors.save({
            ...cursor,
            run: undefined,
            lastSeq: run.targetSeq,
            initialDone: true,
            leaseOwner: undefined,
            leaseUntil: 0,
            lastError: undefined,
            lastErrorCode: undefined,
            lastErrorAt: undefined,
          });
          return { status: files.length || run.files ? 'done' : 'nothing', files };
        }
        files.push({ name, sequence, rows: file.rows, bytes: file.bytes });
        telemetry.fileWritten(job, file.rows);
        this.deps.log?.info('export file written', { workspaceId: job.workspaceId, fileType: job.fileType, file: name, sequence, ...(isPart ? { part: run.nextPart } : {}), rows: file.rows, bytes: file.bytes });
        cursor = await cursors.save({
          ...cursor,
          run: { ...run, position: file.end, files: run.files + 1, rows: run.rows + file.rows, ...(isPart ? { nextPart: run.nextPart! + 1 } : {}) },
          nextSequence: isPart ? cursor.nextSequence : cursor.nextSequence + 1,
          filesExported: cursor.filesExported + 1,
          rowsExported: cursor.rowsExported + file.rows,
          lastExportAt: clock.now(),
          leaseUntil: clock.now() + config.leaseMs,
        });
        await this.deps.faults?.afterCheckpoint?.();
        if (clock.now() - started >= config.timeBudgetMs) {
          // Hand the rest on: release the lease first, so the continuation can take it.
          cursor = await cursors.save({ ...cursor, leaseOwner: undefined, leaseUntil: 0 });
          await this.enqueue(job);
          return { status: 'continued', files };
        }
      }
    } catch (e) {
      if (e instanceof CursorMoved) return { status: 'busy', files, reason: 'another worker took over this export' };
      const err = e instanceof Error ? e : new Error(String(e));
      const fresh = await cursors.get(job.workspaceId, job.fileType);
      const owned = fresh.leaseOwner === owner;
      const recorded = {
        ...fresh,
        lastError: redact(err.message),
        lastErrorCode: err instanceof UserError ? err.code : 'export_failed',
        lastErrorAt: clock.now(),
        ...(owned ? { leaseOwner: undefined, leaseUntil: 0 } : {}),
      };
      await cursors.save(recorded).catch(() => undefined);
      // A customer-side problem (credentials, container) is recorded and retried at the next tick,
      // not hot-looped into the poison queue; anything else fails the message so the host retries it.
      if (err instanceof UserError) return { status: 'failed', files, reason: err.message, failureKind: failureKind(err) === 'credentials' ? 'credentials' : 'bad_data' };
      throw e;
    }
  }

  private async stillWanted(job: ExportJob, generation: number): Promise<boolean> {
    const i = await this.deps.integrations.get(job.workspaceId);
    return !!i && i.enabled && i.files.includes(job.fileType) && (i.generations[job.fileType] ?? 0) === generation;
  }

  /** Queue a message for this pair (continuations; the timer's fan-out uses the same format). */
  async enqueue(job: ExportJob): Promise<void> {
    const text = JSON.stringify({ workspaceId: job.workspaceId, fileType: job.fileType });
    await this.deps.storage.exportQueue.sendMessage(Buffer.from(text).toString('base64'));
  }

  /** What the next run covers; undefined when there is nothing to export. */
  private async startRun(cursor: Cursor): Promise<Run | undefined> {
    const { source, people, clock } = this.deps;
    const now = clock.now();
    const base = { id: randomUUID(), startedAt: now, files: 0, rows: 0 };
    if (!cursor.initialDone) {
      if (SNAPSHOT_TYPES.includes(cursor.fileType)) {
        const heads = await people.catchUp(cursor.workspaceId);
        const head = cursor.fileType === 'people' ? heads.people : heads.attributes;
        return { kind: 'initial', targetSeq: head.seq, position: '', ...base };
      }
      const head = await source.head(cursor.workspaceId, cursor.fileType);
      return {
        kind: 'initial',
        targetSeq: head.seq,
        position: 0,
        ...(cursor.fileType === 'metrics' ? { partSequence: cursor.nextSequence, nextPart: 1 } : {}),
        ...(cursor.fileType === 'events' ? { eventsSince: now - EVENTS_INITIAL_WINDOW_MS } : {}),
        ...base,
      };
    }
    const head = await source.head(cursor.workspaceId, cursor.fileType);
    if (head.seq <= cursor.lastSeq) return undefined;
    return { kind: 'changeset', targetSeq: head.seq, position: cursor.lastSeq, ...base };
  }

  /** People deleted or suppressed now: their ids (and addresses, for content recipients) are nulled in initial syncs. */
  private async anonymizedPeople(job: ExportJob): Promise<Anonymized | undefined> {
    if (job.fileType === 'people' || job.fileType === 'attributes' || job.fileType === 'metrics') return undefined;
    const ids = await this.deps.people.deletedOrSuppressed(job.workspaceId);
    if (ids.size === 0) return undefined;
    const addresses = new Set<string>();
    if (job.fileType === 'content') {
      for (const s of (await this.deps.people.get(job.workspaceId, ids)).values()) if (s.email_addr) addresses.add(s.email_addr);
    }
    return { ids, addresses };
  }

  private producer(cursor: Cursor, version: SchemaVersion, anonymize?: Anonymized): Producer {
    const run = cursor.run!;
    if (run.kind === 'initial' && SNAPSHOT_TYPES.includes(cursor.fileType)) {
      return (write) => this.snapshotChunk(cursor.workspaceId, cursor.fileType, String(run.position), write);
    }
    const schema = SCHEMAS[cursor.fileType];
    const keyOf = (r: SourceRecord) => schema.primaryKey.map((k) => String(r[k])).join('\u0000');
    const since = run.eventsSince;
    const keep = since === undefined ? undefined : (r: SourceRecord) => (r.timestamp as number) >= since;
    const withSeq = version === 'v4' && schema.columns.some((c) => c.name === 'seq_num');
    return async (write) => {
      const plan = await this.planChunk(cursor.workspaceId, cursor.fileType, Number(run.position), run.targetSeq, keyOf, keep);
      await this.deps.faults?.afterSourceRead?.();
      if (plan.latest.size === 0) return { rows: 0, end: plan.end };
      let rows = 0;
      for await (const { seq, record } of this.deps.source.read(cursor.workspaceId, cursor.fileType, Number(run.position), plan.end)) {
        if (plan.latest.get(keyOf(record)) !== seq) continue; // an older version of a key this file carries
        if (keep && !keep(record)) continue;
        // The record is this pass's own (parsed for it): extend it in place, so rows share a shape (faster to encode).
        const row: Row = record;
        row.workspace_id = cursor.workspaceId;
        if (withSeq) row.seq_num = seq;
        if (anonymize) anonymizeRow(row, anonymize);
        await write(row);
        rows++;
      }
      return { rows, end: plan.end };
    };
  }

  /**
   * Pass 1 over the source range: which version of each key the next file carries (at most one row
   * per primary key per file) and where the file ends. Only keys are held, never rows.
   */
  private async planChunk(workspaceId: number, fileType: FileType, after: number, target: number, keyOf: (r: SourceRecord) => string, keep?: (r: SourceRecord) => boolean) {
    const { maxRowsPerFile, maxBytesPerFile } = this.deps.config;
    const latest = new Map<string, number>();
    let end = after;
    let bytes = 0;
    for await (const { seq, record } of this.deps.source.read(workspaceId, fileType, after, target)) {
      if (!keep || keep(record)) {
        const key = keyOf(record);
        const size = approxSize(record);
        if (!latest.has(key) && latest.size > 0 && (latest.size >= maxRowsPerFile || bytes + size > maxBytesPerFile)) break;
        latest.set(key, seq);
        bytes += size;
      }
      end = seq;
    }
    if (latest.size === 0) end = target;
    return { latest, end };
  }

  /** Initial People/Attributes: a snapshot of the people state, in key order from `after`. */
  private async snapshotChunk(workspaceId: number, fileType: FileType, after: string, write: (row: Row) => Promise<void> | void) {
    const { maxRowsPerFile, maxBytesPerFile } = this.deps.config;
    let rows = 0;
    let bytes = 0;
    let end = after;
    for await (const person of this.deps.people.scan(workspaceId, after)) {
      // A person's rows stay in one file: the limits are checked between people.
      if (rows >= maxRowsPerFile || bytes >= maxBytesPerFile) break;
      end = encodeKey(person.internal_customer_id);
      if (!person.customer_id || person.deleted || person.suppressed) continue;
      for (const row of snapshotRows(workspaceId, fileType, person)) {
        await write(row);
        rows++;
        bytes += approxSize(row);
      }
    }
    return { rows, end };
  }

  private async writeFile(integration: Integration, name: string, fileType: FileType, produce: Producer, run: Run, viaPolicy: boolean): Promise<FileResult | undefined> {
    const customer = <T>(op: () => Promise<T>) => onCustomer(op, viaPolicy);
    const container = new ContainerClient(integration.sasUrl);
    const client = container.getBlockBlobClient(blobName(integration.blobPath, name));
    const blob = new CreateOnlyBlob(client);
    const faults = this.deps.faults;
    let staged = 0;
    const sink = {
      stageBlock: async (bytes: Uint8Array) => {
        await customer(() => blob.stageBlock(bytes));
        await faults?.afterBlockStaged?.(++staged);
      },
    };
    const writer = new ParquetFileWriter({ columns: columnsFor(fileType, integration.schemaVersion), sink });
    const produced = await produce((row) => writer.write(row));
    // No rows left (or only filtered ones, like events older than the window): the run is complete.
    if (produced.rows === 0) return undefined;
    const { bytes } = await writer.finish();
    const outcome = await customer(() => blob.commit({ rows: String(produced.rows), endposition: encodePosition(produced.end), run: run.id }));
    await faults?.afterBlobCommit?.();
    if (outcome === 'created') return { rows: produced.rows, bytes, end: produced.end };
    // A previous attempt committed this file (crash before its checkpoint): continue from where it ended.
    const props = await customer(() => client.getProperties());
    const end = props.metadata?.endposition;
    if (end === undefined || props.metadata?.run !== run.id) throw new UserError('file_name_taken', `a blob named ${name} already exists in the container and was not written by this export run: remove it (or clear the old files of a previous sync) and the export continues`);
    return { rows: Number(props.metadata?.rows ?? 0), bytes: props.contentLength ?? 0, end: decodePosition(end) };
  }
}

/** Errors of the customer's container become UserErrors saying what to fix (and never carry the URL). */
async function onCustomer<T>(op: () => Promise<T>, viaPolicy: boolean): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw containerError(e, viaPolicy);
  }
}

interface Anonymized {
  ids: Set<string>;
  addresses: Set<string>;
}

function anonymizeRow(row: Row, a: Anonymized): void {
  if (typeof row.internal_customer_id === 'string' && a.ids.has(row.internal_customer_id)) row.internal_customer_id = null;
  if (typeof row.recipient === 'string' && a.addresses.has(row.recipient)) row.recipient = null;
}

function snapshotRows(workspaceId: number, fileType: FileType, p: PersonState): Row[] {
  if (fileType === 'people') {
    return [{
      workspace_id: workspaceId,
      customer_id: p.customer_id,
      internal_customer_id: p.internal_customer_id,
      deleted: p.deleted,
      suppressed: p.suppressed,
      created_at: p.created_at,
      updated_at: p.updated_at,
      email_addr: p.email_addr,
    }];
  }
  return Object.entries(p.attrs).map(([name, [value, ts]]) => ({
    workspace_id: workspaceId,
    internal_customer_id: p.internal_customer_id,
    attribute_name: name,
    attribute_value: value,
    timestamp: ts,
  }));
}

function approxSize(record: SourceRecord): number {
  let n = 16;
  for (const v of Object.values(record)) n += typeof v === 'string' ? v.length + 8 : 9;
  return n;
}

// Blob metadata values must be ASCII: positions (numbers or person keys) travel as base64url JSON.
const encodePosition = (p: number | string) => Buffer.from(JSON.stringify(p)).toString('base64url');
const decodePosition = (s: string) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as number | string;
