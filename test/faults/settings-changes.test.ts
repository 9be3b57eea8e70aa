// Issue 10, point 4 (SPEC 5.7): a settings change saved while an export runs applies from the next
// file on. The export is held before its first file, with file 2 staged, or with file 2 committed
// but not checkpointed; then a PUT to another container or path, an upgrade, a disable or a DELETE
// is saved and the export goes on. Nothing is written under the old settings after the change, and
// the new destination gets every change from the last checkpoint made before it (the cursor never
// advances for rows that went to a destination the integration no longer has).
import { describe, expect, it } from 'vitest';
import { Admin } from '../../src/lib/api/admin.js';
import { ManualClock } from '../../src/lib/platform/clock.js';
import { customerContainer, type CustomerContainer } from '../support/container.js';
import { freshWorkspace, testServices } from '../support/env.js';
import { Gate, inventory, parquetNames, sequenceReuse, settle, sourceRecords, summary, verifyLogFiles, within } from '../support/faults.js';
import { exporter, runToEnd, type Seam } from './crash-harness.js';

const services = await testServices();

const T0 = Date.parse('2026-03-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const deliveries = (n: number) => Array.from({ length: n }, (_, i) => ({ delivery_id: `d${i}`, delivery_type: 'email', campaign_id: 1, created_at: iso(T0 + i) }));

type Change = 'PUT another container' | 'PUT another path' | 'upgrade v1 → v4' | 'disable' | 'DELETE';
const CHANGES: Change[] = ['PUT another container', 'PUT another path', 'upgrade v1 → v4', 'disable', 'DELETE'];
const POINTS: [Seam, number, string][] = [
  ['afterSourceRead', 1, 'before the first file'],
  ['afterBlockStaged', 2, 'file 2 staged'],
  ['afterBlobCommit', 2, 'file 2 committed, not checkpointed'],
];

interface Destination {
  container: CustomerContainer;
  /** Files of this destination among a container's names. */
  owns(name: string): boolean;
}

const totals = { trials: 0, filesUnderOldSettingsAfterChange: 0, rowsLost: 0, duplicateRows: 0, sequenceReuse: 0 };

describe('a settings change applies from the next file on (SPEC 5.7)', () => {
  for (const change of CHANGES) {
    for (const [seam, at, where] of POINTS) {
      it(`${change} while the export is held ${where}`, async () => {
        const ws = freshWorkspace();
        const c1 = await customerContainer();
        const v1 = change === 'upgrade v1 → v4';
        await services.ingest.ingest(ws, 'deliveries', deliveries(50));
        await services.integrations.put(ws, { sasUrl: c1.sasUrl, files: ['deliveries'], ...(v1 ? { schemaVersion: 'v1' } : {}) });
        const clock = new ManualClock(Date.now());
        const held = new Gate();
        let calls = 0;
        const job = { workspaceId: ws, fileType: 'deliveries' as const };
        const runA = settle(exporter(services, clock, 20, { [seam]: () => (++calls === at ? held.wait() : undefined) }).run(job, 'a'));
        await within(held.reached, 30_000, `held at ${seam}#${at}`);
        // What the cursor says was exported when the change is saved.
        const checkpointed = Number((await services.cursors.get(ws, 'deliveries')).run?.position ?? 0);

        let old: Destination = { container: c1, owns: () => true };
        let next: Destination | undefined;
        if (change === 'PUT another container') {
          const c2 = await customerContainer();
          await services.integrations.put(ws, { sasUrl: c2.sasUrl, files: ['deliveries'] });
          next = { container: c2, owns: () => true };
        } else if (change === 'PUT another path') {
          await services.integrations.put(ws, { sasUrl: c1.sasUrl, blobPath: 'moved', files: ['deliveries'] });
          old = { container: c1, owns: (n) => !n.startsWith('moved/') };
          next = { container: c1, owns: (n) => n.startsWith('moved/') };
        } else if (change === 'upgrade v1 → v4') {
          await services.integrations.upgrade(ws, { schemaVersion: 'v4' });
          old = { container: c1, owns: (n) => !n.includes('_v4_') };
          next = { container: c1, owns: (n) => n.includes('_v4_') };
        } else if (change === 'disable') {
          await services.integrations.disable(ws);
        } else {
          await new Admin(services).delete(ws);
        }
        const atChange = await inventory(old.container.client);

        held.open();
        const a = await within(runA, 30_000, 'the held export');
        expect('outcome' in a ? a.outcome.status : String(a.error)).not.toMatch(/failed|error/);
        if (next) expect((await runToEnd(exporter(services, clock, 20), ws, 'deliveries', 'b')).status).toMatch(/done|nothing/);

        const end = await inventory(old.container.client);
        const late = parquetNames(end).filter((n) => old.owns(n) && !atChange.has(n));
        totals.trials++;
        totals.filesUnderOldSettingsAfterChange += late.length;
        expect(late, 'files written under the old settings after the change was saved').toEqual([]);
        if (!next) return;
        const names = parquetNames(await inventory(next.container.client)).filter(next.owns);
        const records = await sourceRecords(services, ws, 'deliveries');
        const v = await verifyLogFiles({ client: next.container.client, ws, fileType: 'deliveries', names, records, startSeq: checkpointed, headSeq: records.at(-1)!.seq });
        const reuse = sequenceReuse([...parquetNames(end), ...(next.container === c1 ? [] : names)]);
        totals.rowsLost += v.lost;
        totals.duplicateRows += v.duplicates;
        totals.sequenceReuse += reuse.length;
        expect([...v.problems, ...reuse]).toEqual([]);
      });
    }
  }
  it('summary', () => summary('settings change while an export runs', totals));
});
