// Ingest throughput: one client posting batches of 1,000 records (deliveries, or people with
// ATTRIBUTES_PER_PERSON attributes each) to the HTTP route of the local host, against Azurite (in
// memory). Run (after npm run build): node dist/bench/ingest.js [records] [fileType] [people already in the workspace]
import { fileURLToPath } from 'node:url';
import { startAzurite } from '../src/local/azurite.js';
import { startHost } from '../src/local/host.js';

export interface IngestBenchResult {
  fileType: string;
  records: number;
  seconds: number;
  recordsPerSecond: number;
  /** people only: attributes each person carries (all new: every one is a change). */
  attributesPerPerson?: number;
  /** People the workspace held before the measured ones (ingested the same way, untimed). */
  history?: number;
}

export const ATTRIBUTES_PER_PERSON = 5;

/** The benchmark's person i: 5 attributes, every one new. */
export const benchPerson = (i: number) => ({
  internal_customer_id: `p${i}`,
  customer_id: `c${i}`,
  email_addr: `p${i}@example.com`,
  attributes: { plan: i % 3 ? 'free' : 'pro', city: `city-${i % 97}`, score: i % 1000, verified: i % 2 === 0, signup_source: `campaign-${i % 13}` },
});

/** One Azurite and one host for all runs (the app's services are built once per process). */
export async function benchIngest(runs: { records: number; fileType: 'deliveries' | 'people'; history?: number }[], batch = 1000): Promise<IngestBenchResult[]> {
  const azurite = await startAzurite();
  Object.assign(process.env, {
    AzureWebJobsStorage: azurite.connectionString,
    SAS_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
    EXPORT_SCHEDULE: '0 0 0 1 1 *',
  });
  const host = await startHost({ entry: fileURLToPath(new URL('../src/index.js', import.meta.url)), port: 0, log: (r) => r.level === 'error' && console.error(r.message), timers: false, queues: false });
  try {
    const results: IngestBenchResult[] = [];
    for (const [index, { records: total, fileType, history = 0 }] of runs.entries()) {
      const ws = index + 1;
      const make = (i: number) =>
        fileType === 'people'
          ? benchPerson(i)
          : { delivery_id: `d${i}`, internal_customer_id: `p${i % 5000}`, delivery_type: 'email', campaign_id: i % 50, action_id: i % 500, created_at: new Date(1_700_000_000_000 + i * 1000).toISOString() };
      const post = async (body: string) => {
        const r = await fetch(`${host.url}/api/workspaces/${ws}/ingest/${fileType}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
        if (r.status !== 202) throw new Error(`ingest answered ${r.status}: ${await r.text()}`);
      };
      const bodiesOf = (from: number, until: number) => {
        const bodies = [];
        for (let i = from; i < until; i += batch) bodies.push(JSON.stringify(Array.from({ length: Math.min(batch, until - i) }, (_, j) => make(i + j))));
        return bodies;
      };
      // Warm-up (first request creates tables), then the history (untimed; bodies built 20 at a time).
      await post(JSON.stringify([make(-1)]));
      for (let i = 0; i < history; i += 20 * batch) for (const body of bodiesOf(i, Math.min(history, i + 20 * batch))) await post(body);
      const bodies = bodiesOf(history, history + total);
      const t0 = performance.now();
      for (const body of bodies) await post(body);
      const seconds = (performance.now() - t0) / 1000;
      results.push({ fileType, records: total, seconds, recordsPerSecond: total / seconds, ...(fileType === 'people' ? { attributesPerPerson: ATTRIBUTES_PER_PERSON } : {}), ...(history ? { history } : {}) });
    }
    return results;
  } finally {
    await host.stop();
    await azurite.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const total = Number(process.argv[2] ?? 50_000);
  const fileType = (process.argv[3] ?? 'deliveries') as 'deliveries' | 'people';
  benchIngest([{ records: total, fileType, history: Number(process.argv[4] ?? 0) }]).then((r) => console.log(JSON.stringify(r[0])));
}
