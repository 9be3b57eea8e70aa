// export/: from the source log to the customer's container. job.ts tells the story; each decision
// has its own module: run-plan.ts (what a run covers), log-producer.ts and snapshot-producer.ts
// (which rows a file carries), anonymize.ts (SPEC section 4), file-writer.ts with
// create-only-blob.ts (one file, never rewritten), cursors.ts (where each pair stands, with its
// lease), fanout.ts (the timer's work), message.ts and report.ts (the queue message, telemetry).
//
// One export job for a (workspace, file type), as a short story: decide the run and take the lease
// with it, produce rows, write files, checkpoint after each one; hand the rest on when the time budget is spent.
//
// Crash safety: a run (what it covers, how far it got) is saved in the cursor before any file is
// written, and checkpointed after each file. A file's name is reserved in the cursor before its
// first block is staged (reservation.ts: handed out once, ever), its content comes from an immutable
// source range, and it is committed create-only with its end position in its metadata. A retry
// after a crash between commit and checkpoint reuses the reservation, finds the file already there,
// reads where it ended, and checkpoints that: nothing is written twice, nothing is skipped.
// Settings are read again at every file boundary (settings-check.ts, SPEC 5.7).
import type { Config } from '../platform/config.js';
import type { AppStorage } from '../platform/storage.js';
import type { Clock } from '../platform/clock.js';
import { UserError } from '../platform/errors.js';
import type { Logger } from '../platform/log.js';
import { failureKind, telemetry } from '../platform/telemetry.js';
import type { SourceLog } from '../source/source-log.js';
import { PendingPairs } from '../source/pending.js';
import type { PeopleState } from '../source/people-state.js';
import type { DeliveryOwners } from '../source/delivery-owners.js';
import type { Integration, Integrations } from '../integration/settings.js';
import { assertStorageEndpoint } from '../integration/endpoint.js';
import { CursorMoved, cursorFor, type Cursor, type Cursors, type Run } from './cursors.js';
import { completed, failureRecord, fileCheckpoint, released } from './checkpoint.js';
import { HISTORY_PRUNE_EVERY } from './history.js';
import { enqueueExport, type ExportJob } from './message.js';
import { reported, type ExportOutcome } from './report.js';
import { decideRun, SNAPSHOT_TYPES } from './run-plan.js';
import { anonymizer, type Anonymizer } from './anonymize.js';
import { logProducer } from './log-producer.js';
import { snapshotProducer } from './snapshot-producer.js';
import type { Producer } from './rows.js';
import { writeFile, type FileFaults, type WrittenFile } from './file-writer.js';
import { destinationOf, slotName, withSlot } from './reservation.js';
import { SettingsChanged, identityOf, isCurrent, notWanted, sameSettings, type Identity } from './settings-check.js';

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
  deliveryOwners: DeliveryOwners;
  integrations: Integrations;
  cursors: Cursors;
  clock: Clock;
  log?: Logger;
  faults?: ExportFaults;
}

export class Exporter {
  private readonly pending: PendingPairs;

  constructor(private readonly deps: ExporterDeps) {
    this.pending = new PendingPairs(deps.storage);
  }

  /** One export invocation for a pair, traced: a span with the outcome, metrics, a structured log line. */
  async run(job: ExportJob, owner: string): Promise<ExportOutcome> {
    return reported({ clock: this.deps.clock, log: this.deps.log, lagSeconds: (j) => this.lagSeconds(j) }, job, () => this.runPair(job, owner));
  }

  /** Queue a message for this pair (continuations; the timer's fan-out uses the same format). */
  async enqueue(job: ExportJob): Promise<void> {
    await enqueueExport(this.deps.storage.exportSender, job);
  }

  private async runPair(job: ExportJob, owner: string): Promise<ExportOutcome> {
    const { cursors, clock, config, integrations } = this.deps;
    const started = clock.now();
    // The mark is read before the source head (decideRun): a mark written after this read survives
    // this run's clear. The settings and the cursor are read alongside (independent reads).
    const [mark, read, stored] = await Promise.all([this.pending.etag(job), integrations.get(job.workspaceId), cursors.get(job.workspaceId, job.fileType)]);
    let integration = read;
    const reason = notWanted(integration, job.fileType);
    if (reason) {
      if (mark) await this.pending.clear(job, mark); // a settings change that wants the pair marks it again
      return { status: 'skipped', files: [], reason };
    }
    const identity = identityOf(integration!, job.fileType);
    const leased = this.lease(stored, owner, identity);
    if (!leased) return { status: 'busy', files: [] };
    let cursor: Cursor = leased;

    const files: ExportOutcome['files'] = [];
    try {
      // The lease is saved with the run (nothing to do: nothing is written).
      const decided = await decideRun(this.deps, leased).catch((e: unknown) => {
        if (e instanceof CursorMoved) return 'busy' as const;
        throw e;
      });
      if (decided === 'busy') return { status: 'busy', files };
      if (!decided) {
        // The head was at the cursor (the lag is 0), unless marked since the marker was read.
        const lagSeconds = await this.settle(job, mark, cursor);
        return { status: 'nothing', files, lagSeconds: mark ? lagSeconds : 0 };
      }
      cursor = decided;
      const anonymize = cursor.anonymizeAt === undefined ? undefined : anonymizer(this.deps, job.workspaceId, job.fileType, cursor.anonymizeAt);
      for (let first = true; ; first = false) {
        // A file boundary: the file is written under the settings saved now (SPEC 5.7).
        if (!first) integration = await integrations.get(job.workspaceId);
        if (!isCurrent(integration, job.fileType, identity)) return await this.stop(cursor, job, files, integration);
        const settings = integration;
        // A SAS stored under older rules must not send our writes anywhere but Azure Storage either.
        assertStorageEndpoint(settings.sasUrl, { allowEmulator: config.allowEmulatorSasUrls });
        const destination = destinationOf(settings);
        // Content rows find their person through the delivery index: bring it up to the deliveries head.
        if (anonymize?.column === 'delivery_id' && !(await this.deps.deliveryOwners.catchUp(job.workspaceId, () => clock.now(), started + config.timeBudgetMs))) {
          await cursors.save(released(cursor));
          await this.enqueue(job);
          return { status: 'continued', files };
        }
        const run = cursor.run!;
        const fileStartedAt = clock.now();
        let file: WrittenFile | undefined;
        try {
          file = await writeFile(
            {
              integration: settings,
              fileType: job.fileType,
              runId: run.id,
              reserve: async () => {
                cursor = await this.reserve(cursor, destination);
                return slotName(settings, cursor, cursor.run!.slot!);
              },
              beforeCommit: async () => {
                const now = await integrations.get(job.workspaceId);
                if (!isCurrent(now, job.fileType, identity) || !sameSettings(settings, now)) throw new SettingsChanged();
              },
            },
            this.producer(cursor, settings, anonymize),
            this.deps.faults,
          );
        } catch (e) {
          if (e instanceof SettingsChanged) continue; // abandoned before its commit; the next boundary decides
          throw e;
        }
        if (!file) {
          // Nothing left: the run is complete.
          return await this.complete(job, mark, cursor, run, files.length || run.files ? 'done' : 'nothing', files);
        }
        const slot = cursor.run!.slot!;
        files.push({ name: file.name, sequence: slot.sequence, rows: file.rows, bytes: file.bytes });
        telemetry.fileWritten(job, file.rows);
        this.deps.log?.info('export file written', { workspaceId: job.workspaceId, fileType: job.fileType, file: file.name, sequence: slot.sequence, ...(slot.part !== undefined ? { part: slot.part } : {}), rows: file.rows, bytes: file.bytes });
        // Checkpoint only while the integration still has this destination; else the rows go out again.
        integration = await integrations.get(job.workspaceId);
        if (!integration || destinationOf(integration) !== destination) continue;
        const oldestCommit = file.oldestCommit ?? (typeof run.position === 'number' ? await this.deps.source.oldestCommitAfter(job.workspaceId, job.fileType, run.position) : undefined);
        const checkpoint = fileCheckpoint(cursor, run, slot, file, { startedAt: fileStartedAt, now: clock.now(), oldestCommit, leaseMs: config.leaseMs });
        cursor = await cursors.save(checkpoint.cursor, checkpoint.entry);
        await this.deps.faults?.afterCheckpoint?.();
        // The file reached the run's target: nothing is left for another file.
        if (file.complete) return await this.complete(job, mark, cursor, run, 'done', files);
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

  /** The run is complete: saved so, old history pruned now and then, the marker settled. */
  private async complete(job: ExportJob, mark: string | undefined, current: Cursor, run: Run, status: 'done' | 'nothing', files: ExportOutcome['files']): Promise<ExportOutcome> {
    const cursor = await this.deps.cursors.save(completed(current, run));
    // Once every HISTORY_PRUNE_EVERY files (failures prune at once): more is deleted than added.
    if (Math.floor(cursor.filesExported / HISTORY_PRUNE_EVERY) !== Math.floor((cursor.filesExported - files.length) / HISTORY_PRUNE_EVERY)) {
      await this.deps.cursors.history.prune(job.workspaceId, this.deps.clock.now()).catch(() => undefined);
    }
    const lagSeconds = await this.settle(job, mark, cursor);
    return { status, files, lagSeconds };
  }

  /**
   * The pair is up to date: its marker goes unless it was marked since it was read (ETag). A commit
   * whose mark came before that read either landed before the head is touched (the check sees it) or
   * conflicts with the touch and retries with a new mark. Answers the pair's lag when the head says
   * it is 0 (nothing past the cursor).
   */
  private async settle(job: ExportJob, mark: string | undefined, cursor: Cursor): Promise<number | undefined> {
    if (!mark || !(await this.pending.clear(job, mark))) return undefined;
    const head = await this.deps.source.touchHead(job.workspaceId, job.fileType);
    if (head.seq <= cursor.lastSeq) return 0;
    await this.pending.mark(job.workspaceId, [job.fileType]);
    return undefined;
  }

  /**
   * One worker per pair: the cursor's lease (a crashed worker's lease expires), set on the cursor as
   * read but not saved (decideRun saves it with the run, ETag-guarded). Undefined when busy.
   */
  private lease(stored: Cursor, owner: string, identity: Identity): Cursor | undefined {
    const { clock, config } = this.deps;
    // Another generation starts over, another instance's cursor counts as absent (sequences carry on).
    const cursor = cursorFor(stored, identity.instance, identity.generation);
    if (cursor.leaseUntil > clock.now() && cursor.leaseOwner !== owner) return undefined;
    return { ...cursor, leaseOwner: owner, leaseUntil: clock.now() + config.leaseMs };
  }

  /** The name of the run's next file, reserved in the cursor before its first block is staged. */
  private async reserve(cursor: Cursor, destination: string): Promise<Cursor> {
    const reserved = withSlot(cursor, destination);
    if (reserved === cursor) return cursor; // a retry of this run: its own name (and maybe its committed file)
    return this.deps.cursors.save({ ...reserved, leaseUntil: this.deps.clock.now() + this.deps.config.leaseMs });
  }

  /** The integration changed under this export: stop where the cursor is; a new generation or instance starts now. */
  private async stop(cursor: Cursor, job: ExportJob, files: ExportOutcome['files'], now: Integration | undefined): Promise<ExportOutcome> {
    await this.deps.cursors.save(released(cursor));
    if (!notWanted(now, job.fileType)) await this.enqueue(job);
    return { status: 'skipped', files, reason: 'the integration changed during the export' };
  }

  private producer(cursor: Cursor, integration: Integration, anonymize?: Anonymizer): Producer {
    const run = cursor.run!;
    const { config, faults } = this.deps;
    if (run.kind === 'initial' && SNAPSHOT_TYPES.includes(cursor.fileType)) {
      return snapshotProducer(this.deps.people, config, cursor.workspaceId, cursor.fileType, String(run.position));
    }
    const range = { workspaceId: cursor.workspaceId, fileType: cursor.fileType, after: Number(run.position), target: run.targetSeq, since: run.eventsSince };
    return logProducer(this.deps.source, config, range, { version: integration.schemaVersion, anonymize, afterSourceRead: faults?.afterSourceRead });
  }

  /**
   * A customer-side problem (credentials, container) is recorded and retried at the next tick, not
   * hot-looped into the poison queue; anything else fails the message so the host retries it.
   */
  private async recordFailure(job: ExportJob, owner: string, e: unknown, files: ExportOutcome['files']): Promise<ExportOutcome> {
    const { cursors, clock } = this.deps;
    const err = e instanceof Error ? e : new Error(String(e));
    const failure = failureRecord(await cursors.get(job.workspaceId, job.fileType), owner, err, clock.now());
    await cursors.save(failure.cursor, failure.entry).catch(() => undefined);
    // Retried at the next tick: the timer enqueues marked pairs only.
    await this.pending.mark(job.workspaceId, [job.fileType]).catch(() => undefined);
    await cursors.history.prune(job.workspaceId, clock.now()).catch(() => undefined);
    if (err instanceof UserError) return { status: 'failed', files, reason: err.message, failureKind: failureKind(err) === 'credentials' ? 'credentials' : 'bad_data' };
    throw e;
  }

  /** Age of the oldest change of the pair not exported yet (0 when up to date). */
  private async lagSeconds(job: ExportJob): Promise<number | undefined> {
    const integration = await this.deps.integrations.get(job.workspaceId);
    if (!integration) return undefined;
    const { instance, generation } = identityOf(integration, job.fileType);
    const cursor = cursorFor(await this.deps.cursors.get(job.workspaceId, job.fileType), instance, generation);
    const oldest = await this.deps.source.oldestCommitAfter(job.workspaceId, job.fileType, cursor.lastSeq);
    return oldest === undefined ? 0 : Math.max(0, Math.round((this.deps.clock.now() - oldest) / 1000));
  }
}
