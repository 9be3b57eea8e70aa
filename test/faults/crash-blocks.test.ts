// Issue 4, fault 1 (mid-way through staging): delivery contents with large, incompressible bodies, so
// one file is several staged blocks (8 MiB each). A crash after the first block of a file, after its
// last block (before the commit) and in the last file: nothing partial is ever visible, the retry
// writes each file once, bodies round-trip byte for byte.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../src/local/azurite.js';
import type { Services } from '../../src/lib/services.js';
import { testServices } from '../support/env.js';
import { summary } from '../support/faults.js';
import { crashTrial, openLane, seamCounts, totals, type Mode, type Scenario, type TrialResult } from './crash-harness.js';

const MiB = 1024 * 1024;
// Base64 noise does not compress: three 3 MiB bodies make a 9 MiB file, two blocks.
const content = (i: number, bytes: number) => ({ delivery_id: `d${i}`, type: 'email', subject: `s${i}`, body: randomBytes((bytes * 3) / 4).toString('base64') });

const scenario: Scenario = {
  name: 'delivery_contents initial (2 files: 2 blocks + 1 block)',
  fileType: 'content',
  maxRowsPerFile: 3,
  history: async (s, ws) => {
    await s.ingest.ingest(ws, 'content', [0, 1, 2].map((i) => content(i, 3 * MiB)));
    await s.ingest.ingest(ws, 'content', [content(3, 64 * 1024)]);
  },
};

let services: Services;
let app: Azurite;
// The app's own storage is a dedicated Azurite: no other test's timer fans out these workspaces.
beforeAll(async () => {
  app = await startAzurite();
  services = await testServices({ AzureWebJobsStorage: app.connectionString });
});
afterAll(async () => {
  await app?.stop();
});

describe('crash mid-way through staging blocks', () => {
  it('after block 1 of 2, after block 2 of 2 (before commit), after the last file\'s block: thrown or frozen', async () => {
    const counts = await seamCounts(services, scenario);
    expect(counts.afterBlockStaged).toBe(3); // 2 blocks for the first file, 1 for the second
    const trials: { at: number; mode: Mode }[] = [];
    for (const at of [1, 2, 3]) for (const mode of ['throw', 'die'] as const) trials.push({ at, mode });
    // Two lanes (workspaces), each ingesting the 9 MiB once and running its trials in turn.
    const lanes = await Promise.all([openLane(services, scenario), openLane(services, scenario)]);
    const results: TrialResult[] = [];
    await Promise.all(lanes.map(async (lane, i) => {
      for (let t = i; t < trials.length; t += lanes.length) results.push(await crashTrial(services, lane, scenario, 'afterBlockStaged', trials[t].at, trials[t].mode));
    }));
    summary(`crash ${scenario.name}`, { seamCalls: counts, ...totals(results) });
    expect(results.flatMap((r) => r.problems)).toEqual([]);
  });
});
