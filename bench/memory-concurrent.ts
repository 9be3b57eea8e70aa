// Memory as deployed, under concurrency: host.json lets one worker run batchSize + newBatchThreshold
// queue messages (exports) at once, under the deployed V8 heap cap. Peak RSS of one worker process
// running that many initial syncs at once, each of its own workspace: deliveries (many small rows)
// and content (few rows of large bodies).
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FileType } from '../src/lib/contract/schemas.js';
import { benchServices, customerSas, DEPLOYED_NODE_OPTIONS, fillDeliveries } from './pipeline.js';

export interface ConcurrentMemoryResult {
  fileType: FileType;
  exports: number;
  rowsEach: number;
  bodyBytes?: number;
  seconds: number;
  peakRssMiB: number;
  files: number;
}

/** Exports one worker runs at once: host.json's queues batchSize + newBatchThreshold. */
export function hostConcurrency(): number {
  const host = JSON.parse(readFileSync(path.join(process.cwd(), 'host.json'), 'utf8')) as { extensions: { queues: { batchSize: number; newBatchThreshold: number } } };
  return host.extensions.queues.batchSize + host.extensions.queues.newBatchThreshold;
}

/** A content body of `bytes` characters, different per row (a repeated block would compress away). */
function body(i: number, bytes: number): string {
  let x = (i + 1) * 2654435761;
  const parts: string[] = [];
  for (let n = 0; n < bytes; n += 8) {
    x = (Math.imul(x ^ (x >>> 15), 2246822507) + 0x9e3779b9) >>> 0;
    parts.push(x.toString(36).padStart(8, '0').slice(0, 8));
  }
  return parts.join('').slice(0, bytes);
}

async function fillContent(services: ReturnType<typeof benchServices>, workspaceId: number, rows: number, bodyBytes: number): Promise<void> {
  const segment = 10;
  for (let i = 0; i < rows; i += segment) {
    const records = Array.from({ length: Math.min(segment, rows - i) }, (_, j) => ({ delivery_id: `dlv_${i + j}`, subject: `subject ${i + j}`, body: body(workspaceId * 1_000_000 + i + j, bodyBytes), type: 'email' }));
    await services.source.append(workspaceId, [{ fileType: 'content', records }]);
  }
}

/** Fills `exports` workspaces, then runs their initial syncs at once in one child with the deployed Node options. */
export async function benchConcurrentMemory(connectionString: string, firstWorkspace: number, fileType: 'deliveries' | 'content', exports: number, rowsEach: number, bodyBytes = 400 * 1024): Promise<ConcurrentMemoryResult> {
  const services = benchServices(connectionString);
  await services.storage.ready();
  const workspaces = Array.from({ length: exports }, (_, i) => firstWorkspace + i);
  for (const ws of workspaces) {
    if (fileType === 'deliveries') await fillDeliveries(services, ws, rowsEach);
    else await fillContent(services, ws, rowsEach, bodyBytes);
    await services.integrations.put(ws, { sasUrl: await customerSas(connectionString, `bench-${ws}`), files: [fileType] });
  }
  const child = fork(fileURLToPath(import.meta.url), ['--concurrent-child', connectionString, fileType, workspaces.join(',')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, ...DEPLOYED_NODE_OPTIONS] });
  const r = await new Promise<{ seconds: number; peakRssMiB: number; files: number; rows: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { seconds: number; peakRssMiB: number; files: number; rows: number }));
    child.once('exit', (code) => code !== 0 && reject(new Error(`concurrent export child exited with ${code} (out of memory?)`)));
  });
  if (r.rows !== exports * rowsEach) throw new Error(`bench: exported ${r.rows} rows, expected ${exports * rowsEach}`);
  return { fileType, exports, rowsEach, ...(fileType === 'content' ? { bodyBytes } : {}), seconds: r.seconds, peakRssMiB: r.peakRssMiB, files: r.files };
}

async function concurrentChild(connectionString: string, fileType: FileType, workspaces: number[]): Promise<void> {
  const services = benchServices(connectionString);
  await services.storage.ready();
  const t0 = performance.now();
  const outs = await Promise.all(workspaces.map((workspaceId) => services.exporter().run({ workspaceId, fileType }, 'bench')));
  const files = outs.flatMap((o) => o.files);
  process.send!({ seconds: (performance.now() - t0) / 1000, peakRssMiB: process.resourceUsage().maxRSS / 1024, files: files.length, rows: files.reduce((n, f) => n + f.rows, 0) });
}

if (process.argv[2] === '--concurrent-child') {
  concurrentChild(process.argv[3], process.argv[4] as FileType, process.argv[5].split(',').map(Number)).then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
