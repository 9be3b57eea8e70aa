// One crash trial: an export of one (workspace, file type) crashes at the n-th call of one seam,
// the container is listed before the retry, a new owner retries, and the result is checked exactly
// against the source log. Two ways to crash:
//  - 'throw': the seam throws (an exception inside the worker: its catch path runs, the lease is
//    released, the host would retry the message);
//  - 'die': the seam never returns (the process froze or died: no catch path, the lease stays held
//    until it expires). After the new owner finished, the frozen worker is woken up ("zombie") and
//    must neither write nor rewrite anything.
import { Exporter, type ExportFaults } from '../../src/lib/export/job.js';
import type { ExportOutcome } from '../../src/lib/export/report.js';
import { ManualClock } from '../../src/lib/platform/clock.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../src/lib/services.js';
import { startAzurite, type Azurite } from '../../src/local/azurite.js';
import { SCHEMAS, type FileType } from '../../src/lib/contract/schemas.js';
import { customerContainer, type CustomerContainer } from '../support/container.js';
import { freshWorkspace, testConfig, testStorage } from '../support/env.js';
import {
  Gate,
  changedBlobs,
  inventory,
  parseFileName,
  readRows,
  sequenceProblems,
  snapshotRows,
  sourceRecords,
  summary,
  uncommittedOnly,
  verifyLogFiles,
  verifySnapshotFiles,
  within,
  type Verdict,
} from '../support/faults.js';

export type Seam = 'afterSourceRead' | 'afterBlockStaged' | 'afterBlobCommit' | 'afterCheckpoint';
export const SEAMS: readonly Seam[] = ['afterSourceRead', 'afterBlockStaged', 'afterBlobCommit', 'afterCheckpoint'];
export type Mode = 'throw' | 'die' | 'interleave';
/** 'interleave': where the new owner is held when the frozen worker wakes up. */
export interface Interleave {
  seam: Seam;
  at: number;
}

export class Crash extends Error {
  constructor(seam: string) {
    super(`injected crash ${seam}`);
  }
}

export interface Scenario {
  name: string;
  fileType: FileType;
  maxRowsPerFile: number;
  /** Ingested once per lane (a workspace that runs trials one after the other). */
  history(services: Services, ws: number): Promise<void>;
  /**
   * Changeset scenarios: the lane's first export runs without faults; each trial then ingests
   * these changes (`k` = trial number in the lane) and its changeset run crashes. Without it, each
   * trial is an initial sync (the integration is deleted and created again: cursors start over,
   * file sequences carry on).
   */
  changes?(services: Services, ws: number, k: number): Promise<void>;
  /** Ingested between the crash and the retry (a resumed log run takes them too). */
  between?(services: Services, ws: number, k: number): Promise<void>;
}

/** A workspace whose history is ingested once; its trials run one after the other, each into a new container. */
export interface Lane {
  ws: number;
  trials: number;
}

export async function openLane(services: Services, s: Scenario): Promise<Lane> {
  const ws = freshWorkspace();
  await s.history(services, ws);
  if (s.changes) {
    const c = await customerContainer();
    await services.integrations.put(ws, { sasUrl: c.sasUrl, files: [s.fileType] });
    const first = await runToEnd(exporter(services, new ManualClock(Date.now()), s.maxRowsPerFile), ws, s.fileType, 'setup');
    if (first.status !== 'done') throw new Error(`${s.name}: the lane's initial export: ${first.status}`);
  }
  return { ws, trials: 0 };
}

export interface TrialResult {
  label: string;
  /** Committed files listed before the retry / after. */
  filesBefore: number;
  filesAfter: number;
  /** Blocks staged but not committed at the crash (afterBlockStaged): listed only with uncommitted blobs. */
  stagedInvisible: number;
  /** Problems: visible partial files, rewritten files, lost/duplicated rows, sequence gaps, zombie writes. */
  problems: string[];
  lost: number;
  duplicates: number;
  rewritten: number;
  partialVisible: number;
  zombieWrites: number;
  rows: number;
  ms: number;
}

export const LEASE_MS = 60_000;

export function exporter(services: Services, clock: ManualClock, maxRowsPerFile: number, faults?: ExportFaults): Exporter {
  return new Exporter({
    config: { ...services.config, maxRowsPerFile, leaseMs: LEASE_MS, timeBudgetMs: 3600_000 },
    storage: services.storage,
    source: services.source,
    people: services.people,
    deliveryOwners: services.deliveryOwners,
    integrations: services.integrations,
    cursors: services.cursors,
    clock,
    faults,
  });
}

export async function runToEnd(e: Exporter, ws: number, fileType: FileType, owner: string): Promise<ExportOutcome> {
  for (let i = 0; i < 50; i++) {
    const out = await e.run({ workspaceId: ws, fileType }, owner);
    if (out.status !== 'continued') return out;
  }
  throw new Error('export did not finish in 50 invocations');
}

export async function crashTrial(services: Services, lane: Lane, s: Scenario, seam: Seam, occurrence: number, mode: Mode, interleave?: Interleave): Promise<TrialResult> {
  const label = `${s.name} ${seam}#${occurrence} ${mode}${interleave ? ` (new owner held ${interleave.seam}#${interleave.at})` : ''}`;
  const t0 = Date.now();
  const lap = (what: string) => process.env.FAULT_TRACE && console.log(`${label} ${what} +${Date.now() - t0}ms`);
  const ws = lane.ws;
  const k = ++lane.trials;
  const c: CustomerContainer = await customerContainer();
  const fileType = s.fileType;
  if (s.changes) {
    await services.integrations.put(ws, { sasUrl: c.sasUrl, files: [fileType] });
    await s.changes(services, ws, k);
  } else {
    // A new integration: cursors start over with an initial sync, sequences carry on.
    await services.integrations.delete(ws);
    await services.integrations.put(ws, { sasUrl: c.sasUrl, files: [fileType] });
  }
  const clock = new ManualClock(Date.now());
  const result: TrialResult = { label, filesBefore: 0, filesAfter: 0, stagedInvisible: 0, problems: [], lost: 0, duplicates: 0, rewritten: 0, partialVisible: 0, zombieWrites: 0, rows: 0, ms: 0 };
  const problem = (p: string) => result.problems.push(`${label}: ${p}`);

  const snapshot = fileType === 'people' || fileType === 'attributes';
  // Heads an initial snapshot is taken at (nothing is ingested during one in these trials).
  const snapshotAt = snapshot ? { people: (await services.source.head(ws, 'people')).seq, attributes: (await services.source.head(ws, 'attributes')).seq } : undefined;
  const start = await services.cursors.get(ws, fileType);
  const seqBefore = start.nextSequence;
  const startSeq = s.changes ? start.lastSeq : 0;
  lap('setup');

  // The crashing owner.
  let calls = 0;
  let crashed = false;
  const zombie = new Gate();
  const fault = async () => {
    if (++calls !== occurrence) return;
    crashed = true;
    if (mode === 'throw') throw new Crash(seam);
    await zombie.wait(); // frozen until the test wakes it
  };
  const faults: ExportFaults = { [seam]: fault };
  const a = exporter(services, clock, s.maxRowsPerFile, faults);
  const runA = a.run({ workspaceId: ws, fileType }, 'owner-a').then(
    (outcome) => ({ outcome }),
    (error: unknown) => ({ error }),
  );
  if (mode === 'throw') {
    const r = await within(runA, 30_000, `${label}: crashing run`);
    if (!('error' in r) || !(r.error instanceof Crash)) problem(`expected the injected crash, got ${JSON.stringify('outcome' in r ? r.outcome.status : String(r.error))}`);
  } else {
    const first = await within(Promise.race([zombie.reached.then(() => undefined), runA]), 30_000, `${label}: reaching the seam`);
    if (first) problem(`the run ended before reaching ${seam}#${occurrence}: ${'outcome' in first ? first.outcome.status : String(first.error)}`);
  }
  if (!crashed) problem(`${seam} was called only ${calls} times`);

  lap('crashed');
  // Before the retry: only complete files are visible; staged blocks are not a file.
  const before = await inventory(c.client);
  const parquet = (m: Map<string, unknown>) => [...m.keys()].filter((n) => n.endsWith('.parquet')).sort();
  const visible = parquet(before);
  result.filesBefore = visible.length;
  for (const name of visible) {
    try {
      const rows = await readRows(c.client, name);
      const declared = Number(before.get(name)!.metadata.rows);
      if (rows.length === 0 || rows.length !== declared) {
        result.partialVisible++;
        problem(`${name} visible with ${rows.length} rows (metadata ${declared})`);
      }
    } catch (e) {
      result.partialVisible++;
      problem(`${name} visible but not a readable parquet file: ${(e as Error).message}`);
    }
  }
  if (seam === 'afterBlockStaged') {
    const staged = (await uncommittedOnly(c.client)).filter((n) => n.endsWith('.parquet'));
    result.stagedInvisible = staged.length;
    if (staged.length !== 1) problem(`expected one blob with staged, uncommitted blocks, found ${JSON.stringify(staged)}`);
    for (const n of staged) if (visible.includes(n)) problem(`${n} is visible while only staged`);
  }

  if (s.between) await s.between(services, ws, k);
  lap('listed');

  // The retry: a new owner (a new invocation of the worker).
  const b = exporter(services, clock, s.maxRowsPerFile);
  if (mode !== 'throw') {
    const blocked = await b.run({ workspaceId: ws, fileType }, 'owner-b');
    if (blocked.status !== 'busy') problem(`new owner while the lease is held: ${blocked.status}, expected busy`);
    clock.advance(LEASE_MS + 1000);
  }
  if (mode === 'interleave') {
    // The new owner is held mid-run; the frozen worker wakes up and goes on (it may commit the file
    // both are writing: the other must take it over, never rewrite it); then the new owner goes on.
    const held = new Gate();
    let callsB = 0;
    const bHeld = exporter(services, clock, s.maxRowsPerFile, { [interleave!.seam]: async () => void (++callsB === interleave!.at && (await held.wait())) });
    const runB = bHeld.run({ workspaceId: ws, fileType }, 'owner-b').then(
      (outcome) => ({ outcome }),
      (error: unknown) => ({ error }),
    );
    const wasHeld = await within(Promise.race([held.reached.then(() => true), runB.then(() => false)]), 30_000, `${label}: new owner reaching its seam`);
    if (!wasHeld) problem(`the new owner never reached ${interleave!.seam}#${interleave!.at}`);
    zombie.open();
    const ra = await within(runA, 30_000, `${label}: zombie`);
    const statusA = 'outcome' in ra ? ra.outcome.status : `error ${String(ra.error)}`;
    if (statusA !== 'busy') problem(`woken zombie: ${statusA}, expected busy`);
    held.open();
    const rb = await within(runB, 30_000, `${label}: new owner`);
    if (!('outcome' in rb) || rb.outcome.status !== 'done') problem(`new owner: ${'outcome' in rb ? `${rb.outcome.status} ${rb.outcome.reason ?? ''}` : String(rb.error)}`);
  } else {
    const retry = await runToEnd(b, ws, fileType, 'owner-b');
    if (retry.status !== 'done') problem(`retry: ${retry.status} ${retry.reason ?? ''}`);
  }
  const again = await runToEnd(b, ws, fileType, 'owner-c');
  if (again.status !== 'nothing') problem(`a further run: ${again.status}`);
  const afterRetry = await inventory(c.client);
  lap('retried');

  if (mode === 'die') {
    // The frozen worker wakes up after the new owner finished: it must stop without writing.
    zombie.open();
    const r = await within(runA, 30_000, `${label}: zombie`);
    const status = 'outcome' in r ? r.outcome.status : `error ${String(r.error)}`;
    if (status !== 'busy') problem(`woken zombie: ${status}, expected busy`);
    const afterZombie = await inventory(c.client);
    const added = [...afterZombie.keys()].filter((n) => !afterRetry.has(n));
    const changed = changedBlobs(afterRetry, afterZombie);
    result.zombieWrites = added.length + changed.length;
    if (result.zombieWrites) problem(`zombie wrote ${JSON.stringify(added)} / rewrote ${JSON.stringify(changed)}`);
  }
  lap('zombie');
  const after = await inventory(c.client);
  const rewritten = changedBlobs(before, after);
  result.rewritten = rewritten.length;
  if (rewritten.length) problem(`rewritten or deleted after the retry: ${JSON.stringify(rewritten)}`);

  // Exact content.
  const names = parquet(after);
  result.filesAfter = names.length;
  result.problems.push(...sequenceProblems(fileType, ws, names, seqBefore).map((p) => `${label}: ${p}`));
  const cursor = await services.cursors.get(ws, fileType);
  const lastSequence = Math.max(...names.map((n) => parseFileName(fileType, ws, n)!.sequence));
  if (cursor.nextSequence !== lastSequence + 1) problem(`cursor nextSequence ${cursor.nextSequence}, last file sequence ${lastSequence}`);
  if (cursor.run || cursor.leaseOwner || cursor.lastError) problem(`cursor not clean: ${JSON.stringify({ run: cursor.run, lease: cursor.leaseOwner, error: cursor.lastError })}`);
  if (seqBefore > lastSequence + 1) problem('sequence went backwards');

  const verdicts: Verdict[] = [];
  const records = await sourceRecords(services, ws, fileType);
  const head = records.length ? records[records.length - 1].seq : 0;
  if (snapshot) {
    const people = await sourceRecords(services, ws, 'people');
    const attributes = await sourceRecords(services, ws, 'attributes');
    const initial = names.filter((n) => typeof JSON.parse(Buffer.from(after.get(n)!.metadata.endposition, 'base64url').toString()) === 'string');
    const expected = snapshotRows(fileType as 'people' | 'attributes', ws, people, attributes, snapshotAt!.people, snapshotAt!.attributes);
    if (initial.length) verdicts.push(await verifySnapshotFiles({ client: c.client, fileType: fileType as 'people' | 'attributes', names: initial, expected }));
    const changesFrom = s.changes ? startSeq : fileType === 'people' ? snapshotAt!.people : snapshotAt!.attributes;
    verdicts.push(await verifyLogFiles({ client: c.client, ws, fileType, names: names.filter((n) => !initial.includes(n)), records, startSeq: changesFrom, headSeq: head }));
  } else {
    verdicts.push(await verifyLogFiles({ client: c.client, ws, fileType, names, records, startSeq, headSeq: head }));
  }
  for (const v of verdicts) {
    result.lost += v.lost;
    result.duplicates += v.duplicates;
    result.rows += v.rows;
    result.problems.push(...v.problems.map((p) => `${label}: ${p}`));
  }
  lap('verified');
  result.ms = Date.now() - t0;
  return result;
}

/** How many times each seam is called in a fault-free trial of the scenario (to place crashes). */
export async function seamCounts(services: Services, s: Scenario): Promise<Record<Seam, number>> {
  const lane = await openLane(services, s);
  const c = await customerContainer();
  await services.integrations.put(lane.ws, { sasUrl: c.sasUrl, files: [s.fileType] });
  if (s.changes) await s.changes(services, lane.ws, 0);
  const counts = { afterSourceRead: 0, afterBlockStaged: 0, afterBlobCommit: 0, afterCheckpoint: 0 } as Record<Seam, number>;
  const faults: ExportFaults = Object.fromEntries(SEAMS.map((seam) => [seam, () => void counts[seam]++]));
  await runToEnd(exporter(services, new ManualClock(Date.now()), s.maxRowsPerFile, faults), lane.ws, s.fileType, 'count');
  return counts;
}

/**
 * Every seam × first/middle/last call, thrown or frozen, spread over `lanes` workspaces that run
 * their trials one after the other (lanes in parallel).
 */
export async function crashMatrix(services: Services, s: Scenario, lanes = 4): Promise<{ counts: Record<Seam, number>; results: TrialResult[] }> {
  const counts = await seamCounts(services, s);
  const trials: { seam: Seam; at: number; mode: Mode }[] = [];
  // Thrown: first, middle and last call of every seam. Frozen: first and last (the middle file is
  // covered by the interleaved trials, where the frozen worker wakes while the new owner is mid-file).
  for (const seam of SEAMS) {
    const at = positions(counts[seam]);
    for (const n of at) trials.push({ seam, at: n, mode: 'throw' });
    for (const n of new Set([at[0], at[at.length - 1]])) if (n !== undefined) trials.push({ seam, at: n, mode: 'die' });
  }
  const opened = await Promise.all(Array.from({ length: Math.min(lanes, trials.length) }, () => openLane(services, s)));
  const results: TrialResult[] = [];
  await Promise.all(
    opened.map(async (lane, i) => {
      for (let t = i; t < trials.length; t += opened.length) results.push(await crashTrial(services, lane, s, trials[t].seam, trials[t].at, trials[t].mode));
    }),
  );
  return { counts, results };
}

/**
 * The frozen worker wakes while the new owner is held at another seam of the same (or next) file.
 * (Initial People/Attributes snapshots have no afterSourceRead seam: their producer scans the state.)
 */
export function interleavings(snapshot: boolean): { a: [Seam, number]; b: Interleave }[] {
  const read: Seam = snapshot ? 'afterBlobCommit' : 'afterSourceRead';
  const out: { a: [Seam, number]; b: Interleave }[] = [];
  for (const a of [[read, 2], ['afterBlockStaged', 2], ['afterCheckpoint', 1]] as [Seam, number][]) {
    for (const b of [{ seam: snapshot ? 'afterCheckpoint' : 'afterSourceRead', at: 1 }, { seam: 'afterBlockStaged', at: 1 }, { seam: 'afterBlobCommit', at: 1 }] as Interleave[]) out.push({ a, b });
  }
  return out;
}

export async function interleaveMatrix(services: Services, s: Scenario, lanes = 3): Promise<TrialResult[]> {
  const all = interleavings(!s.changes && (s.fileType === 'people' || s.fileType === 'attributes'));
  const opened = await Promise.all(Array.from({ length: lanes }, () => openLane(services, s)));
  const results: TrialResult[] = [];
  await Promise.all(
    opened.map(async (lane, i) => {
      for (let t = i; t < all.length; t += opened.length) {
        const { a, b } = all[t];
        results.push(await crashTrial(services, lane, s, a[0], a[1], 'interleave', b));
      }
    }),
  );
  return results;
}

/** First, middle and last occurrence (deduplicated). */
export const positions = (n: number): number[] => (n === 0 ? [] : [...new Set([1, Math.ceil(n / 2), n])]);

/** Runs trials with at most `concurrency` at once. */
export async function pool<T, R>(items: T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

export function totals(results: TrialResult[]) {
  const sum = (k: keyof TrialResult) => results.reduce((n, r) => n + (r[k] as number), 0);
  return {
    trials: results.length,
    rowsChecked: sum('rows'),
    filesChecked: sum('filesAfter'),
    stagedButInvisible: sum('stagedInvisible'),
    rowsLost: sum('lost'),
    duplicateRows: sum('duplicates'),
    rewrittenFiles: sum('rewritten'),
    partialFilesVisible: sum('partialVisible'),
    zombieWrites: sum('zombieWrites'),
    problems: results.reduce((n, r) => n + r.problems.length, 0),
    msPerTrial: Math.round(sum('ms') / Math.max(1, results.length)),
  };
}

export { SCHEMAS };

/**
 * The crash suite of a group of scenarios: on a dedicated Azurite (no other test's timer fans out
 * these workspaces), every seam × position of each scenario, then the interleaved-owner runs.
 */
export function crashSuite(title: string, scenarios: Scenario[], options: { minTrials: number; interleave: Scenario[]; interleaveTitle: (s: Scenario) => string }): void {
  let services: Services;
  let app: Azurite;
  beforeAll(async () => {
    app = await startAzurite();
    const config = testConfig({ AzureWebJobsStorage: app.connectionString });
    await testStorage(config);
    services = createServices(config);
  });
  afterAll(async () => {
    await app?.stop();
  });

  describe(`crash at every export step, ${title}`, () => {
    const all: TrialResult[] = [];
    for (const scenario of scenarios) {
      it(`${scenario.name}: every seam × first/middle/last, thrown or frozen, converges exactly`, async () => {
        const { counts, results } = await crashMatrix(services, scenario);
        all.push(...results);
        summary(`crash ${scenario.name}`, { seamCalls: counts, ...totals(results) });
        expect(results.flatMap((r) => r.problems)).toEqual([]);
        expect(results.length).toBeGreaterThanOrEqual(options.minTrials);
      });
    }
    for (const scenario of options.interleave) {
      it(options.interleaveTitle(scenario), async () => {
        const results = await interleaveMatrix(services, scenario);
        all.push(...results);
        summary(`interleaved owners ${scenario.name}`, totals(results));
        expect(results.flatMap((r) => r.problems)).toEqual([]);
      });
    }
    it('summary', () => summary(`crash ${title} (all)`, totals(all)));
  });
}
