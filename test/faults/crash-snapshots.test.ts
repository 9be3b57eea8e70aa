// Issue 4, fault 1 (snapshot types): a crash at every seam of the initial People and Attributes
// snapshots (first / middle / last file) and of their changesets, thrown or frozen.
import type { Services } from '../../src/lib/services.js';
import { crashSuite, type Scenario } from './crash-harness.js';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const id = (i: number) => `p${String(i).padStart(2, '0')}`;
const person = (i: number, at: number, extra: Record<string, unknown> = {}) => ({
  internal_customer_id: id(i),
  customer_id: `c${i}`,
  email_addr: `${id(i)}@example.com`,
  created_at: iso(T0),
  updated_at: iso(T0 + at),
  ...extra,
});
const history = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    person(i, i, { deleted: i % 10 === 5 ? true : undefined, suppressed: i === 12 ? true : undefined, attributes: { plan: i % 2 ? 'pro' : 'free', n: i } }),
  );
// Trial k of a lane: changes that are real changes whatever earlier trials did (values carry k).
const changes = (k: number) => [
  ...Array.from({ length: 10 }, (_, i) => person(i, 10_000 * k + 1000 + i, { email_addr: `new${i}.${k}@example.com`, attributes: { plan: `enterprise-${k}`, n: i, seen: k } })),
  ...Array.from({ length: 6 }, (_, i) => person(100 * k + 15 + i, 10_000 * k + 1000 + i, { attributes: { plan: 'trial' } })),
  person(1, 10_000 * k + 2000, { deleted: k % 2 === 1 }),
  person(2, 10_000 * k + 2001, { attributes: { n: null, gone: k } }),
  ...Array.from({ length: 6 }, (_, i) => person(i, 10_000 * k + 3000 + i, { attributes: { plan: `free-${k}` } })),
];
const between = (k: number) => [person(3, 10_000 * k + 4000, { attributes: { plan: `late-${k}` } }), person(100 * k + 22, 10_000 * k + 4001, { attributes: { x: k } })];

const scenario = (fileType: 'people' | 'attributes', name: string, changeset: boolean, maxRowsPerFile: number): Scenario => ({
  name,
  fileType,
  maxRowsPerFile,
  history: async (s, ws) => void (await s.ingest.ingest(ws, 'people', history(changeset ? 15 : 25))),
  ...(changeset
    ? {
        changes: async (s: Services, ws: number, k: number) => void (await s.ingest.ingest(ws, 'people', changes(k))),
        between: async (s: Services, ws: number, k: number) => void (await s.ingest.ingest(ws, 'people', between(k))),
      }
    : {}),
});

const SCENARIOS: Scenario[] = [
  scenario('people', 'people initial snapshot (3 files)', false, 9),
  scenario('attributes', 'attributes initial snapshot (5 files)', false, 9),
  scenario('people', 'people changeset (3 files, deletion)', true, 7),
  scenario('attributes', 'attributes changeset (3 files, removal)', true, 14),
];

crashSuite('People and Attributes', SCENARIOS, { minTrials: 15, interleave: [SCENARIOS[0]], interleaveTitle: (s) => `${s.name}: a frozen worker wakes while the new owner is mid-file` });
