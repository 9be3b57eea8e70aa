// Issue 4, fault 7: security. No SAS signature in any log line or answer (including failures), one
// workspace's export never lands in another's container, and blob paths that could escape or
// confuse the path (.., backslashes, leading slashes, control characters) are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startAzurite, type Azurite } from '../../src/local/azurite.js';
import { FILE_TYPES, SCHEMAS } from '../../src/lib/contract/schemas.js';
import { customerContainer } from '../support/container.js';
import { freshWorkspace } from '../support/env.js';
import { readRows, startFaultHost, summary, type FaultHost, type Rec } from '../support/faults.js';
import { badBlobPath } from './bad-input-arbitraries.js';

let app: Azurite;
let h: FaultHost;
const counts: Record<string, unknown> = {};

beforeAll(async () => {
  app = await startAzurite();
  h = await startFaultHost({ name: 'security', connectionString: app.connectionString });
});

afterAll(async () => {
  await h?.stop();
  await app?.stop();
  const leaks = h.leaks();
  summary('security', { ...counts, ...h.checked, sasLeaks: leaks.length });
  expect(leaks).toEqual([]);
});

const iso = (ms: number) => new Date(ms).toISOString();
const NOW = Date.now();

/** One record of every type for workspace `tag`. */
function records(tag: string): Record<string, Rec[]> {
  const at = iso(NOW - 3600_000);
  return {
    deliveries: [{ delivery_id: `${tag}-d`, delivery_type: 'email', created_at: at }],
    metrics: [{ event_id: `${tag}-m`, delivery_id: `${tag}-d`, metric: 'sent', created_at: at }],
    subjects: [{ subject_name: `${tag}-s`, campaign_type: 'triggered', campaign_id: 1, started_campaign_at: at, created_at: at }],
    outputs: [{ output_id: `${tag}-o`, subject_name: `${tag}-s`, output_type: 'email', action_id: 1, explanation: 'x', created_at: at }],
    delivery_contents: [{ delivery_id: `${tag}-d`, body: `<p>${tag}</p>` }],
    people: [{ internal_customer_id: `${tag}-p`, customer_id: `${tag}-c`, attributes: { owner: tag } }],
    attributes: [{ internal_customer_id: `${tag}-p`, attribute_name: 'direct', attribute_value: tag }],
    events: [{ event_id: `${tag}-e`, name: 'x', type: 'event', timestamp: at }],
  };
}

describe('security', () => {
  it("two workspaces, two containers: each export lands only in its own container, with its own workspace_id", async () => {
    const a = { ws: freshWorkspace(), c: await customerContainer(), tag: 'alpha' };
    const b = { ws: freshWorkspace(), c: await customerContainer(), tag: 'beta' };
    for (const x of [a, b]) {
      for (const [name, recs] of Object.entries(records(x.tag))) await h.ingest(x.ws, name, recs);
      expect((await h.call('PUT', `/workspaces/${x.ws}/integration`, { sasUrl: await x.c.policySas('warehouse'), blobPath: 'exports', files: [...FILE_TYPES] })).status).toBe(201);
    }
    await h.host.whenIdle({ timeoutMs: 30_000 });
    // Changes for both, one sync.
    for (const x of [a, b]) await h.ingest(x.ws, 'deliveries', [{ delivery_id: `${x.tag}-d2`, delivery_type: 'sms', created_at: iso(NOW) }]);
    await h.sync();
    let files = 0;
    let rows = 0;
    for (const [x, other] of [[a, b], [b, a]] as const) {
      const names = (await x.c.list()).filter((n) => n.endsWith('.parquet'));
      expect(names.length).toBe(FILE_TYPES.length + 1);
      for (const n of names) {
        expect(n, 'file name carries its own workspace id').toMatch(new RegExp(`^exports/[a-z_]+_v4_${x.ws}_\\d{20}(_\\d{20})?\\.parquet$`));
        expect(n).not.toContain(String(other.ws));
        for (const row of await readRows(x.c.client, n)) {
          rows++;
          expect(row.workspace_id).toBe(x.ws);
          expect(JSON.stringify(row)).not.toContain(other.tag);
        }
        files++;
      }
      expect(new Set(names.map((n) => n.split('/')[1].split('_v4_')[0]))).toEqual(new Set(FILE_TYPES.map((t) => SCHEMAS[t].name)));
    }
    counts.isolation = { workspaces: 2, files, rows, crossWorkspaceRows: 0 };
  });

  it('blob paths with .., backslashes, leading slashes or control characters are refused (400 blob_path_invalid), nothing written', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    const before = await c.list();
    const explicit = ['..', '../other-container', 'a/../../b', './x', '/rooted', '//double', 'a\\b', '..\\..\\x', 'x/\u0000y', 'bell\u0007', 'line\nfeed', 'a//b'];
    let n = 0;
    const check = async (blobPath: string) => {
      n++;
      for (const [method, route] of [['POST', `/workspaces/${ws}/integration/validate`], ['PUT', `/workspaces/${ws}/integration`]] as const) {
        const r = await h.call(method, route, { sasUrl: c.sasUrl, blobPath });
        expect([r.status, r.body?.error?.code], `${method} ${JSON.stringify(blobPath)}`).toEqual([400, 'blob_path_invalid']);
      }
    };
    for (const p of explicit) await check(p);
    await fc.assert(fc.asyncProperty(badBlobPath, check), { numRuns: 200, seed: 5 });
    expect(await c.list()).toEqual(before); // not even the validation marker
    expect((await h.call('GET', `/workspaces/${ws}/integration`)).status).toBe(404);
    counts.blobPathsRefused = n;
  });

  it('no SAS signature in error answers, status or logs when exports fail for credentials', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    await h.ingest(ws, 'deliveries', records('gamma').deliveries);
    const sas = await c.policySas('warehouse');
    expect((await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: sas, files: ['deliveries'] })).status).toBe(201);
    await h.host.whenIdle({ timeoutMs: 30_000 });
    await c.revokePolicies();
    await h.ingest(ws, 'deliveries', records('delta').deliveries);
    await h.sync(); // fails: the policy is gone
    const status = await h.call('GET', `/workspaces/${ws}/integration`);
    expect(status.body.files.deliveries.lastError.code).toBe('sas_policy_invalid');
    expect(status.text).not.toMatch(/sig=|se=|sp=/);
    // Refusals of SAS URLs never echo them.
    const expired = c.sas({ expiresOn: new Date(Date.now() - 60_000) });
    for (const sasUrl of [expired, sas, c.sas({ permissions: 'rl' }), `${c.sasUrl}&extra=1`.replace('sr=c', 'sr=b')]) {
      const r = await h.call('POST', `/workspaces/${ws}/integration/validate`, { sasUrl });
      expect(r.status).toBe(400);
      expect(r.text).not.toContain(new URL(sasUrl).searchParams.get('sig')!);
    }
    const failureLines = h.logs.filter((l) => l.level === 'warn' || l.level === 'error');
    expect(failureLines.length).toBeGreaterThan(0);
    counts.failureLogLinesChecked = failureLines.length;
  });
});
