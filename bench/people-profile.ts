// Where a people ingest request spends its time: the phases of Ingest.ingestPeople timed in-process
// (no HTTP) and the storage requests counted, against Azurite.
// Run (after npm run build): node dist/bench/people-profile.js [people] [batch] (people as bench/ingest.ts sends them)
import { fileURLToPath } from 'node:url';
import type http from 'node:http';
import { startAzurite } from '../src/local/azurite.js';
import { countRequests, type RequestLog } from '../src/local/requests.js';
import { loadConfig } from '../src/lib/platform/config.js';
import { appStorage } from '../src/lib/platform/storage.js';
import { createServices } from '../src/lib/services.js';
import { PeopleState } from '../src/lib/source/people-state.js';
import { benchPerson } from './ingest.js';

export interface PeopleProfile {
  people: number;
  batch: number;
  seconds: number;
  peoplePerSecond: number;
  /** Per phase: milliseconds per request (mean) and storage requests per person. */
  phases: Record<string, { msPerRequest: number; opsPerPerson: number }>;
  opsPerPerson: Record<string, number>;
}

/** Requests by service (the port of the connection string) and kind: "table.GET", "blob.PUT", "table.transaction". */
function byService(connectionString: string): (o: http.RequestOptions) => string | undefined {
  const service = new Map<string, string>();
  for (const [, name, port] of connectionString.matchAll(/(Blob|Table|Queue)Endpoint=http:\/\/[^:]+:(\d+)/g)) service.set(port, name.toLowerCase());
  return (o) => {
    const name = service.get(String(o.port));
    return name && `${name}.${String(o.path).includes('$batch') ? 'transaction' : String(o.method)}`;
  };
}

export async function profilePeople(total = 10_000, batch = 1000): Promise<PeopleProfile> {
  // PROFILE_AZURITE: the connection string of an Azurite started by hand (to profile Azurite itself).
  const given = process.env.PROFILE_AZURITE;
  const azurite = given ? { connectionString: given, stop: async () => undefined } : await startAzurite();
  try {
    const config = loadConfig({ AzureWebJobsStorage: azurite.connectionString, SAS_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64') });
    await appStorage(config.storage, config.exportQueueName, config.storagePrefix).ready();
    const services = createServices(config);
    const spans: Record<string, number> = {};
    const opsAt: Record<string, number> = {};
    let counted: RequestLog | undefined;
    const totalOps = () => counted?.requests.length ?? 0;
    const time = (proto: object, name: string) => {
      const original = Reflect.get(proto, name) as (...a: unknown[]) => Promise<unknown>;
      Reflect.set(proto, name, async function (this: unknown, ...args: unknown[]) {
        const t = performance.now();
        const o = totalOps();
        try {
          return await original.apply(this, args);
        } finally {
          spans[name] = (spans[name] ?? 0) + performance.now() - t;
          opsAt[name] = (opsAt[name] ?? 0) + totalOps() - o;
        }
      });
    };
    for (const name of ['start', 'catchUp', 'get', 'read', 'apply', 'markApplied']) if (typeof Reflect.get(PeopleState.prototype, name) === 'function') time(PeopleState.prototype, name);
    time(Object.getPrototypeOf(services.source), 'append');
    const make = benchPerson;
    const ws = 1;
    await services.ingest.ingest(ws, 'people', [make(-1)]);
    for (const k of Object.keys(spans)) delete spans[k];
    counted = countRequests(byService(azurite.connectionString));
    for (const k of Object.keys(opsAt)) delete opsAt[k];
    const bodies = [];
    for (let i = 0; i < total; i += batch) bodies.push(Array.from({ length: Math.min(batch, total - i) }, (_, j) => make(i + j)));
    const t0 = performance.now();
    for (const body of bodies) await services.ingest.ingest(ws, 'people', body);
    const seconds = (performance.now() - t0) / 1000;
    const requests = bodies.length;
    const phases: PeopleProfile['phases'] = {};
    for (const [k, ms] of Object.entries(spans)) phases[k] = { msPerRequest: ms / requests, opsPerPerson: (opsAt[k] ?? 0) / total };
    phases.total = { msPerRequest: (seconds * 1000) / requests, opsPerPerson: totalOps() / total };
    counted.stop();
    const ops: Record<string, number> = {};
    for (const r of counted.requests) ops[r] = (ops[r] ?? 0) + 1;
    return { people: total, batch, seconds, peoplePerSecond: total / seconds, phases, opsPerPerson: Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, v / total])) };
  } finally {
    await azurite.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  profilePeople(Number(process.argv[2] ?? 10_000), Number(process.argv[3] ?? 1000)).then((r) => {
    console.log(JSON.stringify(r, null, 2));
    process.exit(0);
  });
}
