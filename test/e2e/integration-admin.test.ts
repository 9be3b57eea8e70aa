// Integration management through the HTTP routes (SPEC section 6), the local host and Azurite.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { TableClient } from '@azure/data-tables';
import type { Host } from '../../src/local/host.js';
import { startAppHost } from '../support/app-host.js';
import { ManualClock } from '../../src/lib/platform/clock.js';
import { checkEncryptionKey, useClock } from '../../src/lib/services.js';
import { loadConfig } from '../../src/lib/platform/config.js';
import { appStorage } from '../../src/lib/platform/storage.js';
import { FILE_TYPES } from '../../src/lib/contract/schemas.js';
import { customerContainer, duck, sqlList, type CustomerContainer } from '../support/container.js';
import { TEST_PREFIX, freshWorkspace } from '../support/env.js';

const DAY = 24 * 3600 * 1000;
const pad = (n: number) => String(n).padStart(20, '0');
const clock = new ManualClock(Date.now());
let host: Host;
const logs: string[] = [];

async function call(method: string, path: string, body?: unknown) {
  const r = await fetch(`${host.url}/api${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  expect(text).not.toMatch(/sig=/i);
  return { status: r.status, body: (text ? JSON.parse(text) : undefined) as any };
}
const integration = (ws: number) => `/workspaces/${ws}/integration`;
async function ingest(ws: number, name: string, records: unknown[]) {
  expect((await call('POST', `/workspaces/${ws}/ingest/${name}`, records)).status).toBe(202);
}
async function sync() {
  await host.invoke('exportTimer');
  await host.whenIdle({ timeoutMs: 60_000 });
}
const deliveries = (ids: string[], campaign = 1) => ids.map((id) => ({ delivery_id: id, delivery_type: 'email', campaign_id: campaign, created_at: new Date(clock.now()).toISOString() }));
async function parquet(c: CustomerContainer, prefix = '') {
  return (await c.list(prefix)).filter((n) => n.endsWith('.parquet'));
}
async function rows(c: CustomerContainer, name: string, sql = 'SELECT * FROM rows ORDER BY 1') {
  const [file] = await c.download([name]);
  return duck(sql.replace('rows', `read_parquet('${file}')`));
}

beforeAll(async () => {
  useClock(clock);
  host = await startAppHost({ queue: `admin-${process.pid}`, log: (r) => logs.push(JSON.stringify(r)) });
});

afterAll(async () => {
  await host?.stop();
  // Nothing any function logged carries a SAS signature.
  expect(logs.join('\n')).not.toMatch(/sig=/i);
});

describe('registration', () => {
  it('every admin, operations and ingest route requires a function key when deployed (authLevel function), except the console page and the owner routes, which are anonymous for the host and require a workspace token in the handler', () => {
    const http = host.functions.flatMap((f) => Object.values(f.bindings).filter((b) => b.type === 'httpTrigger').map((b) => [f.name, String(b.route), String(b.authLevel)] as string[]));
    expect(http.length).toBeGreaterThanOrEqual(10);
    const owner = ([, route]: string[]) => route.startsWith('owner/workspaces/{workspaceId}/integration');
    const consolePage = ([name]: string[]) => name === 'console';
    expect(http.filter((r) => !owner(r) && !consolePage(r) && r[2] !== 'function')).toEqual([]);
    expect(http.filter((r) => owner(r) || consolePage(r)).filter((r) => r[2] !== 'anonymous')).toEqual([]);
    expect(http.filter(consolePage)).toHaveLength(1);
    // One owner route per integration route, and none for ingest, sync or operations (test/faults/security.test.ts tests the tokens).
    const integration = http.filter(([, route]) => route.startsWith('workspaces/{workspaceId}/integration') && !route.endsWith('/sync'));
    expect(http.filter(owner).map(([, route]) => route).sort()).toEqual(integration.map(([, route]) => `owner/${route}`).sort());
  });
});

describe('validation', () => {
  it('refuses each kind of bad SAS with its own code, in order, and saves nothing', async () => {
    const c = await customerContainer();
    const other = await customerContainer();
    const ws = freshWorkspace();
    const code = async (sasUrl: string, blobPath?: string) => (await call('POST', `${integration(ws)}/validate`, { sasUrl, blobPath })).body?.error?.code;
    expect(await code('not a url')).toBe('sas_not_url');
    expect(await code('http://example.blob.core.windows.net/c?sv=1&sr=c&sp=racwl&sig=x')).toBe('sas_not_https');
    expect(await code(c.client.url)).toBe('sas_missing_query');
    expect(await code(c.accountSas())).toBe('sas_account_sas');
    expect(await code(c.sas({ permissions: 'rl' }))).toBe('sas_missing_permissions');
    expect(await code(c.sas({ expiresOn: new Date(Date.now() - 3600_000) }))).toBe('sas_expired');
    expect(await code(c.sas({ signedFor: other.client.containerName }))).toBe('sas_signature_invalid');
    const policy = await c.policySas('p1');
    await c.revokePolicies();
    expect(await code(policy)).toBe('sas_policy_invalid');
    expect(await code(c.sasUrl, '../up')).toBe('blob_path_invalid');
    expect(await code(c.sasUrl, '/abs')).toBe('blob_path_invalid');
    expect(await code(c.sasUrl, 'a\\b')).toBe('blob_path_invalid');
    expect(await code(c.sasUrl, 'a\u0001b')).toBe('blob_path_invalid');
    const bad = await call('POST', `${integration(ws)}/validate`, { sasUrl: 5, extra: true });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual(['(body)', 'sasUrl']);

    const ok = await call('POST', `${integration(ws)}/validate`, { sasUrl: c.sasUrl, blobPath: 'new/path' });
    expect(ok).toMatchObject({ status: 200, body: { valid: true, container: c.client.containerName, blobPath: 'new/path', permissions: 'racwl' } });
    expect(await c.list('new/path/')).toEqual(['new/path/_warehouse_export_check']);
    expect((await call('GET', integration(ws))).status).toBe(404);
    expect((await call('PUT', integration(ws), { sasUrl: c.sas({ permissions: 'rl' }) })).status).toBe(400);
    expect((await call('GET', integration(ws))).status).toBe(404);
  });
});

describe('create, status, delete', () => {
  it('creates with defaults, syncs at once, reports status without the SAS, and deletes', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    await ingest(ws, 'deliveries', deliveries(['a', 'b']));
    const created = await call('PUT', integration(ws), { sasUrl: c.sasUrl });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ schemaVersion: 'v4', blobPath: '', files: [...FILE_TYPES], enabled: true, startedNow: [...FILE_TYPES] });
    await host.whenIdle({ timeoutMs: 30_000 }); // started right away, no timer tick needed
    expect(await parquet(c)).toEqual([`deliveries_v4_${ws}_${pad(1)}.parquet`]);

    // The SAS is encrypted at rest.
    const raw = await TableClient.fromConnectionString(inject('storageConnectionString'), `${TEST_PREFIX}integrations`, { allowInsecureConnection: true }).getEntity<{ sas: string }>(String(ws), 'settings');
    expect(raw.sas).not.toContain('sig=');
    expect(raw.sas).not.toContain(c.client.containerName);

    await ingest(ws, 'deliveries', deliveries(['c']));
    const status = await call('GET', integration(ws));
    expect(status.status).toBe(200);
    expect(status.body.destination).toEqual({ account: 'devstoreaccount1', container: c.client.containerName, blobPath: '', sasExpiresOn: expect.any(String), permissions: 'racwl', accessPolicy: null });
    expect(status.body.files.deliveries).toMatchObject({ enabled: true, everExported: true, lastSequence: 1, filesExported: 1, rowsExported: 2, pendingChanges: 1, lastError: null });
    expect(status.body.files.deliveries.lagSeconds).toBeGreaterThanOrEqual(0);
    expect(status.body.files.people).toMatchObject({ everExported: false, lastSequence: 0, pendingChanges: 0 });
    expect(status.body.warnings).toEqual([]);

    const deleted = await call('DELETE', integration(ws));
    expect(deleted.status).toBe(200);
    expect((await call('GET', integration(ws))).status).toBe(404);
    expect((await call('DELETE', integration(ws))).status).toBe(404);
    await sync();
    expect(await parquet(c)).toEqual([`deliveries_v4_${ws}_${pad(1)}.parquet`]); // files stay, nothing new
    // A new integration starts with an initial sync; sequences continue, no name is reused.
    expect((await call('PUT', integration(ws), { sasUrl: c.sasUrl, files: ['deliveries'] })).status).toBe(201);
    await host.whenIdle({ timeoutMs: 30_000 });
    expect(await parquet(c)).toEqual([1, 2].map((s) => `deliveries_v4_${ws}_${pad(s)}.parquet`));
    expect(await rows(c, `deliveries_v4_${ws}_${pad(2)}.parquet`, 'SELECT delivery_id FROM rows ORDER BY 1')).toEqual([{ delivery_id: 'a' }, { delivery_id: 'b' }, { delivery_id: 'c' }]);
  });

  it('warns when the SAS expires within 14 days', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    await call('PUT', integration(ws), { sasUrl: c.sas({ expiresOn: new Date(Date.now() + 3 * DAY) }), files: ['events'] });
    const status = await call('GET', integration(ws));
    expect(status.body.warnings).toEqual([expect.stringContaining('stored access policy')]);
  });
});

describe('per-file toggles and the People 7-day rule', () => {
  it('off keeps the cursor; on catches up from the last export; a never-exported file starts with history', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    await ingest(ws, 'deliveries', deliveries(['a']));
    await ingest(ws, 'events', [{ event_id: 'e1', name: 'n', type: 'event', timestamp: new Date(clock.now()).toISOString() }]);
    await call('PUT', integration(ws), { sasUrl: c.sasUrl, files: ['deliveries'] });
    await host.whenIdle({ timeoutMs: 30_000 });
    expect((await call('PUT', `${integration(ws)}/files/deliveries`, { enabled: false })).body.files).toEqual([]);
    await ingest(ws, 'deliveries', deliveries(['b']));
    await sync();
    expect(await parquet(c)).toEqual([`deliveries_v4_${ws}_${pad(1)}.parquet`]);
    const on = await call('PUT', `${integration(ws)}/files/deliveries`, { enabled: true });
    expect(on.body.startedNow).toEqual(['deliveries']);
    const onEvents = await call('PUT', `${integration(ws)}/files/events`, { enabled: true });
    expect(onEvents.body.files).toEqual(['deliveries', 'events']);
    await host.whenIdle({ timeoutMs: 30_000 });
    expect(await parquet(c)).toEqual([`deliveries_v4_${ws}_${pad(1)}.parquet`, `deliveries_v4_${ws}_${pad(2)}.parquet`, `events_v4_${ws}_${pad(1)}.parquet`]);
    expect(await rows(c, `deliveries_v4_${ws}_${pad(2)}.parquet`, 'SELECT delivery_id FROM rows')).toEqual([{ delivery_id: 'b' }]);
    expect((await call('PUT', `${integration(ws)}/files/nonsense`, { enabled: true })).status).toBe(404);
    expect((await call('PUT', `${integration(ws)}/files/events`, { enabled: 'yes' })).status).toBe(400);
  });

  it('People off for more than 7 days cannot be turned on again; within 7 days it can', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    await call('PUT', integration(ws), { sasUrl: c.sasUrl, files: ['people'] });
    expect((await call('PUT', `${integration(ws)}/files/people`, { enabled: false })).status).toBe(200);
    clock.advance(6 * DAY);
    expect((await call('PUT', `${integration(ws)}/files/people`, { enabled: true })).status).toBe(200);
    expect((await call('PUT', `${integration(ws)}/files/people`, { enabled: false })).status).toBe(200);
    clock.advance(7 * DAY + 60_000);
    const refused = await call('PUT', `${integration(ws)}/files/people`, { enabled: true });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('people_disabled_too_long');
    expect(refused.body.error.message).toMatch(/delete this integration, purge its files/);
    // The same rule through a full PUT.
    const viaPut = await call('PUT', integration(ws), { sasUrl: c.sasUrl, files: ['people'] });
    expect(viaPut.body.error.code).toBe('people_disabled_too_long');
  });
});

describe('PUT on an existing integration keeps what it is not told to change (issue 10.5)', () => {
  it('{sasUrl} alone rotates the credential: files, blobPath and schema version stay, People off > 7 days stays off', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    const created = await call('PUT', integration(ws), { sasUrl: await c.policySas('old'), blobPath: 'exports/wh', files: ['deliveries', 'people'], schemaVersion: 'v1' });
    expect(created.status).toBe(201);
    await host.whenIdle({ timeoutMs: 30_000 });
    expect((await call('PUT', `${integration(ws)}/files/people`, { enabled: false })).status).toBe(200);
    clock.advance(8 * DAY);
    const rotated = await call('PUT', integration(ws), { sasUrl: c.sasUrl });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    expect(rotated.body).toMatchObject({ files: ['deliveries'], blobPath: 'exports/wh', schemaVersion: 'v1', enabled: true, startedNow: [] });
    expect((await call('GET', integration(ws))).body.destination).toMatchObject({ blobPath: 'exports/wh', accessPolicy: null, permissions: 'racwl' });
    // The next file goes where the previous ones went, with the new credential.
    await c.revokePolicies();
    await ingest(ws, 'deliveries', deliveries(['a']));
    await sync();
    expect(await parquet(c)).toEqual([`exports/wh/deliveries_${pad(1)}.parquet`]);
    // A field that is given still changes.
    const moved = await call('PUT', integration(ws), { sasUrl: c.sasUrl, blobPath: '' });
    expect(moved.body).toMatchObject({ files: ['deliveries'], blobPath: '', schemaVersion: 'v1' });
  });

  it('on create, omitted fields take their defaults (all files, container root, v4)', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    const created = await call('PUT', integration(ws), { sasUrl: c.sasUrl });
    expect(created.body).toMatchObject({ files: [...FILE_TYPES], blobPath: '', schemaVersion: 'v4' });
    await host.whenIdle({ timeoutMs: 30_000 });
  });
});

describe('one error shape (issue 10.9)', () => {
  it('every refusal is {error: {code, message, details: [...]}}, details always a list', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    const refusals = [
      await call('POST', `${integration(ws)}/validate`, { sasUrl: c.sas({ permissions: 'rl' }) }),
      await call('POST', `${integration(ws)}/validate`, { sasUrl: 'not a url' }),
      await call('GET', integration(ws)),
      await call('PUT', `${integration(ws)}/files/nonsense`, { enabled: true }),
      await call('POST', `/workspaces/${ws}/ingest/nonsense`, []),
      await call('POST', `/workspaces/abc/ingest/deliveries`, []),
      await call('GET', '/no/such/route'),
      await call('POST', '/operations/poison/replay', { max: 0 }),
    ];
    const raw = await fetch(`${host.url}/api/workspaces/${ws}/integration`, { method: 'PUT', body: '{not json' });
    refusals.push({ status: raw.status, body: await raw.json() });
    for (const r of refusals) {
      expect(Object.keys(r.body), JSON.stringify(r.body)).toEqual(['error']);
      expect(r.body.error, JSON.stringify(r.body)).toEqual({ code: expect.any(String), message: expect.any(String), details: expect.any(Array) });
    }
    expect(refusals.map((r) => r.status)).toEqual([400, 400, 404, 404, 404, 400, 404, 400, 400]);
    expect(refusals[0].body.error.details).toEqual([
      { path: 'sasUrl', message: 'the SAS does not grant add', permission: 'add' },
      { path: 'sasUrl', message: 'the SAS does not grant create', permission: 'create' },
      { path: 'sasUrl', message: 'the SAS does not grant write', permission: 'write' },
    ]);
  });

  it('lastSequence is the sequence of the last file committed, never one only reserved', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    const at = new Date(clock.now()).toISOString();
    await ingest(ws, 'metrics', [{ event_id: 'm1', delivery_id: 'd1', metric: 'sent', created_at: at }]);
    await call('PUT', integration(ws), { sasUrl: await c.policySas('p'), files: [] });
    await c.revokePolicies();
    // The initial metrics sync reserves its sequence, then cannot write its first part.
    await call('PUT', `${integration(ws)}/files/metrics`, { enabled: true });
    await host.whenIdle({ timeoutMs: 30_000 });
    const failed = (await call('GET', integration(ws))).body.files.metrics;
    expect(failed.lastError).toMatchObject({ code: 'sas_policy_invalid' });
    expect(await parquet(c)).toEqual([]);
    expect(failed.lastSequence).toBe(0);
    // With a working credential the part is written: now it is reported.
    await call('PUT', integration(ws), { sasUrl: c.sasUrl, files: ['metrics'] });
    await sync();
    expect(await parquet(c)).toEqual([`metrics_v4_${ws}_${pad(1)}_${pad(1)}.parquet`]);
    expect((await call('GET', integration(ws))).body.files.metrics).toMatchObject({ lastSequence: 1, lastError: null });
  });
});

describe('whole-sync disable and enable', () => {
  it('disable stops exports; enable resends all history with sequences continuing', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    await ingest(ws, 'deliveries', deliveries(['a', 'b']));
    await call('PUT', integration(ws), { sasUrl: c.sasUrl, files: ['deliveries'] });
    await host.whenIdle({ timeoutMs: 30_000 });
    expect((await call('POST', `${integration(ws)}/disable`)).body.enabled).toBe(false);
    await ingest(ws, 'deliveries', deliveries(['c']));
    // A message already queued does nothing.
    await host.invoke('exportWorker', JSON.stringify({ workspaceId: ws, fileType: 'deliveries' }));
    await sync();
    expect(await parquet(c)).toEqual([`deliveries_v4_${ws}_${pad(1)}.parquet`]);
    const enabled = await call('POST', `${integration(ws)}/enable`);
    expect(enabled.body.notice).toMatch(/Clear the files of the previous sync/);
    await host.whenIdle({ timeoutMs: 30_000 });
    expect(await parquet(c)).toEqual([1, 2].map((s) => `deliveries_v4_${ws}_${pad(s)}.parquet`));
    expect(await rows(c, `deliveries_v4_${ws}_${pad(2)}.parquet`, 'SELECT delivery_id FROM rows ORDER BY 1')).toEqual([{ delivery_id: 'a' }, { delivery_id: 'b' }, { delivery_id: 'c' }]);
  });
});

describe('schema versions', () => {
  it('v1 writes legacy names and columns; upgrade to v4 resends subjects and outputs and continues the rest', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    const at = new Date(clock.now()).toISOString();
    await ingest(ws, 'deliveries', deliveries(['a']));
    await ingest(ws, 'subjects', [{ subject_name: 's1', campaign_type: 'triggered', campaign_id: 1, started_campaign_at: at, created_at: at }]);
    await call('PUT', integration(ws), { sasUrl: c.sasUrl, schemaVersion: 'v1', files: ['deliveries', 'subjects'] });
    await host.whenIdle({ timeoutMs: 30_000 });
    expect(await parquet(c)).toEqual([`deliveries_${pad(1)}.parquet`, `subjects_${pad(1)}.parquet`]);
    const v1cols = (await rows(c, `deliveries_${pad(1)}.parquet`, 'DESCRIBE SELECT * FROM rows')).map((r) => r.column_name);
    expect(v1cols).not.toContain('workspace_id');
    expect(v1cols).not.toContain('seq_num');
    expect(v1cols[0]).toBe('delivery_id');

    expect((await call('PUT', `${integration(ws)}/files/events`, { enabled: true })).body.error.code).toBe('file_not_in_schema');
    await ingest(ws, 'deliveries', deliveries(['b']));
    const up = await call('POST', `${integration(ws)}/upgrade`, { schemaVersion: 'v4' });
    expect(up.body.schemaVersion).toBe('v4');
    expect(up.body.notice).toMatch(/subjects and outputs/);
    await host.whenIdle({ timeoutMs: 30_000 });
    const names = await parquet(c);
    expect(names).toEqual([`deliveries_${pad(1)}.parquet`, `deliveries_v4_${ws}_${pad(2)}.parquet`, `subjects_${pad(1)}.parquet`, `subjects_v4_${ws}_${pad(2)}.parquet`]);
    expect(await rows(c, `deliveries_v4_${ws}_${pad(2)}.parquet`, 'SELECT delivery_id, workspace_id FROM rows')).toEqual([{ delivery_id: 'b', workspace_id: BigInt(ws) }]);
    expect(await rows(c, `subjects_v4_${ws}_${pad(2)}.parquet`, 'SELECT subject_name FROM rows')).toEqual([{ subject_name: 's1' }]);
    expect((await call('POST', `${integration(ws)}/upgrade`, { schemaVersion: 'v1' })).body.error.code).toBe('schema_downgrade');
    expect((await call('PUT', integration(ws), { sasUrl: c.sasUrl, schemaVersion: 'v1' })).body.error.code).toBe('schema_downgrade');
  });
});

describe('credentials', () => {
  it('a revoked policy shows in status; rotating to a good SAS delivers everything missed', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    await call('PUT', integration(ws), { sasUrl: await c.policySas('warehouse'), files: ['deliveries'] });
    const withPolicy = await call('GET', integration(ws));
    expect(withPolicy.body.destination).toMatchObject({ accessPolicy: 'warehouse', permissions: null });
    await c.revokePolicies();
    await ingest(ws, 'deliveries', deliveries(['a', 'b']));
    await sync();
    const status = await call('GET', integration(ws));
    expect(status.body.files.deliveries.lastError).toMatchObject({ code: 'sas_policy_invalid' });
    expect(status.body.files.deliveries.pendingChanges).toBe(2);
    await ingest(ws, 'deliveries', deliveries(['c']));
    expect((await call('PUT', integration(ws), { sasUrl: c.sasUrl, files: ['deliveries'] })).status).toBe(200);
    await sync();
    const names = await parquet(c);
    expect(names).toEqual([`deliveries_v4_${ws}_${pad(1)}.parquet`]);
    const [f] = await c.download(names);
    expect(await duck(`SELECT delivery_id FROM read_parquet(${sqlList([f])}) ORDER BY 1`)).toEqual([{ delivery_id: 'a' }, { delivery_id: 'b' }, { delivery_id: 'c' }]);
    expect((await call('GET', integration(ws))).body.files.deliveries.lastError).toBeNull();
  });

  it('a wrong encryption key is refused at start-up, naming the setting', async () => {
    const config = loadConfig({ ...process.env, SAS_ENCRYPTION_KEY: Buffer.alloc(32, 9).toString('base64') });
    const storage = appStorage(config.storage, config.exportQueueName, config.storagePrefix);
    await expect(checkEncryptionKey({ storage, config })).rejects.toThrow(/SAS_ENCRYPTION_KEY/);
    expect(() => loadConfig({ ...process.env, SAS_ENCRYPTION_KEY: '' })).toThrow(/SAS_ENCRYPTION_KEY/);
    expect(() => loadConfig({ ...process.env, SAS_ENCRYPTION_KEY: 'c2hvcnQ=' })).toThrow(/SAS_ENCRYPTION_KEY: must be exactly 32 bytes/);
  });
});
