// Issue 4, fault 7: security. No SAS signature in any log line or answer (including failures), one
// workspace's export never lands in another's container, and blob paths that could escape or
// confuse the path (.., backslashes, leading slashes, control characters) are refused.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseContainerSas } from '../../src/lib/integration/sas.js';
import { encryptSecret } from '../../src/lib/integration/crypto.js';
import { loadConfig } from '../../src/lib/platform/config.js';
import { TABLES } from '../../src/lib/platform/storage.js';
import { DEFAULT_SETTINGS } from '../../src/local/start.js';
import http from 'node:http';
import { mintWorkspaceToken } from '../../src/lib/platform/workspace-token.js';
import { contentSecurityPolicy, htmlSecurityHeaders } from '../../src/lib/platform/security-headers.js';
import { keyId } from '../../src/lib/integration/crypto.js';
import { checkEncryptionKey, getServices, reloadServices } from '../../src/lib/services.js';
import { TEST_KEY } from '../support/env.js';
import { startAzurite, type Azurite } from '../../src/local/azurite.js';
import { FILE_TYPES, SCHEMAS } from '../../src/lib/contract/schemas.js';
import { customerContainer } from '../support/container.js';
import { freshWorkspace } from '../support/env.js';
import { readRows, startFaultHost, summary, type FaultHost, type Rec } from '../support/faults.js';
import { badBlobPath } from './bad-input-arbitraries.js';

let app: Azurite;
let h: FaultHost;
const TOKEN_KEY = Buffer.alloc(32, 3);
const PROBE_LIMIT = 5;
const counts: Record<string, unknown> = {};

beforeAll(async () => {
  app = await startAzurite();
  h = await startFaultHost({ name: 'security', connectionString: app.connectionString, settings: { WORKSPACE_TOKEN_SIGNING_KEY: TOKEN_KEY.toString('base64'), PROBE_RATE_LIMIT: String(PROBE_LIMIT) } });
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

// Issue 15, point 1: a SAS URL reaches only Azure Storage blob endpoints (no server-side request forgery).
const SAS_QUERY = `sv=2025-01-05&se=2099-01-01T00%3A00%3A00Z&sr=c&sp=racwl&sig=${'A'.repeat(43)}%3D`;

/** A TCP listener on a loopback address other than the emulator's that records every connection. */
async function recordingListener(host = '127.0.0.2'): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Every form that must be refused before anything is requested (`port` is the recording listener's). */
const refusedHosts = (port: number) => [
  `https://127.0.0.2:${port}/c`,
  `https://127.0.0.2/c`,
  `https://10.0.0.5/c`,
  `https://169.254.169.254/c`,
  `https://[::ffff:7f00:2]:${port}/c`,
  `https://[fd00::5]/c`,
  `https://2130706434:${port}/c`,
  `https://0x7f.0.0.2:${port}/c`,
  `https://acct.blob.core.windows.net:${port}/c`,
  `https://acct.blob.core.windows.net:443/c`.replace(':443', ':8443'),
  `https://user:pw@acct.blob.core.windows.net/c`,
  `https://acct.blob.core.windows.net@127.0.0.2:${port}/c`,
  `https://acct.blob.core.windows.net.127.0.0.2.nip.io:${port}/c`,
  `https://acct.blob.core.windows.net.evil.example/c`,
  `https://evil.example/c`,
  `https://acct.dfs.core.windows.net/c`,
  `https://acct.file.core.windows.net/c`,
  `https://blob.core.windows.net/c`,
  `https://a.b.blob.core.windows.net/c`,
  `https://ab.blob.core.windows.net/c`,
  `https://acct-secondary.blob.core.windows.net/c`,
  `https://acct.z1.blob.storage.azure.net/c`,
  `https://acct.z100.blob.storage.azure.net/c`,
  `https://acct.blob.storage.azure.net/c`,
  `https://acct.blob.core.windows.net./c`,
  `https://internal-service/c`,
  `https://localhost.localdomain:${port}/c`,
].map((u) => `${u}?${SAS_QUERY}`);

describe('SAS URLs reach only Azure Storage', () => {
  it('refuses every non-Azure-Storage host (IP literals, ports, user info, look-alike names) with sas_not_azure_storage, and requests nothing from it', async () => {
    const listener = await recordingListener();
    try {
      const ws = freshWorkspace();
      for (const sasUrl of refusedHosts(listener.port)) {
        for (const [method, route] of [['POST', `/workspaces/${ws}/integration/validate`], ['PUT', `/workspaces/${ws}/integration`]] as const) {
          const r = await h.call(method, route, { sasUrl });
          expect([r.status, r.body?.error?.code], `${method} ${sasUrl}`).toEqual([400, 'sas_not_azure_storage']);
          expect(r.body.error.message).toMatch(/blob\.core\.windows\.net.*blob\.core\.chinacloudapi\.cn.*blob\.core\.usgovcloudapi\.net.*blob\.storage\.azure\.net/);
        }
      }
      expect((await h.call('GET', `/workspaces/${ws}/integration`)).status).toBe(404);
      await new Promise((r) => setTimeout(r, 200));
      expect(listener.connections()).toBe(0);
      counts.ssrfFormsRefused = refusedHosts(0).length;
    } finally {
      await listener.close();
    }
  });

  it('accepts every Azure Storage blob endpoint suffix (public, China, US Government, DNS-zone endpoints)', () => {
    const now = Date.now();
    const accepted = {
      'https://acct01.blob.core.windows.net/c1': 'acct01',
      'https://acct02.blob.core.chinacloudapi.cn/c1': 'acct02',
      'https://acct03.blob.core.usgovcloudapi.net/c1': 'acct03',
      'https://acct04.z00.blob.storage.azure.net/c1': 'acct04',
      'https://acct05.z42.blob.storage.azure.net/c1': 'acct05',
      'https://ACCT06.Blob.Core.Windows.Net/c1': 'acct06',
    };
    for (const [url, account] of Object.entries(accepted)) {
      for (const allowEmulator of [false, true]) {
        expect(parseContainerSas(`${url}?${SAS_QUERY}`, now, { allowEmulator }), url).toMatchObject({ account, container: 'c1' });
      }
    }
  });

  it('the emulator\'s path-style loopback URLs are accepted only when ALLOW_EMULATOR_SAS_URLS is set (deployed default: refused; npm start sets it)', () => {
    const now = Date.now();
    const emulator = [`http://127.0.0.1:10000/devstoreaccount1/c1?${SAS_QUERY}`, `http://localhost:10000/devstoreaccount1/c1?${SAS_QUERY}`, `https://[::1]:10000/devstoreaccount1/c1?${SAS_QUERY}`];
    for (const url of emulator) {
      expect(() => parseContainerSas(url, now), url).toThrow(expect.objectContaining({ code: 'sas_not_azure_storage' }));
      expect(() => parseContainerSas(url, now, { allowEmulator: false }), url).toThrow(expect.objectContaining({ code: 'sas_not_azure_storage' }));
      expect(parseContainerSas(url, now, { allowEmulator: true })).toMatchObject({ account: 'devstoreaccount1', container: 'c1' });
    }
    const base = { AzureWebJobsStorage: 'UseDevelopmentStorage=true', SAS_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64') };
    expect(loadConfig(base).allowEmulatorSasUrls).toBe(false);
    expect(loadConfig({ ...base, ALLOW_EMULATOR_SAS_URLS: 'true' }).allowEmulatorSasUrls).toBe(true);
    expect(() => loadConfig({ ...base, ALLOW_EMULATOR_SAS_URLS: 'yes please' })).toThrow(/ALLOW_EMULATOR_SAS_URLS/);
    expect(DEFAULT_SETTINGS.ALLOW_EMULATOR_SAS_URLS).toBe('true');
    expect(h.services.config.allowEmulatorSasUrls).toBe(true); // the test set-up sets it
  });

  it('with the deployed default (ALLOW_EMULATOR_SAS_URLS unset), an emulator-style URL at a loopback listener is refused by validate and PUT and the listener is never connected to', async () => {
    const listener = await recordingListener('127.0.0.1');
    const ws = freshWorkspace();
    delete process.env.ALLOW_EMULATOR_SAS_URLS;
    reloadServices();
    try {
      for (const host of ['127.0.0.1', 'localhost']) {
        const sasUrl = `http://${host}:${listener.port}/devstoreaccount1/c?${SAS_QUERY}`;
        for (const [method, route] of [['POST', `/workspaces/${ws}/integration/validate`], ['PUT', `/workspaces/${ws}/integration`]] as const) {
          const r = await h.call(method, route, { sasUrl });
          expect([r.status, r.body?.error?.code], `${method} ${sasUrl}`).toEqual([400, 'sas_not_azure_storage']);
          expect(r.body.error.message).toMatch(/emulator is accepted only in local runs/);
        }
      }
      expect((await h.call('GET', `/workspaces/${ws}/integration`)).status).toBe(404);
      await new Promise((r) => setTimeout(r, 200));
      expect(listener.connections()).toBe(0);
    } finally {
      process.env.ALLOW_EMULATOR_SAS_URLS = 'true';
      reloadServices();
      await listener.close();
    }
  });

  it('an integration stored before these rules, pointing elsewhere, is refused at export time: sas_not_azure_storage as the last error, nothing requested', async () => {
    const listener = await recordingListener();
    try {
      const c = await customerContainer();
      const ws = freshWorkspace();
      await h.ingest(ws, 'deliveries', records('eps').deliveries);
      expect((await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, files: ['deliveries'] })).status).toBe(201);
      await h.host.whenIdle({ timeoutMs: 30_000 });
      // The stored SAS is replaced behind the app's back, as one stored by an older version would be.
      const stored = `https://127.0.0.2:${listener.port}/c?${SAS_QUERY}`;
      await h.services.storage.table(TABLES.integrations).updateEntity({ partitionKey: String(ws), rowKey: 'settings', sas: encryptSecret(stored, h.services.config.sasEncryptionKey) }, 'Merge');
      await h.ingest(ws, 'deliveries', records('eps2').deliveries);
      await h.sync();
      const status = await h.call('GET', `/workspaces/${ws}/integration`);
      expect(status.body.files.deliveries.lastError).toMatchObject({ code: 'sas_not_azure_storage' });
      expect(listener.connections()).toBe(0);
    } finally {
      await listener.close();
    }
  });
});

// Issue 15, point 2: owners reach only their own workspace (workspace tokens on the owner routes).
const token = (workspaceId: number, scope: 'read' | 'manage', minutes = 30, key = TOKEN_KEY) => mintWorkspaceToken(key, { workspaceId, scope, expiresAt: Date.now() + minutes * 60_000 });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const signatureOf = (t: string) => t.split('.')[2];

/** Every owner route of a workspace with a body that would change something (the GET only reads). */
const ownerCalls = (ws: number, sasUrl: string): [string, string, unknown][] => [
  ['PUT', `/owner/workspaces/${ws}/integration`, { sasUrl, files: ['deliveries'] }],
  ['POST', `/owner/workspaces/${ws}/integration/validate`, { sasUrl }],
  ['POST', `/owner/workspaces/${ws}/integration/disable`, undefined],
  ['POST', `/owner/workspaces/${ws}/integration/enable`, undefined],
  ['PUT', `/owner/workspaces/${ws}/integration/files/people`, { enabled: false }],
  ['POST', `/owner/workspaces/${ws}/integration/upgrade`, { schemaVersion: 'v4' }],
  ['DELETE', `/owner/workspaces/${ws}/integration`, undefined],
];

describe('owners reach only their own workspace', () => {
  it('a token for workspace A is refused on every owner route of B (403), expired, tampered and foreign-key tokens are refused (401), nothing of B changes', async () => {
    const a = { ws: freshWorkspace(), c: await customerContainer() };
    const b = { ws: freshWorkspace(), c: await customerContainer() };
    for (const x of [a, b]) expect((await h.call('PUT', `/workspaces/${x.ws}/integration`, { sasUrl: x.c.sasUrl, files: ['deliveries', 'people'] })).status).toBe(201);
    await h.host.whenIdle({ timeoutMs: 30_000 });
    const before = (await h.call('GET', `/workspaces/${b.ws}/integration`)).text;
    const blobsBefore = await b.c.list();
    const tokenA = token(a.ws, 'manage');
    // A's own token works on A.
    const own = await h.call('GET', `/owner/workspaces/${a.ws}/integration`, undefined, { headers: bearer(tokenA) });
    expect([own.status, own.body.workspaceId]).toEqual([200, a.ws]);
    // ... and nowhere else.
    expect((await h.call('GET', `/owner/workspaces/${b.ws}/integration`, undefined, { headers: bearer(tokenA) })).body.error.code).toBe('token_wrong_workspace');
    for (const [method, path, body] of ownerCalls(b.ws, b.c.sasUrl)) {
      const r = await h.call(method, path, body, { headers: bearer(tokenA) });
      expect([r.status, r.body?.error?.code], `${method} ${path}`).toEqual([403, 'token_wrong_workspace']);
    }
    // Expired, tampered, signed with another key, no token at all.
    const expired = token(b.ws, 'manage', -1);
    const [prefix, payload, sig] = tokenA.split('.');
    const otherPayload = Buffer.from(JSON.stringify({ ws: b.ws, scope: 'manage', exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url');
    const refused: [string, Record<string, string>, number, string][] = [
      ['expired', bearer(expired), 401, 'token_expired'],
      ['payload swapped to B', bearer(`${prefix}.${otherPayload}.${sig}`), 401, 'token_invalid'],
      ['signature altered', bearer(`${prefix}.${payload}.${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`), 401, 'token_invalid'],
      ['signed with another key', bearer(token(b.ws, 'manage', 30, Buffer.alloc(32, 4))), 401, 'token_invalid'],
      ['longer than a day', bearer(token(b.ws, 'manage', 3 * 24 * 60)), 401, 'token_invalid'],
      ['not a token', bearer('x'), 401, 'token_invalid'],
      ['no Authorization header', {}, 401, 'token_required'],
      ['a function key is no token', { 'x-functions-key': 'anything' }, 401, 'token_required'],
    ];
    for (const [what, headers, status, code] of refused) {
      for (const [method, path, body] of [['GET', `/owner/workspaces/${b.ws}/integration`, undefined] as [string, string, unknown], ...ownerCalls(b.ws, b.c.sasUrl)]) {
        const r = await h.call(method, path, body, { headers });
        expect([r.status, r.body?.error?.code], `${what}: ${method} ${path}`).toEqual([status, code]);
        if (status === 401) expect(r.headers.get('www-authenticate')).toBe('Bearer');
      }
    }
    expect((await h.call('GET', `/workspaces/${b.ws}/integration`)).text).toBe(before);
    expect(await b.c.list()).toEqual(blobsBefore);
    // A token's signature is never logged or answered.
    const texts = [...h.logs.map((l) => JSON.stringify(l))];
    for (const t of [tokenA, expired]) expect(texts.filter((x) => x.includes(signatureOf(t)))).toEqual([]);
    counts.tokenRefusals = refused.length * 8 + ownerCalls(b.ws, '').length + 1;
  });

  it('a bad WORKSPACE_TOKEN_SIGNING_KEY or probe limit stops the app at start-up, naming the setting', () => {
    const base = { AzureWebJobsStorage: 'UseDevelopmentStorage=true', SAS_ENCRYPTION_KEY: TEST_KEY };
    expect(loadConfig(base).workspaceTokenKey).toBeUndefined();
    expect(() => loadConfig({ ...base, WORKSPACE_TOKEN_SIGNING_KEY: Buffer.alloc(16, 1).toString('base64') })).toThrow(/WORKSPACE_TOKEN_SIGNING_KEY: must be at least 32 bytes/);
    expect(() => loadConfig({ ...base, WORKSPACE_TOKEN_SIGNING_KEY: 'not base64!' })).toThrow(/WORKSPACE_TOKEN_SIGNING_KEY/);
    expect(() => loadConfig({ ...base, PROBE_RATE_LIMIT: '0' })).toThrow(/PROBE_RATE_LIMIT/);
    expect(() => loadConfig({ ...base, PROBE_RATE_WINDOW_SECONDS: 'hour' })).toThrow(/PROBE_RATE_WINDOW_SECONDS/);
  });

  it('a read token reads and cannot change anything; a manage token changes its own workspace', async () => {
    const c = await customerContainer();
    const ws = freshWorkspace();
    expect((await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, files: ['deliveries', 'people'] })).status).toBe(201);
    await h.host.whenIdle({ timeoutMs: 30_000 });
    const before = (await h.call('GET', `/workspaces/${ws}/integration`)).text;
    const read = token(ws, 'read');
    expect((await h.call('GET', `/owner/workspaces/${ws}/integration`, undefined, { headers: bearer(read) })).text).toBe(before);
    for (const [method, path, body] of ownerCalls(ws, c.sasUrl)) {
      const r = await h.call(method, path, body, { headers: bearer(read) });
      expect([r.status, r.body?.error?.code], `${method} ${path}`).toEqual([403, 'token_scope']);
    }
    expect((await h.call('GET', `/workspaces/${ws}/integration`)).text).toBe(before);
    const manage = token(ws, 'manage');
    const off = await h.call('POST', `/owner/workspaces/${ws}/integration/disable`, undefined, { headers: bearer(manage) });
    expect([off.status, off.body.enabled]).toEqual([200, false]);
    expect((await h.call('GET', `/workspaces/${ws}/integration`)).body.enabled).toBe(false);
  });

  it('function-key routes stay for the platform; owner routes (and the console page, which holds no secret) are the only anonymous ones and exist for integration routes only', () => {
    const routes = h.host.functions.flatMap((f) => Object.values(f.bindings).filter((b) => b.type === 'httpTrigger').map((b) => ({ name: f.name, route: String(b.route), level: b.authLevel })));
    expect(routes.filter((r) => r.level === 'anonymous' && r.name !== 'console').every((r) => r.route.startsWith('owner/workspaces/{workspaceId}/integration'))).toBe(true);
    expect(routes.filter((r) => r.name === 'console').map((r) => [r.route, r.level])).toEqual([['console/{*asset}', 'anonymous']]);
    expect(routes.filter((r) => r.route.startsWith('owner/')).every((r) => r.level === 'anonymous' && !/ingest|sync|operations/.test(r.route))).toBe(true);
    expect(routes.filter((r) => !r.route.startsWith('owner/') && r.name !== 'console').every((r) => r.level === 'function')).toBe(true);
    expect(routes.filter((r) => r.route.startsWith('owner/')).length).toBe(9);
  });
});

// Issue 15, point 4: response headers, the console's CSP, probes rate-limited per workspace.
describe('hardening', () => {
  it('integration routes answer with nosniff, no-referrer and no-store (function-key and owner routes, success and error)', async () => {
    const ws = freshWorkspace();
    const calls = [
      await h.call('GET', `/workspaces/${ws}/integration`),
      await h.call('POST', `/workspaces/${ws}/integration/validate`, { sasUrl: 'nope' }),
      await h.call('GET', `/owner/workspaces/${ws}/integration`, undefined, { headers: bearer(token(ws, 'read')) }),
      await h.call('GET', `/owner/workspaces/${ws}/integration`),
    ];
    for (const r of calls) {
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect([r.headers.get('x-content-type-options'), r.headers.get('referrer-policy'), r.headers.get('cache-control')]).toEqual(['nosniff', 'no-referrer', 'no-store']);
    }
    const c = await customerContainer();
    const ok = await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, files: ['deliveries'] });
    expect(ok.status).toBe(201);
    expect(ok.headers.get('cache-control')).toBe('no-store');
  });

  it('the console CSP: self only, no inline script, never framed', () => {
    const csp = contentSecurityPolicy();
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(htmlSecurityHeaders()).toMatchObject({ 'Content-Security-Policy': csp, 'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'DENY' });
  });

  it(`container probes (validate and PUT) are limited per workspace: after ${PROBE_LIMIT}, 429 with Retry-After and nothing is requested; other workspaces are unaffected`, async () => {
    let requests = 0;
    const server = http.createServer((_req, res) => {
      requests++;
      res.writeHead(400, { 'content-type': 'application/xml', 'x-ms-error-code': 'InvalidUri' });
      res.end('<?xml version="1.0" encoding="utf-8"?><Error><Code>InvalidUri</Code></Error>');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      const sasUrl = `http://127.0.0.1:${port}/devstoreaccount1/c?${SAS_QUERY}`;
      const ws = freshWorkspace();
      for (let i = 0; i < PROBE_LIMIT; i++) {
        const r = i % 2 ? await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl }) : await h.call('POST', `/workspaces/${ws}/integration/validate`, { sasUrl });
        expect([r.status, r.body?.error?.code]).toEqual([400, 'sas_rejected']);
      }
      const probed = requests;
      expect(probed).toBeGreaterThan(0);
      for (const [method, path] of [['POST', `/workspaces/${ws}/integration/validate`], ['PUT', `/workspaces/${ws}/integration`], ['POST', `/owner/workspaces/${ws}/integration/validate`]] as const) {
        const r = await h.call(method, path, { sasUrl }, { headers: bearer(token(ws, 'manage')) });
        expect([r.status, r.body?.error?.code], `${method} ${path}`).toEqual([429, 'rate_limited']);
        const retryAfter = Number(r.headers.get('retry-after'));
        expect(retryAfter).toBeGreaterThan(0);
        expect(retryAfter).toBeLessThanOrEqual(3600);
      }
      expect(requests).toBe(probed);
      // Form errors are not probes and are not counted (nor refused).
      expect((await h.call('POST', `/workspaces/${ws}/integration/validate`, { sasUrl: 'nope' })).body.error.code).toBe('sas_not_url');
      // Another workspace still probes.
      const other = await h.call('POST', `/workspaces/${freshWorkspace()}/integration/validate`, { sasUrl });
      expect(other.body.error.code).toBe('sas_rejected');
      expect(requests).toBeGreaterThan(probed);
    } finally {
      server.close();
    }
  });
});

// Issue 15, point 3: SAS_ENCRYPTION_KEY rotates. Last in this file: it changes the app's settings.
describe('encryption key rotation', () => {
  it('a new key with the old one as previous reads every integration, writes re-encrypt, the operations route re-encrypts the rest, then the old key can go', async () => {
    const keyA = TEST_KEY;
    const keyB = Buffer.alloc(32, 11).toString('base64');
    const table = () => h.services.storage.table(TABLES.integrations);
    const sasOf = async (ws: number) => String((await table().getEntity<{ sas: string }>(String(ws), 'settings')).sas);
    const setKeys = (current: string, previous?: string) => {
      process.env.SAS_ENCRYPTION_KEY = current;
      if (previous === undefined) delete process.env.SAS_ENCRYPTION_KEYS_PREVIOUS;
      else process.env.SAS_ENCRYPTION_KEYS_PREVIOUS = previous;
      reloadServices();
    };
    const x = { ws: freshWorkspace(), c: await customerContainer() };
    const y = { ws: freshWorkspace(), c: await customerContainer() };
    for (const w of [x, y]) {
      await h.ingest(w.ws, 'deliveries', records(`rot${w.ws}`).deliveries);
      expect((await h.call('PUT', `/workspaces/${w.ws}/integration`, { sasUrl: w.c.sasUrl, files: ['deliveries'] })).status).toBe(201);
    }
    await h.host.whenIdle({ timeoutMs: 30_000 });
    try {
      setKeys(keyB, keyA);
      // Everything stored under A is still readable; the status says how many still use A.
      for (const w of [x, y]) expect((await h.call('GET', `/workspaces/${w.ws}/integration`)).status).toBe(200);
      const st = await h.call('GET', '/operations/encryption-keys');
      expect(st.status).toBe(200);
      const total = st.body.integrations;
      expect(st.body).toMatchObject({ currentKeyId: keyId(Buffer.from(keyB, 'base64')), previousKeyIds: [keyId(Buffer.from(keyA, 'base64'))], onCurrentKey: 0, onPreviousKeys: total, onUnknownKeys: 0 });
      // A write re-encrypts under the new key.
      expect((await h.call('PUT', `/workspaces/${x.ws}/integration`, { sasUrl: x.c.sasUrl, files: ['deliveries'] })).status).toBe(200);
      expect(await sasOf(x.ws)).toMatch(new RegExp(`^v2:${keyId(Buffer.from(keyB, 'base64'))}:`));
      expect((await h.call('GET', '/operations/encryption-keys')).body).toMatchObject({ onCurrentKey: 1, onPreviousKeys: total - 1 });
      // Exports of an integration still under A work.
      await h.ingest(y.ws, 'deliveries', records(`rot2${y.ws}`).deliveries);
      await h.sync();
      expect((await y.c.list()).filter((n) => n.endsWith('.parquet'))).toHaveLength(2);
      // Removing A before everything moved is refused at start-up, naming the settings.
      const early = loadConfig({ ...process.env, SAS_ENCRYPTION_KEYS_PREVIOUS: '' });
      await expect(checkEncryptionKey({ storage: h.services.storage, config: early })).rejects.toThrow(/SAS_ENCRYPTION_KEY.*SAS_ENCRYPTION_KEYS_PREVIOUS/);
      // The operations route re-encrypts the rest.
      const re = await h.call('POST', '/operations/encryption-keys/reencrypt');
      expect(re.status).toBe(200);
      expect(re.body).toMatchObject({ reencrypted: total - 1, alreadyCurrent: 1, status: { onCurrentKey: total, onPreviousKeys: 0 } });
      expect(await sasOf(y.ws)).toMatch(new RegExp(`^v2:${keyId(Buffer.from(keyB, 'base64'))}:`));
      // Now A can go: the app starts, reads and exports with B alone.
      setKeys(keyB);
      expect((await h.call('GET', `/workspaces/${y.ws}/integration`)).status).toBe(200);
      await h.ingest(y.ws, 'deliveries', records(`rot3${y.ws}`).deliveries);
      await h.sync();
      expect((await y.c.list()).filter((n) => n.endsWith('.parquet'))).toHaveLength(3);
      expect((await getServices()).config.sasEncryptionKeysPrevious).toEqual([]);
      // A bad previous key is a configuration error naming the setting.
      expect(() => loadConfig({ ...process.env, SAS_ENCRYPTION_KEYS_PREVIOUS: `${keyA},c2hvcnQ=` })).toThrow(/SAS_ENCRYPTION_KEYS_PREVIOUS: entry 2/);
      // A SAS under a key nobody configured is counted and left alone, not a failed run.
      await table().updateEntity({ partitionKey: String(x.ws), rowKey: 'settings', sas: encryptSecret(x.c.sasUrl, Buffer.alloc(32, 12)) }, 'Merge');
      expect((await h.call('GET', '/operations/encryption-keys')).body).toMatchObject({ onUnknownKeys: 1, onPreviousKeys: 0 });
      const stuck = await h.call('POST', '/operations/encryption-keys/reencrypt');
      expect([stuck.status, stuck.body.unreadable]).toEqual([200, [x.ws]]);
      counts.keyRotation = { integrations: total, reencryptedByRoute: re.body.reencrypted, reencryptedByWrite: 1 };
    } finally {
      setKeys(keyA, keyB);
    }
  });
});
