// export/: from the source log to the customer's container. job.ts tells the story; each decision
// has its own module: run-plan.ts (what a run covers), log-producer.ts and snapshot-producer.ts
// (which rows a file carries), anonymize.ts (SPEC section 4), file-writer.ts with
// create-only-blob.ts (one file, never rewritten), cursors.ts (where each pair stands, with its
// lease), fanout.ts (the timer's work), message.ts and report.ts (the queue message, telemetry).
//
// One export job for a (workspace, file type), as a short story: take the lease, decide the run,
// produce rows, write files, checkpoint after each one; hand the rest on when the time budget is spent.
//
// Crash safety: a run (what it covers, how far it got) is saved in the cursor before any file is
// written, and checkpointed after each file. A file's name comes from the cursor (its sequence), its
// content from an immutable source range, and it is committed create-only with its end position in
// its metadata. A retry after a crash between commit and checkpoint finds the file already there,
// reads where it ended, and checkpoints that: nothing is written twice, nothing is skipped.
import type { Config } from '../platform/config.js';
import type { AppStorage } from '../platform/storage.js';
import type { Clock } from '../platform/clock.js';
import { UserError } from '../platform/errors.js';
import { redact } from '../platform/redaction.js';
import type { Logger } from '../platform/log.js';
import { failureKind, telemetry } from '../platform/telemetry.js';
import { V1_FILE_TYPES } from '../contract/schemas.js';
import { fileName } from '../contract/naming.js';
import type { SourceLog } from '../source/source-log.js';
import type { PeopleState } from '../source/people-state.js';
import type { Integration, Integrations } from '../integration/settings.js';
import { CursorMoved, resetCursor, type Cursor, type Cursors } from './cursors.js';
import type { AttemptFailed, FileWritten } from './history.js';
import { enqueueExport, type ExportJob } from './message.js';
import { reported, type ExportOutcome } from './report.js';
import { isLogRun, planRun, SNAPSHOT_TYPES } from './run-plan.js';
import { anonymizedPeople, type Anonymized } from './anonymize.js';
import { logProducer } from './log-producer.js';
import { snapshotProducer } from './snapshot-producer.js';
import type { Producer } from './rows.js';
import { writeFile, type FileFaults } from './file-writer.js';

/** Fault seams for tests (crash at every step). Production passes none. */
export interface ExportFaults extends FileFaults {
  afterSourceRead?(): void | Promise<void>;
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

const released = (cursor: Cursor): Cursor => ({ ...cursor, leaseOwner: undefined, leaseUntil: 0 });

export class Exporter {
  constructor(private readonly deps: ExporterDeps) {}

  /** One export invocation for a pair, traced: a span with the outcome, metrics, a structured log line. */
  async run(job: ExportJob, owner: string): Promise<ExportOutcome> {
    return reported({ clock: this.deps.clock, log: this.deps.log, lagSeconds: (j) => this.lagSeconds(j) }, job, () => this.runPair(job, owner));
  }

  /** Queue a message for this pair (continuations; the timer's fan-out uses the same format). */
  async enqueue(job: ExportJob): Promise<void> {
    await enqueueExport(this.deps.storage.exportQueue, job);
  }

  private async runPair(job: ExportJob, owner: string): Promise<ExportOutcome> {
    const { cursors, clock, config } = this.deps;
    const started = clock.now();
    const integration = await this.deps.integrations.get(job.workspaceId);
    if (!integration || !integration.enabled || !integration.files.includes(job.fileType)) {
      return { status: 'skipped', files: [], reason: 'no enabled integration for this file type' };
    }
    if (integration.schemaVersion === 'v1' && !V1_FILE_TYPES.includes(job.fileType)) {
      return { status: 'skipped', files: [], reason: 'schema v1 has no such file' };
    }
    let cursor = await this.takeLease(job, owner);
    if (!cursor) return { status: 'busy', files: [] };

    const files: ExportOutcome['files'] = [];
    try {
      const generation = integration.generations[job.fileType] ?? 0;
      cursor = await this.decideRun(cursor, generation);
      if (!cursor.run) {
        await cursors.save(released(cursor));
        return { status: 'nothing', files };
      }
      const anonymize = cursor.run.kind === 'initial' ? await anonymizedPeople(this.deps.people, job.workspaceId, job.fileType) : undefined;
      for (let first = true; ; first = false) {
        // Disabled, turned off or restarted while we worked: stop here; the cursor keeps what was done.
        if (!first && !(await this.stillWanted(job, generation))) {
          await cursors.save(released(cursor));
          return { status: 'skipped', files, reason: 'the integration changed during the export' };
        }
        const run = cursor.run!;
        const isPart = run.partSequence !== undefined;
        const sequence = isPart ? run.partSequence! : cursor.nextSequence;
        const name = fileName(job.fileType, integration.schemaVersion, job.workspaceId, sequence, isPart ? run.nextPart : undefined);
        const fileStartedAt = clock.now();
        const file = await writeFile(integration, name, job.fileType, this.producer(cursor, integration, anonymize), run, this.deps.faults);
        if (!file) {
          // Nothing left: the run is complete.
          cursor = await cursors.save({ ...released(cursor), run: undefined, lastSeq: run.targetSeq, initialDone: true, lastError: undefined, lastErrorCode: undefined, lastErrorAt: undefined });
          await cursors.history.prune(job.workspaceId, clock.now()).catch(() => undefined);
          return { status: files.length || run.files ? 'done' : 'nothing', files };
        }
        files.push({ name, sequence, rows: file.rows, bytes: file.bytes });
        telemetry.fileWritten(job, file.rows);
        this.deps.log?.info('export file written', { workspaceId: job.workspaceId, fileType: job.fileType, file: name, sequence, ...(isPart ? { part: run.nextPart } : {}), rows: file.rows, bytes: file.bytes });
        const oldest = typeof run.position === 'number' ? await this.deps.source.oldestCommitAfter(job.workspaceId, job.fileType, run.position) : undefined;
        const written: FileWritten = {
          outcome: 'written', fileType: job.fileType, name, sequence, ...(isPart ? { part: run.nextPart } : {}), kind: run.kind, rows: file.rows, bytes: file.bytes,
          startedAt: fileStartedAt, committedAt: clock.now(), lagSeconds: oldest === undefined ? null : Math.max(0, Math.round((clock.now() - oldest) / 1000)),
        };
        cursor = await cursors.save({
          ...cursor,
          run: { ...run, position: file.end, files: run.files + 1, rows: run.rows + file.rows, ...(isPart ? { nextPart: run.nextPart! + 1 } : {}) },
          nextSequence: isPart ? cursor.nextSequence : cursor.nextSequence + 1,
          filesExported: cursor.filesExported + 1,
          rowsExported: cursor.rowsExported + file.rows,
          lastExportAt: clock.now(),
          leaseUntil: clock.now() + config.leaseMs,
        }, written);
        await this.deps.faults?.afterCheckpoint?.();
        if (clock.now() - started >= config.timeBudgetMs) {
          // Hand the rest on: release the lease first, so the continuation can take it.
          cursor = await cursors.save(released(cursor));
          await this.enqueue(job);
          return { status: 'continued', files };
        }
      }
    } catch (e) {
      if (e instanceof CursorMoved) return { status: 'busy', files, reason: 'another worker took over this export' };
      return this.recordFailure(job, owner, e, files);
    }
  }

  /** One worker per pair: the cursor's lease (a crashed worker's lease expires). Undefined when busy. */
  private async takeLease(job: ExportJob, owner: string): Promise<Cursor | undefined> {
    const { cursors, clock, config } = this.deps;
    const cursor = await cursors.get(job.workspaceId, job.fileType);
    if (cursor.leaseUntil > clock.now() && cursor.leaseOwner !== owner) return undefined;
    try {
      return await cursors.save({ ...cursor, leaseOwner: owner, leaseUntil: clock.now() + config.leaseMs });
    } catch (e) {
      if (e instanceof CursorMoved) return undefined;
      throw e;
    }
  }

  /** The run this invocation works on, saved in the cursor; a cursor without a run has nothing to do. */
  private async decideRun(cursor: Cursor, generation: number): Promise<Cursor> {
    const { cursors } = this.deps;
    // Re-enabled sync or schema upgrade: this file type starts over (its sequence carries on).
    if (cursor.generation !== generation) cursor = await cursors.save(resetCursor(cursor, generation));
    if (!cursor.run) {
      const run = await planRun(this.deps, cursor, this.deps.clock.now());
      if (!run) return cursor;
      return cursors.save({ ...cursor, run, ...(run.partSequence !== undefined ? { nextSequence: cursor.nextSequence + 1 } : {}) });
    }
    if (isLogRun(cursor.fileType, cursor.run)) {
      // A resumed log run (after a failure or a continuation) also takes what arrived since it
      // started: its files are cut from `position` on, so a later target changes nothing already written.
      const head = await this.deps.source.head(cursor.workspaceId, cursor.fileType);
      if (head.seq > cursor.run.targetSeq) return cursors.save({ ...cursor, run: { ...cursor.run, targetSeq: head.seq } });
    }
    return cursor;
  }

  private producer(cursor: Cursor, integration: Integration, anonymize?: Anonymized): Producer {
    const run = cursor.run!;
    const { config, faults } = this.deps;
    if (run.kind === 'initial' && SNAPSHOT_TYPES.includes(cursor.fileType)) {
      return snapshotProducer(this.deps.people, config, cursor.workspaceId, cursor.fileType, String(run.position));
    }
    const range = { workspaceId: cursor.workspaceId, fileType: cursor.fileType, after: Number(run.position), target: run.targetSeq, since: run.eventsSince };
    return logProducer(this.deps.source, config, range, { version: integration.schemaVersion, anonymize, afterSourceRead: faults?.afterSourceRead });
  }

  private async stillWanted(job: ExportJob, generation: number): Promise<boolean> {
    const i = await this.deps.integrations.get(job.workspaceId);
    return !!i && i.enabled && i.files.includes(job.fileType) && (i.generations[job.fileType] ?? 0) === generation;
  }

  /**
   * A customer-side problem (credentials, container) is recorded and retried at the next tick, not
   * hot-looped into the poison queue; anything else fails the message so the host retries it.
   */
  private async recordFailure(job: ExportJob, owner: string, e: unknown, files: ExportOutcome['files']): Promise<ExportOutcome> {
    const { cursors, clock } = this.deps;
    const err = e instanceof Error ? e : new Error(String(e));
    const fresh = await cursors.get(job.workspaceId, job.fileType);
    const recorded = {
      ...(fresh.leaseOwner === owner ? released(fresh) : fresh),
      lastError: redact(err.message),
      lastErrorCode: err instanceof UserError ? err.code : 'export_failed',
      lastErrorAt: clock.now(),
    };
    const failed: AttemptFailed = { outcome: 'failed', fileType: job.fileType, ...(fresh.run ? { kind: fresh.run.kind } : {}), failedAt: recorded.lastErrorAt, code: recorded.lastErrorCode, message: recorded.lastError };
    await cursors.save(recorded, failed).catch(() => undefined);
    await cursors.history.prune(job.workspaceId, clock.now()).catch(() => undefined);
    if (err instanceof UserError) return { status: 'failed', files, reason: err.message, failureKind: failureKind(err) === 'credentials' ? 'credentials' : 'bad_data' };
    throw e;
  }

  /** Age of the oldest change of the pair not exported yet (0 when up to date). */
  private async lagSeconds(job: ExportJob): Promise<number | undefined> {
    const cursor = await this.deps.cursors.get(job.workspaceId, job.fileType);
    const oldest = await this.deps.source.oldestCommitAfter(job.workspaceId, job.fileType, cursor.lastSeq);
    return oldest === undefined ? 0 : Math.max(0, Math.round((this.deps.clock.now() - oldest) / 1000));
  }
}
