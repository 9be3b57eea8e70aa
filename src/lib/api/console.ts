// The console page's files (compiled from src/console into dist/console), served by the app itself
// with headers that let the page run only its own scripts and styles. The page holds no secret.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** dist/console beside the compiled app (dist/src/lib/api), or the repository's dist/console when run from source. */
const CANDIDATES = ['../../../console/', '../../../dist/console/'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));

export function consoleDir(): string | undefined {
  return CANDIDATES.find((dir) => existsSync(path.join(dir, 'index.html')));
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-cache',
};

/** Only plain names of known types, in plain folders (console/, lib/contract/): no traversal, no dot files. */
const ASSET = /^(?:[a-z0-9][a-z0-9-]*\/){0,3}[a-z0-9][a-z0-9-]*\.(html|js|css|svg|png)$/;

export interface ConsoleAnswer {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

const notFound = (message: string): ConsoleAnswer => ({
  status: 404,
  headers: { ...CONSOLE_HEADERS, 'content-type': 'application/json; charset=utf-8' },
  body: JSON.stringify({ error: { code: 'not_found', message, details: [] } }),
});

/**
 * GET /api/console[/{asset}]. The page's base is the console's own path (taken from the request,
 * so a different route prefix works), which its relative script and style links resolve against.
 */
export function consoleAsset(asset: string | undefined, requestPath: string, dir = consoleDir()): ConsoleAnswer {
  if (!dir || !existsSync(path.join(dir, 'index.html'))) return notFound('the console is not built: run npm run build');
  const name = asset && asset !== 'index.html' ? asset : 'index.html';
  if (!ASSET.test(name)) return notFound(`no console file "${asset}"`);
  const file = path.join(dir, name);
  if (!existsSync(file)) return notFound(`no console file "${asset}"`);
  const type = TYPES[path.extname(name)];
  if (name === 'index.html') {
    const base = requestPath.replace(/\/index\.html$/, '').replace(/\/+$/, '') + '/';
    return { status: 200, headers: { ...CONSOLE_HEADERS, 'content-type': type }, body: readFileSync(file, 'utf8').replace('%BASE%', encodeURI(base)) };
  }
  return { status: 200, headers: { ...CONSOLE_HEADERS, 'content-type': type }, body: readFileSync(file) };
}
