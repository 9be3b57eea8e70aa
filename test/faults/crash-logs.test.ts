// Issue 4, fault 1 (log-ordered types): a crash at every seam of one export × first / middle / last
// file, initial sync and changeset (with updates), deliveries and the metrics initial parts, thrown
// or frozen, with changes ingested between the crash and the retry.
import { crashSuite, type Scenario } from './crash-harness.js';

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

crashSuite('log-ordered types', SCENARIOS, { minTrials: 20, interleave: [SCENARIOS[1], SCENARIOS[2]], interleaveTitle: (s) => `${s.name}: a frozen worker wakes while the new owner is mid-file: one file per name, taken over, never rewritten` });
