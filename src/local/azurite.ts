// Starts Azurite from node_modules on loopback (dev tool and test setup; nothing in src/lib imports it).
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
import { mkdirSync } from 'node:fs';

/** Azurite's well-known development account (public, documented by Microsoft). */
export const DEV_ACCOUNT = 'devstoreaccount1';
export const DEV_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteOptions {
  /** Folder for persisted data; omit for in-memory persistence. */
  location?: string;
  /** Fixed ports; by default free loopback ports are chosen. */
  blobPort?: number;
  queuePort?: number;
  tablePort?: number;
}

export interface Azurite {
  readonly blobPort: number;
  readonly queuePort: number;
  readonly tablePort: number;
  readonly pid: number;
  /** Connection string for the dev account on these ports. */
  readonly connectionString: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function devConnectionString(blobPort: number, queuePort: number, tablePort: number): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};` +
    `BlobEndpoint=http://127.0.0.1:${blobPort}/${DEV_ACCOUNT};` +
    `QueueEndpoint=http://127.0.0.1:${queuePort}/${DEV_ACCOUNT};` +
    `TableEndpoint=http://127.0.0.1:${tablePort}/${DEV_ACCOUNT};`
  );
}

async function waitForPort(port: number, child: ChildProcess, deadline: number): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`azurite exited with code ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`azurite did not listen on 127.0.0.1:${port} within the start-up timeout`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  const fixed = options.blobPort !== undefined || options.queuePort !== undefined || options.tablePort !== undefined;
  // A free port can be taken by another process between our probe and Azurite's listen: try again with new ones.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startAzuriteOnce(options);
    } catch (e) {
      if (fixed || attempt >= 5 || !/EADDRINUSE|exited with code/.test((e as Error).message)) throw e;
    }
  }
}

async function startAzuriteOnce(options: AzuriteOptions): Promise<Azurite> {
  const blobPort = options.blobPort ?? (await freePort());
  const queuePort = options.queuePort ?? (await freePort());
  const tablePort = options.tablePort ?? (await freePort());
  const require = createRequire(import.meta.url);
  const main = require.resolve('azurite/dist/src/azurite.js');
  const args = [
    main,
    '--blobHost', '127.0.0.1', '--blobPort', String(blobPort),
    '--queueHost', '127.0.0.1', '--queuePort', String(queuePort),
    '--tableHost', '127.0.0.1', '--tablePort', String(tablePort),
    '--skipApiVersionCheck', '--disableTelemetry', '--silent', '--loose',
  ];
  if (options.location) {
    mkdirSync(options.location, { recursive: true });
    args.push('--location', options.location);
  } else {
    args.push('--inMemoryPersistence');
  }
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => { stderr += String(d); });
  const deadline = Date.now() + 30_000;
  try {
    for (const port of [blobPort, queuePort, tablePort]) await waitForPort(port, child, deadline);
  } catch (e) {
    child.kill();
    throw new Error(`${(e as Error).message}\n${stderr}`);
  }
  const pid = child.pid!;
  return {
    blobPort, queuePort, tablePort, pid,
    connectionString: devConnectionString(blobPort, queuePort, tablePort),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          return resolve(); // already gone
        }
        setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) {
            try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
          }
        }, 5000).unref();
      }),
  };
}
