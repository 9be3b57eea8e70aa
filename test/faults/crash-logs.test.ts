// Issue 4, fault 1 (log-ordered types): a crash at every seam of one export × first / middle / last
// file, initial sync and changeset (with updates), deliveries and the metrics initial parts, thrown
// or frozen, with changes ingested between the crash and the retry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../src/local/azurite.js';
import { createServices, type Services } from '../../src/lib/services.js';
import { testConfig, testStorage } from '../support/env.js';
import { summary } from '../support/faults.js';
import { crashMatrix, interleaveMatrix, totals, type Scenario, type TrialResult } from './crash-harness.js';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const deliveries = (from: number, to: number, campaign = 1) =>
  Array.from({ length: to - from }, (_, i) => ({ delivery_id: `d${from + i}`, delivery_type: 'email', campaign_id: campaign, created_at: iso(T0 + from + i) }));
const metrics = (from: number, to: number, metric = 'sent') =>
  Array.from({ length: to - from }, (_, i) => ({ event_id: `m${from + i}`, delivery_id: `d${from + i}`, metric, created_at: iso(T0 + from + i), reason: null }));

const SCENARIOS: Scenario[] = [
  {
    name: 'deliveries initial (3 files)',
    fileType: 'deliveries',
    maxRowsPerFile: 20,
    history: async (s, ws) => void (await s.ingest.ingest(ws, 'deliveries', deliveries(0, 50))),
    between: async (s, ws, k) => void (await s.ingest.ingest(ws, 'deliveries', deliveries(0, 3, 100 * k + 9))),
  },
  {
    name: 'deliveries changeset (3 files, updates)',
    fileType: 'deliveries',
    maxRowsPerFile: 15,
    history: async (s, ws) => void (await s.ingest.ingest(ws, 'deliveries', deliveries(0, 30))),
    changes: async (s, ws, k) => {
      await s.ingest.ingest(ws, 'deliveries', deliveries(0, 15, 100 * k + 2));
      await s.ingest.ingest(ws, 'deliveries', deliveries(1000 * k + 30, 1000 * k + 50));
      await s.ingest.ingest(ws, 'deliveries', deliveries(0, 10, 100 * k + 3));
    },
    between: async (s, ws, k) => void (await s.ingest.ingest(ws, 'deliveries', [...deliveries(1000 * k + 50, 1000 * k + 55), ...deliveries(20, 25, 100 * k + 4)])),
  },
  {
    name: 'metrics initial (3 parts)',
    fileType: 'metrics',
    maxRowsPerFile: 20,
    history: async (s, ws) => void (await s.ingest.ingest(ws, 'metrics', metrics(0, 50))),
    between: async (s, ws, k) => void (await s.ingest.ingest(ws, 'metrics', metrics(0, 3, `opened-${k}`))),
  },
];

let services: Services;
let app: Azurite;
// The app's own storage is a dedicated Azurite: no other test's timer fans out these workspaces.
beforeAll(async () => {
  app = await startAzurite();
  const config = testConfig({ AzureWebJobsStorage: app.connectionString });
  await testStorage(config);
  services = createServices(config);
});
afterAll(async () => {
  await app?.stop();
});

describe('crash at every export step, log-ordered types', () => {
  const all: TrialResult[] = [];
  for (const scenario of SCENARIOS) {
    it(`${scenario.name}: every seam × first/middle/last, thrown or frozen, converges exactly`, async () => {
      const { counts, results } = await crashMatrix(services, scenario);
      all.push(...results);
      summary(`crash ${scenario.name}`, { seamCalls: counts, ...totals(results) });
      expect(results.flatMap((r) => r.problems)).toEqual([]);
      expect(results.length).toBeGreaterThanOrEqual(20);
    });
  }
  for (const scenario of [SCENARIOS[1], SCENARIOS[2]]) {
    it(`${scenario.name}: a frozen worker wakes while the new owner is mid-file: one file per name, taken over, never rewritten`, async () => {
      const results = await interleaveMatrix(services, scenario);
      all.push(...results);
      summary(`interleaved owners ${scenario.name}`, totals(results));
      expect(results.flatMap((r) => r.problems)).toEqual([]);
    });
  }
  it('summary', () => {
    summary('crash log-ordered types (all)', totals(all));
  });
});
