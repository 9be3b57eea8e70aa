// Issue 4, fault 3: the customer's credentials stop working after the integration was created:
// the stored access policy expires, is revoked, loses write permissions, or the container is deleted.
// Each time the pair records the error (status files.<type>.lastError), its cursor stays, the
// message is not poisoned (the worker returns normally), nothing partial appears, and after the
// owner rotates the SAS the next sync delivers exactly what was missed.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../src/local/azurite.js';
import type { FileType } from '../../src/lib/contract/schemas.js';
import { customerContainer, type CustomerContainer } from '../support/container.js';
import { freshWorkspace } from '../support/env.js';
import {
  changedBlobs,
  inventory,
  peekTexts,
  sequenceProblems,
  sourceRecords,
  startFaultHost,
  summary,
  uncommittedOnly,
  verifyLogFiles,
  type FaultHost,
  type Rec,
} from '../support/faults.js';

let app: Azurite;
let h: FaultHost;
const rows: Record<string, unknown>[] = [];

beforeAll(async () => {
  app = await startAzurite();
  h = await startFaultHost({ name: 'credentials', connectionString: app.connectionString });
});

afterAll(async () => {
  await h?.stop();
  await app?.stop();
  for (const r of rows) summary('credentials', r);
  expect(h.leaks()).toEqual([]);
});

const iso = (ms: number) => new Date(ms).toISOString();
const T0 = Date.now() - 3600_000;
const deliveries = (from: number, to: number, campaign = 1): Rec[] =>
  Array.from({ length: to - from }, (_, i) => ({ delivery_id: `d${from + i}`, delivery_type: 'email', campaign_id: campaign, created_at: iso(T0 + from + i) }));
const people = (from: number, to: number, plan: string): Rec[] =>
  Array.from({ length: to - from }, (_, i) => ({ internal_customer_id: `p${from + i}`, customer_id: `c${from + i}`, updated_at: iso(T0 + 1000 * plan.length + i), attributes: { plan } }));

interface Fault {
  name: string;
  code: string;
  /** The SAS the integration is created with (default: bound to a stored access policy). */
  sas?(c: CustomerContainer): string;
  /** Breaks the credentials the integration holds. */
  apply(c: CustomerContainer): Promise<void>;
  /** The owner's fix: a good SAS URL (and the container it points at). */
  rotate(c: CustomerContainer): Promise<{ sasUrl: string; container: CustomerContainer }>;
}

const policy = (permissions: string, startsOn: Date, expiresOn: Date) => [{ id: 'warehouse', accessPolicy: { permissions, startsOn, expiresOn } }];

const FAULTS: Fault[] = [
  {
    name: 'stored access policy expired',
    code: 'sas_policy_invalid',
    apply: (c) => c.client.setAccessPolicy(undefined, policy('racwl', new Date(Date.now() - 7200_000), new Date(Date.now() - 3600_000))).then(() => undefined),
    rotate: async (c) => ({ sasUrl: await c.policySas('warehouse-2'), container: c }),
  },
  {
    name: 'stored access policy revoked',
    code: 'sas_policy_invalid',
    apply: (c) => c.revokePolicies(),
    rotate: async (c) => ({ sasUrl: await c.policySas('warehouse-2'), container: c }),
  },
  {
    name: 'policy made read-only (rl)',
    code: 'sas_missing_permissions',
    apply: (c) => c.client.setAccessPolicy(undefined, policy('rl', new Date(Date.now() - 60_000), new Date(Date.now() + 86_400_000))).then(() => undefined),
    rotate: async (c) => ({ sasUrl: c.sasUrl, container: c }),
  },
  {
    name: 'container deleted (plain SAS)',
    code: 'container_not_found',
    sas: (c) => c.sasUrl,
    apply: (c) => c.client.delete().then(() => undefined),
    rotate: async () => {
      const fresh = await customerContainer();
      return { sasUrl: fresh.sasUrl, container: fresh };
    },
  },
  {
    // The policy lives on the container, so Azure (and Azurite) answer 403, not 404: reported as the policy.
    name: 'container deleted (policy SAS)',
    code: 'sas_policy_invalid',
    apply: (c) => c.client.delete().then(() => undefined),
    rotate: async () => {
      const fresh = await customerContainer();
      return { sasUrl: await fresh.policySas('warehouse'), container: fresh };
    },
  },
];

const TYPES: FileType[] = ['deliveries', 'people'];

describe('credentials that stop working after the integration was created', () => {
  for (const f of FAULTS) {
    it(`${f.name}: error recorded, cursor kept, not poisoned; a rotated SAS delivers exactly what was missed`, async () => {
      const ws = freshWorkspace();
      const c = await customerContainer();
      await h.ingest(ws, 'deliveries', deliveries(0, 10));
      await h.ingest(ws, 'people', people(0, 5, 'free'));
      expect((await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: f.sas ? f.sas(c) : await c.policySas('warehouse'), files: TYPES })).status).toBe(201);
      await h.host.whenIdle({ timeoutMs: 30_000 });
      const exported = await inventory(c.client);
      expect([...exported.keys()].filter((n) => n.endsWith('.parquet'))).toHaveLength(2);
      const lastSeq = Object.fromEntries(await Promise.all(TYPES.map(async (t) => [t, (await h.services.cursors.get(ws, t)).lastSeq] as const)));

      await f.apply(c);
      await h.ingest(ws, 'deliveries', [...deliveries(10, 20), ...deliveries(0, 3, 2)]);
      await h.ingest(ws, 'people', [...people(3, 5, 'pro'), ...people(5, 7, 'trial')]);
      const failedBefore = h.logs.filter((r) => /Executed 'exportWorker' \(Failed/.test(r.message)).length;
      let ticks = 0;
      for (; ticks < 2; ticks++) {
        await h.sync();
        if (ticks === 0) await h.ingest(ws, 'deliveries', deliveries(20, 25)); // still accepted while the export fails
      }

      const status = await h.call('GET', `/workspaces/${ws}/integration`);
      expect(status.status).toBe(200);
      for (const t of TYPES) {
        expect(status.body.files[t].lastError, t).toMatchObject({ code: f.code, message: expect.any(String) });
        expect(status.body.files[t].lastSequence, t).toBe(1);
        expect(status.body.files[t].pendingChanges, t).toBeGreaterThan(0);
        const cursor = await h.services.cursors.get(ws, t);
        expect(cursor.lastSeq, t).toBe(lastSeq[t]); // the cursor stays
        expect(cursor.leaseOwner, t).toBeUndefined();
      }
      const failedWorkers = h.logs.filter((r) => /Executed 'exportWorker' \(Failed/.test(r.message)).length - failedBefore;
      expect(failedWorkers).toBe(0); // the worker returned normally each time
      const poisoned = await peekTexts(h.poison);
      expect(poisoned).toEqual([]);
      if (!f.name.startsWith('container deleted')) {
        const now = await inventory(c.client);
        expect([...now.keys()].sort()).toEqual([...exported.keys()].sort()); // nothing new, nothing partial
        expect(await uncommittedOnly(c.client)).toEqual([]);
      }

      // The owner rotates the SAS; the next sync delivers everything missed, once.
      const { sasUrl, container } = await f.rotate(c);
      const put = await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl, files: TYPES });
      expect(put.status).toBe(200);
      await h.sync();
      const problems: string[] = [];
      let lost = 0;
      let duplicates = 0;
      for (const t of TYPES) {
        const names = (await container.list()).filter((n) => n.endsWith('.parquet') && n.startsWith(`${t}_`));
        const records = await sourceRecords(h.services, ws, t);
        // In the same container: file 1 (before the fault) and file 2 (what was missed); in a new one, file 3
        // only (sequence 2 was reserved for the deleted container: a name is never handed to two destinations).
        const sameContainer = container === c;
        const missed = sameContainer ? names.slice(1) : names;
        const verdict = await verifyLogFiles({ client: container.client, ws, fileType: t, names: missed, records, startSeq: lastSeq[t], headSeq: records.at(-1)!.seq });
        problems.push(...verdict.problems, ...sequenceProblems(t, ws, names, sameContainer ? 1 : 3));
        lost += verdict.lost;
        duplicates += verdict.duplicates;
        expect(names.length, t).toBe(sameContainer ? 2 : 1);
      }
      expect(problems).toEqual([]);
      const parquetOnly = (m: Awaited<ReturnType<typeof inventory>>) => new Map([...m].filter(([n]) => n.endsWith('.parquet')));
      const rewritten = container === c ? changedBlobs(parquetOnly(exported), await inventory(c.client)) : [];
      expect(rewritten).toEqual([]);
      const after = await h.call('GET', `/workspaces/${ws}/integration`);
      for (const t of TYPES) expect(after.body.files[t]).toMatchObject({ lastError: null, pendingChanges: 0, lastSequence: container === c ? 2 : 3 });
      rows.push({ fault: f.name, code: f.code, failedTicks: ticks, poisoned: poisoned.length, workerFailures: failedWorkers, rowsLost: lost, duplicateRows: duplicates, rewrittenFiles: rewritten.length });
    });
  }

  it('validation against a storage endpoint that answers neither 2xx, 403 nor 404 is a 400 with a code, not a 500', async () => {
    const server = http.createServer((_req, res) => {
      const body = '<?xml version="1.0" encoding="utf-8"?><Error><Code>InvalidUri</Code><Message>nope</Message></Error>';
      res.writeHead(400, { 'content-type': 'application/xml', 'x-ms-error-code': 'InvalidUri' });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      const sasUrl = `http://127.0.0.1:${port}/devstoreaccount1/c?sv=2025-01-05&se=2099-01-01T00%3A00%3A00Z&sr=c&sp=racwl&sig=${'A'.repeat(43)}%3D`;
      const r = await h.call('POST', `/workspaces/${freshWorkspace()}/integration/validate`, { sasUrl });
      expect([r.status, r.body?.error?.code]).toEqual([400, 'sas_rejected']);
      // Nothing listening: a clear code too, within a short probe.
      const closed = `http://127.0.0.1:1/devstoreaccount1/c?sv=2025-01-05&se=2099-01-01T00%3A00%3A00Z&sr=c&sp=racwl&sig=${'A'.repeat(43)}%3D`;
      const r2 = await h.call('POST', `/workspaces/${freshWorkspace()}/integration/validate`, { sasUrl: closed });
      expect([r2.status, r2.body?.error?.code]).toEqual([400, 'container_unreachable']);
    } finally {
      server.close();
    }
  });
});
