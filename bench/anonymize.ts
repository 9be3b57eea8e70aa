// Anonymization cost (SPEC section 4) on a real Azurite: a workspace with G people deleted before the
// first sync, an initial deliveries sync and an initial content sync of rows that belong partly to them.
// Reports time per sync, the heap peak, and checks the files read back with DuckDB.
//   npx tsx bench/anonymize.ts [gone=2000,20000] [rows=20000]
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { DuckDBInstance } from '@duckdb/node-api';
import { startAzurite } from '../src/local/azurite.js';
import { benchServices, customerSas } from './pipeline.js';
import type { FileType } from '../src/lib/contract/schemas.js';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1) ?? fallback;
const goneCounts = arg('gone', '2000,20000').split(',').map(Number);
const rows = Number(arg('rows', '20000'));

async function scenario(connectionString: string, ws: number, gone: number) {
  const services = benchServices(connectionString, { EXPORT_MAX_ROWS_PER_FILE: '5000' });
  await services.storage.ready();
  const sas = await customerSas(connectionString, `anon-bench-${ws}`);
  await services.integrations.put(ws, { sasUrl: sas, files: ['deliveries', 'content'] });
  const living = 1000;
  const person = (i: number) => (i % 4 === 0 ? `gone_${i % gone}` : `live_${i % living}`);
  for (let i = 0; i < gone; i += 1000) {
    await services.ingest.ingest(ws, 'people', Array.from({ length: Math.min(1000, gone - i) }, (_, j) => ({ internal_customer_id: `gone_${i + j}`, customer_id: `c${i + j}`, email_addr: `now${i + j}@example.com`, deleted: true })));
  }
  await services.ingest.ingest(ws, 'people', Array.from({ length: living }, (_, i) => ({ internal_customer_id: `live_${i}`, customer_id: `l${i}`, email_addr: `shared${i}@example.com` })));
  for (let i = 0; i < rows; i += 5000) {
    const n = Math.min(5000, rows - i);
    await services.ingest.ingest(ws, 'deliveries', Array.from({ length: n }, (_, j) => ({ delivery_id: `d${i + j}`, internal_customer_id: person(i + j), delivery_type: 'email', created_at: new Date(0).toISOString() })));
    await services.ingest.ingest(ws, 'content', Array.from({ length: n }, (_, j) => ({ delivery_id: `d${i + j}`, recipient: (i + j) % 2 ? `+1555${i + j}` : `shared${(i + j) % living}@example.com`, body: 'x'.repeat(200) })));
  }
  const out: Record<string, number> = {};
  for (const fileType of ['deliveries', 'content'] as FileType[]) {
    const exporter = services.exporter();
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 20);
    const t0 = performance.now();
    for (let s = 'continued'; s === 'continued'; ) s = (await exporter.run({ workspaceId: ws, fileType }, 'bench')).status;
    out[`${fileType}Seconds`] = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    out[`${fileType}HeapPeakMiB`] = peak / 2 ** 20;
  }
  // Read back: exactly the rows of gone people are anonymized.
  const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(`anon-bench-${ws}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'anon-bench-'));
  for await (const b of container.listBlobsFlat()) writeFileSync(path.join(dir, b.name), await container.getBlockBlobClient(b.name).downloadToBuffer());
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  const q = async (sql: string) => (await db.runAndReadAll(sql)).getRowObjectsJS()[0];
  const expectedGone = Array.from({ length: rows }, (_, i) => i % 4 === 0).filter(Boolean).length;
  const del = await q(`SELECT count(*) FILTER (internal_customer_id IS NULL) AS anon, count(*) AS n FROM '${dir}/deliveries_*.parquet'`);
  const con = await q(`SELECT count(*) FILTER (recipient IS NULL) AS anon, count(*) AS n FROM '${dir}/delivery_contents_*.parquet'`);
  out.deliveriesAnonymized = Number(del.anon);
  out.contentAnonymized = Number(con.anon);
  if (Number(del.anon) !== expectedGone || Number(con.anon) !== expectedGone) throw new Error(`expected ${expectedGone} anonymized rows of each type, got ${del.anon} / ${con.anon}`);
  return out;
}

const azurite = await startAzurite();
try {
  let ws = 9_100_000;
  for (const gone of goneCounts) console.log(JSON.stringify({ gone, rows, ...(await scenario(azurite.connectionString, ws++, gone)) }));
} finally {
  await azurite.stop();
}
