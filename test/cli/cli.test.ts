// The operator CLI against the real routes: the local host in-process, Azurite, a customer container.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createServer, type AddressInfo } from 'node:net';
import { QueueClient } from '@azure/storage-queue';
import type { Host } from '../../src/local/host.js';
import { startAppHost } from '../support/app-host.js';
import { runCli, USAGE } from '../../src/cli/main.js';
import { customerContainer, type CustomerContainer } from '../support/container.js';
import { freshWorkspace } from '../support/env.js';

const QUEUE = `cli-${process.pid}`;
const SIGNING_KEY = Buffer.alloc(48, 5).toString('base64');
let host: Host;
let c: CustomerContainer;
let ws: number;
const logs: string[] = [];
const outputs: string[] = [];

/** Runs the CLI in-process; stdout and stderr captured apart. */
async function cli(argv: string[], options: { tty?: boolean; env?: Record<string, string> } = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (t: string) => (stdout += t), isTTY: options.tty ?? false },
    stderr: { write: (t: string) => (stderr += t) },
    env: { WAREHOUSE_API_URL: host.url, ...options.env },
    pollIntervalMs: 50,
  });
  outputs.push(stdout, stderr);
  return { code, stdout, stderr };
}

async function call(method: string, path: string, body?: unknown) {
  const r = await fetch(`${host.url}/api${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: (await r.json().catch(() => undefined)) as any };
}

const deliveries = (ids: string[]) => ids.map((id) => ({ delivery_id: id, delivery_type: 'email', created_at: new Date().toISOString() }));
const parquet = async (fileType = 'deliveries') => (await c.list(`ops/${fileType}_`)).filter((n) => n.endsWith('.parquet'));

beforeAll(async () => {
  host = await startAppHost({ queue: QUEUE, log: (r) => logs.push(JSON.stringify(r)), maxDequeueCount: 2, settings: { WORKSPACE_TOKEN_SIGNING_KEY: SIGNING_KEY } });
  c = await customerContainer();
  ws = freshWorkspace();
  expect((await call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, blobPath: 'ops', files: ['deliveries', 'events'] })).status).toBe(201);
  await host.whenIdle({ timeoutMs: 30_000 });
  expect((await call('POST', `/workspaces/${ws}/ingest/deliveries`, deliveries(['a', 'b', 'c']))).status).toBe(202);
});

afterAll(async () => {
  await host?.stop();
  // No SAS signature in anything the CLI printed or any function logged.
  expect(outputs.join('\n')).not.toMatch(/sig=/i);
  expect(logs.join('\n')).not.toMatch(/sig=/i);
});

describe('list and show', () => {
  it('list: one row per integration with pending changes and lag; --json is the API answer', async () => {
    const r = await cli(['list']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.split('\n')[0]).toMatch(/^WORKSPACE\s+SYNC\s+SCHEMA\s+DESTINATION\s+FILES\s+PENDING\s+LAG\s+RUNNING\s+ERRORS\s+WARNINGS$/);
    const row = r.stdout.split('\n').find((l) => l.trim().startsWith(`${ws} `));
    expect(row).toMatch(new RegExp(`^\\s*${ws}\\s+on\\s+v4\\s+${c.client.containerName}/ops\\s+2\\s+3\\s+\\d+s\\s+-\\s+-\\s+-$`));
    expect(r.stdout).toMatch(/\d+ integrations?\n$/);

    const json = await cli(['list', '--json', '--limit', '1000']);
    const mine = JSON.parse(json.stdout).integrations.find((i: { workspaceId: number }) => i.workspaceId === ws);
    expect(mine).toMatchObject({ pendingChanges: 3, files: { deliveries: { pendingChanges: 3, running: false, lastError: null }, events: { pendingChanges: 0 } } });
  });

  it('show: destination and a row per file', async () => {
    const r = await cli(['show', String(ws)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`workspace ${ws}: sync enabled, schema v4`);
    expect(r.stdout).toContain(`destination  devstoreaccount1 / ${c.client.containerName} / ops`);
    expect(r.stdout).toMatch(/SAS {10}expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, permissions racwl/);
    expect(r.stdout).toMatch(/\ndeliveries\s+on\s+-\s+0\s+0\s+0\s+3\s+\d+s\s+-\s+-\n/);
    expect(r.stdout).toMatch(/\npeople\s+off\s+-/);
  });

  it('show of a workspace without integration: the API message, exit 1', async () => {
    const r = await cli(['show', String(freshWorkspace())]);
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toMatch(/^error: workspace \d+ has no integration; create one with PUT .*\(integration_not_found, HTTP 404\)\n$/);
  });
});

describe('sync', () => {
  it('--watch follows the export to the end, a line per change when stdout is not a terminal', async () => {
    const r = await cli(['sync', String(ws), 'deliveries', '--watch']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`queued an export of deliveries for workspace ${ws}`);
    expect(lines.at(-2)).toMatch(/\] deliveries: 1 file, 3 rows written; 0 pending, lag 0s, idle$/);
    expect(lines.at(-1)).toMatch(/^done in \d+s: 1 file, 3 rows written$/);
    expect(r.stdout).not.toContain('\r');
    expect(await parquet()).toHaveLength(1);
  });

  it('--watch on a terminal rewrites one line', async () => {
    expect((await call('POST', `/workspaces/${ws}/ingest/deliveries`, deliveries(['d']))).status).toBe(202);
    const r = await cli(['sync', String(ws), 'deliveries', '--watch'], { tty: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('\r\x1b[2K[');
    expect(r.stdout).toMatch(/1 file, 1 row written; 0 pending, lag 0s, idle\ndone in \d+s: 1 file, 1 row written\n$/);
    expect(await parquet()).toHaveLength(2);
    // Nothing new: up to date at once.
    const again = await cli(['sync', String(ws), 'deliveries', '--watch']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/up to date: nothing to export\n$/);
    await host.whenIdle({ timeoutMs: 10_000 });
  });

  it('--json --watch prints one JSON line per change', async () => {
    expect((await call('POST', `/workspaces/${ws}/ingest/events`, [{ event_id: 'e1', name: 'n', type: 'event', timestamp: new Date().toISOString() }])).status).toBe(202);
    const r = await cli(['sync', String(ws), 'events', '--watch', '--json']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ queued: true, workspaceId: ws, fileType: 'events' });
    expect(lines.at(-1)).toMatchObject({ done: true, filesWritten: 1, rowsWritten: 1, pendingChanges: 0, running: false });
    expect(await parquet('events')).toHaveLength(1);
  });

  it('refusals: the API message and exit 1; bad usage exit 2', async () => {
    const disabled = await cli(['sync', String(ws), 'people']);
    expect(disabled).toMatchObject({ code: 1, stdout: '' });
    expect(disabled.stderr).toMatch(/^error: people is turned off for workspace \d+; .*\(file_disabled, HTTP 409\)\n$/);
    expect((await cli(['sync', String(ws), 'bogus'])).stderr).toContain('(unknown_file_type, HTTP 404)');
    expect((await cli(['sync', String(freshWorkspace()), 'deliveries', '--watch'])).stderr).toContain('(integration_not_found, HTTP 404)');
    expect((await cli(['sync', 'abc', 'deliveries'])).stderr).toContain('(invalid_workspace_id, HTTP 400)');
    const usage = await cli(['sync', String(ws)]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('error: sync takes <workspaceId> <fileType>, got');
    expect((await cli(['list', '--bogus'])).code).toBe(2);
    expect((await cli(['replay', '--max', 'lots'])).stderr).toContain('--max must be a positive whole number');
    expect((await cli(['frobnicate'])).stderr).toContain('unknown command "frobnicate"');
  });
});

describe('exports', () => {
  it('prints the export history newest first, filters by file type, refuses a bad query', async () => {
    expect((await call('POST', `/workspaces/${ws}/ingest/deliveries`, deliveries(['h1', 'h2']))).status).toBe(202);
    expect((await cli(['sync', String(ws), 'deliveries', '--watch'])).code).toBe(0);
    const r = await cli(['exports', String(ws), '--file-type', 'deliveries']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^AT\s+FILE\s+KIND\s+SEQUENCE\s+ROWS\s+BYTES\s+LAG\s+NAME \/ ERROR$/);
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z\s+deliveries\s+(changeset|initial)\s+\d+\s+2\s+[\d,]+\s+\S+\s+deliveries_v4_\d+_\d{20}\.parquet$/);
    const one = await cli(['exports', String(ws), '--file-type', 'deliveries', '--limit', '1', '--json']);
    const page = JSON.parse(one.stdout);
    expect(page.entries).toHaveLength(1);
    expect(page.entries[0]).toMatchObject({ fileType: 'deliveries', rows: 2 });
    const bad = await cli(['exports', String(ws), '--file-type', 'nope']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: the export history query was rejected \(invalid_query, HTTP 400\)\n  fileType: /);
  });
});

describe('poison and replay', () => {
  it('lists the poison queue decoded, and replays the valid messages only', async () => {
    const poisonQueue = new QueueClient(inject('storageConnectionString'), `${QUEUE}-poison`);
    await poisonQueue.clearMessages();
    const files = (await parquet()).length;
    expect((await call('POST', `/workspaces/${ws}/ingest/deliveries`, deliveries(['e', 'f']))).status).toBe(202);
    await poisonQueue.sendMessage(Buffer.from(JSON.stringify({ workspaceId: ws, fileType: 'deliveries' })).toString('base64'));
    await poisonQueue.sendMessage(Buffer.from('garbage with a SAS https://a.blob.core.windows.net/c?sv=1&sig=SECRET').toString('base64'));

    const listed = await cli(['poison']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`poison queue ${QUEUE}-poison: 2 messages\n`);
    expect(listed.stdout).toMatch(new RegExp(`\\s${ws}\\s+deliveries\\s+valid: replay sends it back\\n`));
    expect(listed.stdout).toMatch(/-\s+-\s+invalid \(\(message\): not JSON\) "garbage with a SAS/);
    expect(listed.stdout).not.toContain('SECRET');
    expect(JSON.parse((await cli(['poison', '--json'])).stdout)).toMatchObject({ count: 2, messages: [{ job: { workspaceId: ws, fileType: 'deliveries' } }, { job: null }] });

    const replayed = await cli(['replay', '--max', '10']);
    expect(replayed).toMatchObject({ code: 0, stderr: '' });
    expect(replayed.stdout).toBe('replayed 1 message to the export queue; skipped 1 that is not a valid export message (left in the poison queue)\n');
    await host.whenIdle({ timeoutMs: 10_000 });
    expect(await parquet()).toHaveLength(files + 1); // the replayed job exported the new deliveries
    expect((await cli(['poison'])).stdout).toContain('1 message\n');
    expect(JSON.parse((await cli(['replay', '--json'])).stdout)).toEqual({ replayed: 0, skipped: 1 });
    await poisonQueue.clearMessages();
  });
});

describe('connection and key', () => {
  it('sends the key from --key or WAREHOUSE_API_KEY and reports an unreachable API', async () => {
    const seen: (string | null)[] = [];
    const spy: typeof fetch = async (input, init) => {
      seen.push(new Headers(init?.headers).get('x-functions-key'));
      return fetch(input, init);
    };
    const run = (argv: string[], env: Record<string, string>) =>
      runCli(argv, { stdout: { write: () => true }, env: { WAREHOUSE_API_URL: host.url, ...env }, fetch: spy });
    expect(await run(['poison'], { WAREHOUSE_API_KEY: 'from-env' })).toBe(0);
    expect(await run(['poison', '--key', 'from-flag'], { WAREHOUSE_API_KEY: 'from-env' })).toBe(0);
    expect(await run(['poison'], {})).toBe(0);
    expect(seen).toEqual(['from-env', 'from-flag', null]);

    const closed = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const down = await cli(['list', '--url', `http://127.0.0.1:${closed}`]);
    expect(down).toMatchObject({ code: 1, stdout: '' });
    expect(down.stderr).toBe(`error: cannot reach the API at http://127.0.0.1:${closed} (ECONNREFUSED); check --url or WAREHOUSE_API_URL (unreachable)\n`);
  });

  it('help prints the usage', async () => {
    expect(await cli(['help'])).toEqual({ code: 0, stdout: USAGE, stderr: '' });
    expect((await cli([])).stdout).toBe(USAGE);
  });
});

describe('security commands', () => {
  it('token: mints a workspace token the owner routes accept for that workspace only, without calling the API', async () => {
    const calls: string[] = [];
    const spy: typeof fetch = async (input, init) => {
      calls.push(String(input));
      return fetch(input, init);
    };
    let stdout = '';
    const code = await runCli(['token', String(ws), '--minutes', '30'], { stdout: { write: (t: string) => (stdout += t) }, env: { WORKSPACE_TOKEN_SIGNING_KEY: SIGNING_KEY }, fetch: spy });
    expect([code, calls]).toEqual([0, []]);
    const token = stdout.trim();
    expect(token).toMatch(/^wst1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const get = (id: number, t: string) => fetch(`${host.url}/api/owner/workspaces/${id}/integration`, { headers: { authorization: `Bearer ${t}` } });
    expect((await get(ws, token)).status).toBe(200);
    expect((await get(ws + 1, token)).status).toBe(403);
    // Default scope read: no changes.
    const off = await fetch(`${host.url}/api/owner/workspaces/${ws}/integration/disable`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(off.status).toBe(403);
    const manage = await cli(['token', String(ws), '--scope', 'manage', '--minutes', '5'], { env: { WORKSPACE_TOKEN_SIGNING_KEY: SIGNING_KEY } });
    expect(manage.code).toBe(0);
    expect((await get(ws, manage.stdout.trim())).status).toBe(200);
    // Usage errors: no key, bad scope, too long.
    expect(await cli(['token', String(ws)])).toMatchObject({ code: 2, stderr: expect.stringContaining('WORKSPACE_TOKEN_SIGNING_KEY') });
    expect(await cli(['token', String(ws), '--scope', 'admin'], { env: { WORKSPACE_TOKEN_SIGNING_KEY: SIGNING_KEY } })).toMatchObject({ code: 2, stderr: expect.stringContaining('--scope') });
    expect(await cli(['token', String(ws), '--minutes', '100000'], { env: { WORKSPACE_TOKEN_SIGNING_KEY: SIGNING_KEY } })).toMatchObject({ code: 2, stderr: expect.stringContaining('--minutes') });
  });

  it('keys and reencrypt: how many integrations use an earlier SAS key, and moving them to the current one', async () => {
    const keys = await cli(['keys']);
    expect(keys.code).toBe(0);
    expect(keys.stdout).toMatch(/^current key [0-9a-f]{12}; previous keys -\n\d+ integrations?: \d+ on the current key, 0 on an earlier key/);
    const json = JSON.parse((await cli(['keys', '--json'])).stdout);
    expect(json).toMatchObject({ onPreviousKeys: 0, previousKeyIds: [] });
    expect(json.integrations).toBeGreaterThanOrEqual(1);
    const re = await cli(['reencrypt']);
    expect(re.code).toBe(0);
    expect(re.stdout).toMatch(/^re-encrypted 0 SAS URLs \(\d+ already current\)\n/);
  });
});
