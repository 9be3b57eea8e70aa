// Issue 4, fault 4: the app's own storage (tables, queue, source-log blobs) is unavailable for a
// while. The app runs on a dedicated, persisted Azurite; three exports are held at different seams
// (a fourth pair has changes waiting), Azurite is stopped, the held exports are released into the
// outage, the timer, the status route and an ingest run during it; then Azurite restarts on the same ports and folder. Nothing is
// lost, exports resume, committed files are never rewritten, nothing is poisoned.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TableClient } from '@azure/data-tables';
import { startAzurite, type Azurite } from '../../src/local/azurite.js';
import { ManualClock } from '../../src/lib/platform/clock.js';
import type { ExportJob } from '../../src/lib/export/message.js';
import { customerContainer, type CustomerContainer } from '../support/container.js';
import { freshWorkspace } from '../support/env.js';
import {
  Gate,
  changedBlobs,
  inventory,
  peekTexts,
  sequenceProblems,
  sourceRecords,
  startFaultHost,
  summary,
  verifyLogFiles,
  waitFor,
  type FaultHost,
  type JobFaults,
  type Rec,
} from '../support/faults.js';

const LEASE_SECONDS = 60;
const clock = new ManualClock(Date.now());
const folder = mkdtempSync(path.join(tmpdir(), 'outage-azurite-'));
let app: Azurite;
let h: FaultHost;

beforeAll(async () => {
  app = await startAzurite({ location: folder });
  h = await startFaultHost({
    name: 'storage-outage',
    connectionString: app.connectionString,
    clock,
    settings: { EXPORT_MAX_ROWS_PER_FILE: '20', EXPORT_LEASE_SECONDS: String(LEASE_SECONDS) },
    // newBatchThreshold 2: while the three held exports run, the listener fetches no new batch, so no
    // receive of its own is caught in the SDK's retry back-off (4 s, 8 s, ...) during the outage.
    hostJson: { version: '2.0', extensions: { queues: { batchSize: 8, newBatchThreshold: 2, maxPollingInterval: '00:00:00.200', visibilityTimeout: '00:00:00', maxDequeueCount: 5 } } },
  });
});

afterAll(async () => {
  h?.setFaults(undefined);
  await h?.stop();
  await app?.stop();
  rmSync(folder, { recursive: true, force: true });
  expect(h.leaks()).toEqual([]);
});

const iso = (ms: number) => new Date(ms).toISOString();
const deliveries = (from: number, to: number, campaign = 1): Rec[] =>
  Array.from({ length: to - from }, (_, i) => ({ delivery_id: `d${from + i}`, delivery_type: 'email', campaign_id: campaign, created_at: iso(clock.now() + from + i) }));

interface Held {
  name: string;
  ws: number;
  c: CustomerContainer;
  gate: Gate;
  /** Which seam call holds the export. */
  seam: keyof JobFaults;
  at: number;
  calls: number;
  armed: boolean;
}

describe('the app storage goes down and comes back', () => {
  it('exports held at three seams, an idle pair, timer, status and ingest during the outage: everything converges exactly', async () => {
    // Three pairs: a 3-file initial run held after its 2nd commit (before the checkpoint), a changeset
    // held after reading the source, a 3-file run held after its 1st checkpoint.
    const held: Held[] = [];
    const hold = (seam: keyof JobFaults) => (a: unknown, b?: unknown) => {
      const job = (seam === 'afterBlockStaged' ? b : a) as ExportJob;
      const x = held.find((e) => e.ws === job.workspaceId && e.seam === seam && e.armed);
      if (x && ++x.calls === x.at) return x.gate.wait();
    };
    h.setFaults({ afterSourceRead: hold('afterSourceRead'), afterBlobCommit: hold('afterBlobCommit'), afterCheckpoint: hold('afterCheckpoint') });
    for (const [name, seam, at, changeset] of [
      // Not running at the outage: changes accepted before it, exported after it.
      ['idle, changes ingested before the outage', 'afterBlockStaged', 0, true],
      ['changeset, after source read #1', 'afterSourceRead', 1, true],
      // (initial runs start with the PUT, so these come after the ones that wait for idle)
      ['initial, after commit #2', 'afterBlobCommit', 2, false],
      ['initial, after checkpoint #1', 'afterCheckpoint', 1, false],
    ] as const) {
      const ws = freshWorkspace();
      const c = await customerContainer();
      const x: Held = { name, ws, c, gate: new Gate(), seam, at, calls: 0, armed: !changeset };
      held.push(x);
      await h.ingest(ws, 'deliveries', deliveries(0, changeset ? 10 : 50));
      // Creating the integration starts its initial export at once.
      expect((await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, files: ['deliveries'] })).status).toBe(201);
      if (changeset) {
        await h.host.whenIdle({ timeoutMs: 30_000 });
        await h.ingest(ws, 'deliveries', [...deliveries(10, 50), ...deliveries(0, 5, 2)]);
        x.armed = at > 0;
      }
    }
    const gated = held.filter((x) => x.at > 0);
    await h.host.invoke('exportTimer');
    await Promise.all(gated.map((x) => x.gate.reached));
    const committedBefore = await Promise.all(held.map((x) => inventory(x.c.client)));
    const statusBefore = await Promise.all(held.map((x) => h.call('GET', `/workspaces/${x.ws}/integration`)));

    // --- the outage ---
    await app.stop();
    const observed: Record<string, string> = {};
    const probe = TableClient.fromConnectionString(app.connectionString, 'cursors', { allowInsecureConnection: true });
    const pending = {
      probe: probe.getEntity('x', 'y').then(() => 'up', (e) => `down: ${(e as { code?: string }).code}`),
      timer: h.host.invoke('exportTimer').then(() => 'ran', (e) => `failed: ${String((e as Error).message).split('\n')[0].slice(0, 80)}`),
      status: h.call('GET', `/workspaces/${held[0].ws}/integration`).then((r) => `${r.status} ${r.body?.error?.code}`),
    };
    for (const x of gated) x.gate.open(); // the held exports continue into the outage
    observed.probe = await pending.probe;
    observed.timer = await pending.timer;
    observed.status = await pending.status;
    // An ingest during the outage: accepted (202, once a retry reaches the restarted storage) or
    // refused (500), never half-stored.
    const late = deliveries(100, 105, 7);
    const lateIngest = h.call('POST', `/workspaces/${held[0].ws}/ingest/deliveries`, late);
    const pollFailures = h.logs.filter((r) => /polling '.*' failed/.test(r.message)).length;
    expect(observed.probe).toMatch(/^down/);
    expect(observed.timer).toMatch(/^failed/); // the fan-out could not read the integrations
    expect(observed.status).toBe('500 internal'); // {error:{code,message}}, no detail leaked
    app = await startAzurite({ location: folder, blobPort: app.blobPort, queuePort: app.queuePort, tablePort: app.tablePort });
    // --- storage is back ---

    h.setFaults(undefined);

    // Converge: the host retries failed messages; a pair whose lease could not be released waits for
    // it to expire (the clock moves past it) and the next timer tick.
    let leaseExpiries = 0;
    const converged = async () => {
      for (const x of held) {
        const s = await h.call('GET', `/workspaces/${x.ws}/integration`);
        if (s.status !== 200 || s.body.files.deliveries.pendingChanges !== 0 || s.body.files.deliveries.running) return false;
      }
      return true;
    };
    for (let round = 0; !(await converged()); round++) {
      expect(round).toBeLessThan(5);
      try {
        await waitFor(converged, 'exports resumed by the host', 4000, 200);
      } catch {
        clock.advance((LEASE_SECONDS + 1) * 1000);
        leaseExpiries++;
        await h.host.invoke('exportTimer');
      }
    }

    const late202 = await lateIngest;
    expect([202, 500]).toContain(late202.status);
    await h.sync(); // an accepted late ingest is exported too

    let lost = 0;
    let duplicates = 0;
    let rewritten = 0;
    const problems: string[] = [];
    for (const [i, x] of held.entries()) {
      const names = (await x.c.list()).filter((n) => n.endsWith('.parquet'));
      const records = await sourceRecords(h.services, x.ws, 'deliveries');
      const v = await verifyLogFiles({ client: x.c.client, ws: x.ws, fileType: 'deliveries', names, records, startSeq: 0, headSeq: records.at(-1)!.seq });
      problems.push(...v.problems.map((p) => `${x.name}: ${p}`), ...sequenceProblems('deliveries', x.ws, names, 1).map((p) => `${x.name}: ${p}`));
      lost += v.lost;
      duplicates += v.duplicates;
      const changed = changedBlobs(committedBefore[i], await inventory(x.c.client));
      rewritten += changed.length;
      problems.push(...changed.map((n) => `${x.name}: ${n} rewritten`));
      // What was committed before the outage is still there after the restart (persisted storage).
      const cursor = await h.services.cursors.get(x.ws, 'deliveries');
      expect(cursor.nextSequence - 1, x.name).toBeGreaterThanOrEqual(statusBefore[i].body.files.deliveries.lastSequence);
    }
    const source0 = await sourceRecords(h.services, held[0].ws, 'deliveries');
    const lateStored = source0.filter((r) => Number(r.record.campaign_id) === 7).length;
    expect(lateStored).toBe(late202.status === 202 ? late.length : 0); // all or nothing
    expect(problems).toEqual([]);
    const poisoned = await peekTexts(h.poison);
    expect(poisoned).toEqual([]);
    const workerFailures = h.logs.filter((r) => /Executed 'exportWorker' \(Failed/.test(r.message)).length;
    summary('storage outage', {
      heldExports: gated.length,
      idlePairs: held.length - gated.length,
      observed,
      queuePollFailures: pollFailures,
      workerFailuresDuringOutage: workerFailures,
      leaseExpiriesNeeded: leaseExpiries,
      ingestDuringOutage: late202.status,
      rowsLost: lost,
      duplicateRows: duplicates,
      rewrittenFiles: rewritten,
      poisoned: poisoned.length,
    });
  });
});
