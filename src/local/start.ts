// `npm start`: the app as `func start` would run it, against a persisted local Azurite, plus a demo
// workspace on first start (dev tool only).
//
//   node dist/src/local/start.js [--no-demo] [--entry <module>] [--port <n>]     (DEMO=0 = --no-demo)
//
// Settings come from local.settings.json "Values" (else local.settings.sample.json, else built-in
// defaults) and are copied into process.env unless already set there (environment wins).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  BlobServiceClient,
  ContainerSASPermissions,
  generateBlobSASQueryParameters,
  SASProtocol,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { DEV_ACCOUNT, DEV_KEY, devConnectionString, startAzurite, type Azurite } from './azurite.js';
import { describeFunctions, startHost, type Host } from './host.js';
import { defaultSink } from './host/logging.js';
import { generateDemoData, ingestDemoData } from './demo-data.js';
import { DEMO_BLOB_PATH, DEMO_CONTAINER, formatTable, listExport, queryDemoExport } from './query.js';

const AZURITE_DIR = '.azurite';
const DEMO_MARKER = path.join(AZURITE_DIR, 'demo-workspace.json');
const DEMO_WORKSPACE_ID = 1;
const ALL_FILES = ['deliveries', 'metrics', 'subjects', 'outputs', 'content', 'people', 'attributes', 'events'];
const DEFAULT_PORTS = { blob: 10000, queue: 10001, table: 10002 };

/** Used only where no settings file gives a value. */
export const DEFAULT_SETTINGS: Readonly<Record<string, string>> = {
  FUNCTIONS_WORKER_RUNTIME: 'node',
  AzureWebJobsStorage: devConnectionString(DEFAULT_PORTS.blob, DEFAULT_PORTS.queue, DEFAULT_PORTS.table),
  EXPORT_SCHEDULE: '0 */1 * * * *',
  // "local-dev-only-key-do-not-deploy", 32 bytes: for the local store only.
  SAS_ENCRYPTION_KEY: 'bG9jYWwtZGV2LW9ubHkta2V5LWRvLW5vdC1kZXBsb3k=',
  // The demo container is on Azurite (path-style loopback URL); a deployed app refuses those.
  ALLOW_EMULATOR_SAS_URLS: 'true',
};

export interface LocalSettings {
  values: Record<string, string>;
  /** The file the values came from, if any. */
  source: string | undefined;
}

export function loadSettings(dir = process.cwd()): LocalSettings {
  for (const name of ['local.settings.json', 'local.settings.sample.json']) {
    const file = path.join(dir, name);
    if (!existsSync(file)) continue;
    let parsed: { Values?: Record<string, unknown> };
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed;
    } catch (e) {
      throw new Error(`${name} is not valid JSON: ${(e as Error).message}`);
    }
    const values: Record<string, string> = { ...DEFAULT_SETTINGS };
    for (const [k, v] of Object.entries(parsed.Values ?? {})) if (v !== null && v !== undefined) values[k] = String(v);
    return { values, source: file };
  }
  return { values: { ...DEFAULT_SETTINGS }, source: undefined };
}

/** Account, key and endpoints of a storage connection string (incl. UseDevelopmentStorage=true). */
export function parseConnectionString(cs: string): { account: string; key?: string; blob?: URL; queue?: URL; table?: URL } {
  if (/UseDevelopmentStorage=true/i.test(cs)) return parseConnectionString(devConnectionString(10000, 10001, 10002));
  const parts = Object.fromEntries(
    cs.split(';').filter(Boolean).map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i), p.slice(i + 1)];
    }),
  ) as Record<string, string>;
  const url = (s?: string) => (s ? new URL(s) : undefined);
  return { account: parts.AccountName, key: parts.AccountKey, blob: url(parts.BlobEndpoint), queue: url(parts.QueueEndpoint), table: url(parts.TableEndpoint) };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

const sayOut = (text: string) => void process.stdout.write(text + '\n');
const say = sayOut;

async function startLocalAzurite(connectionString: string): Promise<Azurite | undefined> {
  const cs = parseConnectionString(connectionString);
  const endpoints = { blob: cs.blob, queue: cs.queue, table: cs.table };
  const local = Object.values(endpoints).every((u) => u && ['127.0.0.1', 'localhost'].includes(u.hostname));
  if (!local) {
    say(`AzureWebJobsStorage points at ${cs.blob?.host ?? 'a remote account'}; not starting Azurite.`);
    return undefined;
  }
  const ports = {
    blob: Number(endpoints.blob!.port || 80),
    queue: Number(endpoints.queue!.port || 80),
    table: Number(endpoints.table!.port || 80),
  };
  for (const [service, port] of Object.entries(ports)) {
    if (!(await portFree(port))) {
      throw new Error(
        `port ${port} (Azurite ${service}) on 127.0.0.1 is already in use. Is another Azurite or \`npm start\` running? ` +
          'Stop it, or point AzureWebJobsStorage in local.settings.json at other ports.',
      );
    }
  }
  return startAzurite({ location: path.resolve(AZURITE_DIR), blobPort: ports.blob, queuePort: ports.queue, tablePort: ports.table });
}

function containerSasUrl(connectionString: string, container: string): string {
  const cs = parseConnectionString(connectionString);
  const account = cs.account ?? DEV_ACCOUNT;
  const key = cs.key ?? DEV_KEY;
  const client = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container);
  const now = Date.now();
  const sas = generateBlobSASQueryParameters(
    {
      containerName: container,
      permissions: ContainerSASPermissions.parse('racwl'),
      startsOn: new Date(now - 5 * 60_000),
      expiresOn: new Date(now + 365 * 86_400_000),
      protocol: SASProtocol.HttpsAndHttp,
    },
    new StorageSharedKeyCredential(account, key),
  ).toString();
  return `${client.url}?${sas}`;
}

async function api(host: Host, method: string, route: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${host.url}/api/${route}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`demo: ${method} /api/${route} answered ${res.status}: ${text.slice(0, 2000)}`);
  return text ? JSON.parse(text) : undefined;
}

const EXAMPLE_QUERY = 'select metric, count(*) as n from metrics group by metric order by n desc';

/** Seeds the demo workspace, connects it to the `demo-export` container and runs one sync. */
export async function runDemo(host: Host, connectionString: string, say: (text: string) => void = sayOut): Promise<void> {
  const started = Date.now();
  say(`\nDemo: seeding workspace ${DEMO_WORKSPACE_ID} through the ingest API ...`);
  const ingested = await ingestDemoData(`${host.url}/api`, DEMO_WORKSPACE_ID, generateDemoData());
  say('  ' + ingested.map((r) => `${r.name}: ${r.records}`).join(', '));

  const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(DEMO_CONTAINER);
  await container.createIfNotExists();
  const sasUrl = containerSasUrl(connectionString, DEMO_CONTAINER);
  await api(host, 'PUT', `workspaces/${DEMO_WORKSPACE_ID}/integration`, { sasUrl, blobPath: DEMO_BLOB_PATH, files: ALL_FILES });
  say(`Demo: integration -> container "${DEMO_CONTAINER}", path "${DEMO_BLOB_PATH}/" (SAS racwl, 1 year)`);

  if (!host.functions.some((f) => f.name === 'exportTimer')) {
    say('Demo: no function named exportTimer is registered; skipping the first sync.');
    return;
  }
  say('Demo: running a sync now (exportTimer, then exportWorker until the queue is empty) ...');
  await host.invoke('exportTimer');
  await host.whenIdle({ timeoutMs: 15 * 60_000 });

  const files = await listExport(connectionString);
  say(`\nDemo: ${files.length} files in ${DEMO_CONTAINER}/${DEMO_BLOB_PATH}/ after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (files.length) {
    say(formatTable(['file', 'rows', 'bytes'], files.map((f) => [f.name, f.rows ?? '?', f.size]), 120).replace(/\n\(.*\)$/, ''));
    say(`\nQuery them with DuckDB, e.g.:\n  node dist/src/local/query.js "${EXAMPLE_QUERY}"`);
    try {
      const r = await queryDemoExport(connectionString, EXAMPLE_QUERY);
      say(formatTable(r.columns, r.rows));
    } catch (e) {
      say(`(example query failed: ${(e as Error).message})`);
    }
  }
}

interface Args {
  demo: boolean;
  entry: string;
  port: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    demo: process.env.DEMO !== '0' && process.env.DEMO !== 'false',
    entry: 'dist/src/index.js',
    port: 7071,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-demo') args.demo = false;
    else if (a === '--entry') args.entry = argv[++i];
    else if (a === '--port') args.port = Number(argv[++i]);
    else throw new Error(`unknown argument "${a}" (use --no-demo, --entry <module>, --port <n>)`);
  }
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { values, source } = loadSettings();
  const overridden = Object.keys(values).filter((k) => process.env[k] !== undefined && process.env[k] !== values[k]);
  for (const [k, v] of Object.entries(values)) if (process.env[k] === undefined) process.env[k] = v;
  const settings: Record<string, string> = {};
  for (const k of Object.keys(values)) settings[k] = process.env[k]!;
  const connectionString = settings.AzureWebJobsStorage;

  if (!existsSync(args.entry)) {
    throw new Error(`${args.entry} does not exist. Build the app first (npm start runs tsc), and check that src/index.ts imports src/functions/*.`);
  }

  let azurite: Azurite | undefined;
  let host: Host | undefined;
  let stopping: Promise<void> | undefined;
  let firstSignalAt = 0;
  const shutdown = (code: number) => {
    if (stopping) {
      // One Ctrl-C often arrives twice (terminal process group + npm forwarding it): only a later one forces.
      if (Date.now() - firstSignalAt < 2000) return;
      say('Forcing exit.');
      if (azurite) {
        try {
          process.kill(azurite.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      process.exit(code || 1);
    }
    firstSignalAt = Date.now();
    stopping = (async () => {
      say('\nStopping the host and Azurite ...');
      await host?.stop().catch((e: Error) => say(`host stop failed: ${e.message}`));
      await azurite?.stop().catch(() => undefined);
      process.exit(code);
    })();
  };
  process.on('SIGINT', () => shutdown(0));
  process.on('SIGTERM', () => shutdown(0));
  // The real worker logs these and keeps going; so do we.
  process.on('unhandledRejection', (e) => {
    defaultSink({ timestamp: new Date().toISOString(), level: 'error', category: 'host', message: `unhandled rejection: ${e instanceof Error ? e.stack : String(e)}` });
  });

  try {
    azurite = await startLocalAzurite(connectionString);
    const fresh = !existsSync(DEMO_MARKER);
    host = await startHost({ entry: args.entry, port: args.port, settings, hostJson: 'host.json' });

    say('');
    say(`Settings:  ${source ? path.relative(process.cwd(), source) : 'built-in defaults (no local.settings.json)'}${overridden.length ? ` (overridden by the environment: ${overridden.join(', ')})` : ''}`);
    if (azurite) {
      say(`Azurite:   blob http://127.0.0.1:${azurite.blobPort}  queue http://127.0.0.1:${azurite.queuePort}  table http://127.0.0.1:${azurite.tablePort}  (data in ${AZURITE_DIR}/)`);
    }
    say(`Host:      ${host.url}  (routes under /api; POST /admin/functions/{name} runs a function now)`);
    say(`Console:   ${host.url}/api/console${args.demo ? `#/workspaces/${DEMO_WORKSPACE_ID}` : ''}  (no key needed locally)`);
    say(`Functions:\n${describeFunctions(host)}`);
    say('Press Ctrl-C to stop.\n');

    if (args.demo && fresh && azurite) {
      try {
        await runDemo(host, connectionString);
        writeFileSync(DEMO_MARKER, JSON.stringify({ workspaceId: DEMO_WORKSPACE_ID, container: DEMO_CONTAINER, seededAt: new Date().toISOString() }, null, 2));
      } catch (e) {
        say(`\nDemo failed: ${(e as Error).message}\nThe host keeps running; fix the cause and restart (the demo runs again until it succeeds).`);
      }
    } else if (args.demo && !fresh) {
      say(`Demo workspace ${DEMO_WORKSPACE_ID} exists already (delete ${AZURITE_DIR}/ for a fresh start). Query it with:\n  node dist/src/local/query.js "${EXAMPLE_QUERY}"`);
    }
  } catch (e) {
    await host?.stop().catch(() => undefined);
    await azurite?.stop().catch(() => undefined);
    throw e;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e: Error) => {
    process.stderr.write(`npm start: ${e.message}\n`);
    process.exit(1);
  });
}
