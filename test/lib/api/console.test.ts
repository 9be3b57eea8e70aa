// The console's files as the app serves them: only known names from dist/console, the page's base
// taken from the request path, and the deployed package (.funcignore) keeping them.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { consoleAsset, CONSOLE_HEADERS } from '../../../src/lib/api/console.js';

function built(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'console-dist-'));
  writeFileSync(path.join(dir, 'index.html'), '<base href="%BASE%"><script type="module" src="main.js"></script>');
  mkdirSync(path.join(dir, 'console'));
  writeFileSync(path.join(dir, 'console', 'main.js'), 'export {};');
  return dir;
}

describe('consoleAsset', () => {
  it('serves the page with its base at the console path, whatever the route prefix or a trailing slash', () => {
    const dir = built();
    for (const [asset, requestPath, base] of [
      [undefined, '/api/console', '/api/console/'],
      [undefined, '/api/console/', '/api/console/'],
      ['index.html', '/api/console/index.html', '/api/console/'],
      [undefined, '/other/console', '/other/console/'],
    ] as const) {
      const r = consoleAsset(asset, requestPath, dir);
      expect(r.status).toBe(200);
      expect(String(r.body)).toContain(`<base href="${base}">`);
      expect(r.headers).toMatchObject({ ...CONSOLE_HEADERS, 'content-type': 'text/html; charset=utf-8' });
    }
    expect(consoleAsset('console/main.js', '/api/console/console/main.js', dir)).toMatchObject({ status: 200, headers: { 'content-type': 'text/javascript; charset=utf-8' } });
  });

  it('answers 404 for anything but a known file name: no traversal, no other types, nothing unbuilt', () => {
    const dir = built();
    for (const asset of ['../package.json', 'console/../../x.js', '.env', 'console/.x.js', 'console/main.ts', 'missing.js', 'CONSOLE/MAIN.JS', '%2e%2e/x.js', '/etc/passwd.js']) {
      const r = consoleAsset(asset, `/api/console/${asset}`, dir);
      expect(r.status, asset).toBe(404);
      expect(JSON.parse(String(r.body))).toMatchObject({ error: { code: 'not_found', details: [] } });
    }
    expect(consoleAsset(undefined, '/api/console', path.join(dir, 'nope')).status).toBe(404);
    expect(JSON.parse(String(consoleAsset(undefined, '/api/console', '').body)).error.message).toMatch(/npm run build/);
  });

  it('the deployed package keeps dist/console (.funcignore leaves out sources, not the built page)', () => {
    const rules = readFileSync(path.resolve(__dirname, '../../../.funcignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(rules.filter((r) => /^\/?dist\/?$|^\/?dist\/console|^\/?dist\/\*|^\*\.(js|css|html)$/.test(r))).toEqual([]);
  });
});
