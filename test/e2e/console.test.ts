// The console page in a real browser (Debian's Chromium driven by playwright-core) against the app
// on the local host and the test Azurite: what a workspace owner and an operator see and can do.
// Screenshots of each screen at 1280 px and 390 px go to test-output/console/ (git-ignored);
// UPDATE_SCREENSHOTS=1 also refreshes docs/console/.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Host } from '../../src/local/host.js';
import { startAppHost } from '../support/app-host.js';
import { customerContainer, type CustomerContainer } from '../support/container.js';
import { freshWorkspace } from '../support/env.js';
import { mintWorkspaceToken } from '../../src/lib/platform/workspace-token.js';

const TOKEN_KEY = Buffer.alloc(32, 9);

const ROOT = path.resolve(__dirname, '../..');
const OUT = path.join(ROOT, 'test-output/console');
const DOCS = path.join(ROOT, 'docs/console');
const CHROMIUM = '/usr/bin/chromium';
const WIDE = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

let host: Host;
let context: BrowserContext;
let page: Page;
let profile: string;
let c: CustomerContainer;
const ws = freshWorkspace();
const problems: string[] = [];
const logs: string[] = [];

async function call(method: string, route: string, body?: unknown) {
  const r = await fetch(`${host.url}/api${route}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: (await r.json().catch(() => undefined)) as any };
}
const deliveries = (ids: string[]) => ids.map((id) => ({ delivery_id: id, delivery_type: 'email', created_at: new Date().toISOString() }));

/** The screen at both widths; the phone one must not scroll sideways. */
async function snap(name: string, fullPage = true) {
  for (const [size, viewport] of [['1280', WIDE], ['390', PHONE]] as const) {
    await page.setViewportSize(viewport);
    await page.waitForTimeout(100);
    if (size === '390') expect(await page.evaluate(() => document.documentElement.scrollWidth), `${name} at 390 px scrolls sideways`).toBeLessThanOrEqual(PHONE.width);
    const file = path.join(OUT, `${name}-${size}.png`);
    // Phone shots show the first screen only: a whole page of cards is very long.
    await page.screenshot({ path: file, fullPage: fullPage && size === '1280' });
    if (process.env.UPDATE_SCREENSHOTS === '1') copyFileSync(file, path.join(DOCS, `${name}-${size}.png`));
  }
  await page.setViewportSize(WIDE);
}

async function openWorkspace() {
  await page.goto(`${host.url}/api/console#/workspaces/${ws}`);
  await page.getByRole('heading', { name: `Workspace ${ws}` }).waitFor();
}
const alertText = () => page.getByRole('alert').first().innerText();
const fileRow = (t: string) => page.locator(`tr[data-file="${t}"]`);

beforeAll(async () => {
  // The page is compiled by its own tsconfig (DOM lib); the tests serve what `npm run build` makes.
  execFileSync('npm', ['run', '--silent', 'build:console'], { cwd: ROOT, stdio: 'inherit' });
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)`);
  mkdirSync(OUT, { recursive: true });
  if (process.env.UPDATE_SCREENSHOTS === '1') mkdirSync(DOCS, { recursive: true });
  host = await startAppHost({ queue: `console-${process.pid}`, log: (r) => logs.push(JSON.stringify(r)), settings: { WORKSPACE_TOKEN_SIGNING_KEY: TOKEN_KEY.toString('base64') } });
  c = await customerContainer();
  expect((await call('POST', `/workspaces/${ws}/ingest/deliveries`, deliveries(['d1', 'd2', 'd3']))).status).toBe(202);
  expect((await call('POST', `/workspaces/${ws}/ingest/people`, [{ internal_customer_id: 'p1', customer_id: 'c1', email_addr: 'a@example.com', attributes: { plan: 'pro' } }])).status).toBe(202);
  profile = mkdtempSync(path.join(tmpdir(), 'console-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport: WIDE,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The API's refusals (4xx) are shown on the page; anything else (a CSP violation, a script error) is a problem.
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
});

afterAll(async () => {
  await context?.close();
  await host?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
  // Nothing any function logged carries a SAS signature.
  expect(logs.join('\n')).not.toMatch(/sig=/i);
});

describe('the page', () => {
  it('is served by the app with a strict Content-Security-Policy, and nothing else', async () => {
    const r = await fetch(`${host.url}/api/console`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    expect(r.headers.get('content-security-policy')).toMatch(/default-src 'self'.*frame-ancestors 'none'/);
    expect(r.headers.get('content-security-policy')).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await r.text();
    expect(html).toContain('<base href="/api/console/">');
    expect(html).not.toMatch(/https?:\/\//);
    const js = await fetch(`${host.url}/api/console/console/main.js`);
    expect([js.status, js.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
    for (const bad of ['nope.js', '..%2Fpackage.json', '.env', 'console/main.ts', 'console/..%2F..%2Fpackage.json']) expect((await fetch(`${host.url}/api/console/${bad}`)).status, bad).toBe(404);
  });

  it('home: a workspace id opens its view; the integrations are listed', async () => {
    await page.goto(`${host.url}/api/console`);
    await page.getByRole('heading', { name: 'Warehouse export' }).waitFor();
    await page.getByLabel('Workspace id').fill(String(ws));
    await page.getByRole('button', { name: 'Open workspace' }).click();
    await page.getByText(`Workspace ${ws} has no integration yet.`).waitFor();
    expect(page.url()).toMatch(new RegExp(`#/workspaces/${ws}$`));
  });
});

describe('a workspace owner', () => {
  it('connect: each kind of bad SAS is refused with its reason and what to fix', async () => {
    await openWorkspace();
    const other = await customerContainer();
    const policy = await other.policySas('gone');
    await other.revokePolicies();
    const cases: [string, string, RegExp][] = [
      ['not a url', 'sas_not_url', /not a URL/],
      [c.client.url, 'sas_missing_query', /no shared access signature/],
      [c.accountSas(), 'sas_account_sas', /account SAS; a container SAS is required/],
      [c.sas({ permissions: 'rl' }), 'sas_missing_permissions', /does not grant add, create, write/],
      [c.sas({ expiresOn: new Date(Date.now() - 3600_000) }), 'sas_expired', /expired/],
      [policy, 'sas_policy_invalid', /stored access policy of this SAS was revoked/],
      [c.sas({ signedFor: other.client.containerName }), 'sas_signature_invalid', /signature is not valid for this container/],
    ];
    for (const [sasUrl, code, message] of cases) {
      await page.getByLabel('Blob SAS URL').fill(sasUrl);
      await page.getByRole('button', { name: 'Validate' }).click();
      await page.getByRole('alert').getByText(code).waitFor();
      const text = await alertText();
      expect(text, code).toMatch(message);
      expect(text, code).toContain('What to fix:');
      expect(await page.getByRole('button', { name: 'Create and sync data' }).count(), code).toBe(0);
      if (code === 'sas_missing_permissions') expect(text).toContain('sasUrl: the SAS does not grant add');
      if (code === 'sas_account_sas') await snap('connect-refused');
    }
    await page.getByLabel('Blob SAS URL').fill(c.sasUrl);
    await page.getByLabel('Blob path').fill('../up');
    await page.getByRole('button', { name: 'Validate' }).click();
    await page.getByRole('alert').getByText('blob_path_invalid').waitFor();
  });

  it('connect with a good SAS, choose files, watch the first sync finish and the history fill', async () => {
    await page.getByLabel('Blob SAS URL').fill(c.sasUrl);
    await page.getByLabel('Blob path').fill('warehouse');
    await page.getByRole('button', { name: 'Validate' }).click();
    await page.getByText(/^Done: Valid: the app can write, list and read in devstoreaccount1/).waitFor();
    // Files: all on by default; keep deliveries, people and attributes.
    for (const t of ['Metrics', 'Subjects', 'Outputs', 'Content (delivery_contents)', 'Events (past 30 days, then changes)']) await page.getByLabel(t, { exact: true }).uncheck();
    expect(await page.getByLabel('Schema version').inputValue()).toBe('v4');
    await snap('connect-choose');
    await page.getByRole('button', { name: 'Create and sync data' }).click();
    await page.getByText(/Saved\. Exporting now: deliveries, people, attributes\./).waitFor();
    await fileRow('deliveries').getByText('✓ up to date').waitFor({ timeout: 30_000 });
    await fileRow('people').getByText('✓ up to date').waitFor({ timeout: 30_000 });
    expect(await fileRow('deliveries').locator('td[data-label="Rows"]').innerText()).toBe('3');
    expect(await fileRow('metrics').getByText('○ off').count()).toBe(1);
    // The SAS went once and is nowhere on the page now.
    expect(await page.content()).not.toMatch(/sig=/);
    // The history fills: the deliveries file with its rows, and the charts.
    await page.locator('.history-table').getByText(`deliveries_v4_${ws}_00000000000000000001.parquet`).waitFor();
    expect(await page.locator('svg.chart rect.bar').count()).toBeGreaterThanOrEqual(2);
    expect(problems).toEqual([]);
    await snap('workspace');
    await page.locator('section.history').scrollIntoViewIfNeeded();
    await page.getByLabel('Show').selectOption('deliveries');
    await page.getByText('1 entries, newest first').waitFor();
  });

  it('toggles a file off and on, with the catch-up rule shown where it applies', async () => {
    const toggle = page.getByLabel('on (export deliveries)');
    await toggle.uncheck();
    await page.getByText('Deliveries turned off.').waitFor();
    await fileRow('deliveries').getByText('○ off').waitFor();
    await expect.poll(() => fileRow('deliveries').getByRole('button', { name: 'Sync deliveries now' }).isDisabled()).toBe(true);
    await fileRow('deliveries').getByText('On again: catches up with everything changed since its last export.').waitFor();
    await fileRow('metrics').getByText('On: starts with an initial sync of its history.').waitFor();
    await fileRow('people').getByText('Off for more than 7 days, People cannot be turned on again.').waitFor();
    await page.getByLabel('off (export deliveries)').check();
    await page.getByText('Deliveries turned on.').waitFor();
    await expect.poll(() => fileRow('deliveries').getByRole('button', { name: 'Sync deliveries now' }).isEnabled()).toBe(true);
  });

  it('disables and enables the whole sync, saying what enabling sends', async () => {
    await page.getByRole('button', { name: 'Disable sync' }).click();
    await page.getByText(/Sync disabled\. Exports are stopped/).waitFor();
    await page.getByText('○ disabled').waitFor();
    expect(await page.getByLabel('on (export people)').isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Enable sync' }).click();
    await page.getByText(/Sync enabled\. The next sync sends all history again/).waitFor();
    await page.getByText('✓ enabled').waitFor();
    await fileRow('deliveries').getByText('✓ up to date').waitFor({ timeout: 30_000 });
  });

  it('works with the keyboard: the Validate form and the toggles are reachable and visibly focused', async () => {
    await page.getByRole('button', { name: 'Disable sync' }).focus();
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      return { tag: el.tagName, outline: getComputedStyle(el).outlineStyle };
    });
    expect(focused.tag).toBe('BUTTON');
    expect(focused.outline).not.toBe('none');
    // Every control has a label.
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, button')].filter((el) => {
        const e = el as HTMLInputElement;
        return !(e.labels?.length || e.getAttribute('aria-label') || e.textContent?.trim());
      }).length,
    );
    expect(unlabelled).toBe(0);
  });
});

describe('a legacy integration', () => {
  it('shows the SAS expiry warning with the stored access policy advice, and upgrades v1 to v4', async () => {
    const legacy = freshWorkspace();
    const soon = await customerContainer('racwl', 5 * 24 * 3600_000);
    expect((await call('PUT', `/workspaces/${legacy}/integration`, { sasUrl: soon.sasUrl, schemaVersion: 'v1', files: ['deliveries'] })).status).toBe(201);
    await page.goto(`${host.url}/api/console#/workspaces/${legacy}`);
    await page.getByText(/^Warning: the SAS expires on .*create a stored access policy on the container/).waitFor();
    expect(await fileRow('events').count()).toBe(0);
    await page.getByText(/sends subjects and outputs again from the beginning/).waitFor();
    await page.getByRole('button', { name: 'Upgrade to v4' }).click();
    await page.getByText(/Upgraded to v4\. The next sync writes v4 file names/).waitFor();
    await fileRow('events').waitFor();
    expect(await page.getByRole('button', { name: 'Upgrade to v4' }).count()).toBe(0);
  });
});

describe('a failing export', () => {
  it('shows the last error on its file and the failed attempt with its code in the history', async () => {
    const failing = freshWorkspace();
    const revoked = await customerContainer();
    const sasUrl = await revoked.policySas('p1');
    expect((await call('PUT', `/workspaces/${failing}/integration`, { sasUrl, files: ['deliveries'] })).status).toBe(201);
    await revoked.revokePolicies();
    expect((await call('POST', `/workspaces/${failing}/ingest/deliveries`, deliveries(['f1']))).status).toBe(202);
    await page.goto(`${host.url}/api/console#/workspaces/${failing}`);
    await fileRow('deliveries').getByRole('button', { name: 'Sync deliveries now' }).click();
    await fileRow('deliveries').getByText('✕ failing').waitFor();
    const code = await fileRow('deliveries').locator('td[data-label="Last error"] code').innerText();
    expect(code).toMatch(/^sas_\w+$/);
    await page.locator('.history-table tr.failed').getByText(code).first().waitFor();
    expect(await page.locator('.history-table tr.failed').first().innerText()).toContain('✕ failed');
  });
});

describe('an operator', () => {
  it('sees every integration with its lag and errors, sorts them, and syncs one now', async () => {
    expect((await call('POST', `/workspaces/${ws}/ingest/deliveries`, deliveries(['d4', 'd5']))).status).toBe(202);
    await page.goto(`${host.url}/api/console#/operator`);
    const row = page.locator(`tr[data-workspace="${ws}"]`);
    await row.waitFor();
    expect(await row.getByRole('link', { name: `Workspace ${ws}` }).count()).toBe(1);
    await page.getByRole('button', { name: /^Pending/ }).click();
    expect(await page.locator('th[aria-sort="descending"]').innerText()).toMatch(/Pending/);
    await row.getByRole('button', { name: `Sync workspace ${ws} now` }).click();
    await page.getByText(new RegExp(`Workspace ${ws}: queued an export of deliveries, people, attributes\\.`)).waitFor();
    await page.getByRole('heading', { name: 'Poison queue' }).waitFor();
    await page.getByText(/message\(s\)/).first().waitFor();
    await snap('operator');
    // The export it queued shows in the workspace's history.
    await openWorkspace();
    const changeset = page.locator('.history-table tr').filter({ hasText: `deliveries_v4_${ws}_` }).filter({ hasText: 'changeset' });
    await changeset.first().waitFor({ timeout: 30_000 });
    expect(await changeset.first().locator('td[data-label="Rows"]').innerText()).toBe('2');
    await fileRow('deliveries').getByText('✓ up to date').waitFor({ timeout: 30_000 });
  });
});

describe('access', () => {
  it('sends the function key from the Access panel, or an owner token from #token=, kept in this tab only', async () => {
    const seen: Record<string, string>[] = [];
    const seenUrls: string[] = [];
    const listener = (r: { url(): string; headers(): Record<string, string> }) => {
      if (r.url().includes('/integration')) {
        seen.push(r.headers());
        seenUrls.push(r.url());
      }
    };
    page.on('request', listener);
    await openWorkspace();
    await page.getByText(/^Access:/).click();
    await page.getByLabel('Function key').fill('k-123');
    await page.getByRole('button', { name: 'Use key' }).click();
    await fileRow('deliveries').waitFor();
    expect(seen.at(-1)?.['x-functions-key']).toBe('k-123');
    const token = mintWorkspaceToken(TOKEN_KEY, { workspaceId: ws, scope: 'read', expiresAt: Date.now() + 10 * 60_000 });
    await page.goto(`${host.url}/api/console#token=${token}`);
    await page.getByText('Access: owner token (from your link)').waitFor();
    expect(page.url()).not.toContain(token);
    await page.goto(`${host.url}/api/console#/workspaces/${ws}`);
    await fileRow('deliveries').waitFor();
    // With a token the page calls the owner routes, which check it in the handler.
    expect(seen.at(-1)?.authorization).toBe(`Bearer ${token}`);
    expect(seenUrls.at(-1)).toContain(`/api/owner/workspaces/${ws}/integration`);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    await page.getByText(/^Access:/).click();
    await page.getByRole('button', { name: 'Forget token' }).click();
    await page.getByText('Access: function key').waitFor();
    page.off('request', listener);
  });
});

describe('deleting', () => {
  it('asks first, says the files stay, then offers to connect again', async () => {
    await openWorkspace();
    await page.getByRole('button', { name: 'Delete integration…' }).click();
    await page.getByText(/Files already in your container stay there\./).waitFor();
    await page.getByText(/Files already in your container stay there\./).scrollIntoViewIfNeeded();
    await snap('delete-confirm', false);
    await page.getByRole('button', { name: 'Yes, delete the integration' }).click();
    await page.getByText(/Integration deleted\. .*Files already in your container are yours and stay there\./).waitFor();
    await page.getByText(`Workspace ${ws} has no integration yet.`).waitFor();
    expect((await c.list('warehouse/')).filter((n) => n.endsWith('.parquet')).length).toBeGreaterThanOrEqual(3);
    await page.goto(`${host.url}/api/console`);
    await snap('home');
    expect(problems).toEqual([]);
  });
});
