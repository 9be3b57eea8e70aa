// Query the demo export with DuckDB (dev tool only):
//   node dist/src/local/query.js "select metric, count(*) from metrics group by 1"
// Downloads the parquet files of the demo container (local Azurite) to a temp folder and creates
// one view per file type (deliveries, metrics, subjects, outputs, content = delivery_contents,
// people, attributes, events) over all of that type's files.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BlobServiceClient } from '@azure/storage-blob';
import { DuckDBInstance } from '@duckdb/node-api';

export const DEMO_CONTAINER = 'demo-export';
export const DEMO_BLOB_PATH = 'exports';

/** View name → file-name token (SPEC section 3). */
const VIEWS: Record<string, string> = {
  deliveries: 'deliveries',
  metrics: 'metrics',
  subjects: 'subjects',
  outputs: 'outputs',
  content: 'delivery_contents',
  delivery_contents: 'delivery_contents',
  people: 'people',
  attributes: 'attributes',
  events: 'events',
};

export interface ExportedFile {
  name: string;
  rows: number | undefined;
  size: number;
}

/** Parquet files under `prefix` in the container, in name (= export) order. */
export async function listExport(connectionString: string, container = DEMO_CONTAINER, prefix = `${DEMO_BLOB_PATH}/`): Promise<ExportedFile[]> {
  const client = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container);
  const files: ExportedFile[] = [];
  for await (const blob of client.listBlobsFlat({ prefix, includeMetadata: true })) {
    if (!blob.name.endsWith('.parquet')) continue;
    const rows = blob.metadata?.rows;
    files.push({ name: blob.name, rows: rows === undefined ? undefined : Number(rows), size: blob.properties.contentLength ?? 0 });
  }
  return files.sort((a, b) => a.name.localeCompare(b.name));
}

export async function downloadExport(connectionString: string, dir: string, container = DEMO_CONTAINER, prefix = `${DEMO_BLOB_PATH}/`): Promise<ExportedFile[]> {
  const client = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container);
  const files = await listExport(connectionString, container, prefix);
  for (const f of files) {
    const buffer = await client.getBlobClient(f.name).downloadToBuffer();
    await writeFile(path.join(dir, path.basename(f.name)), buffer);
  }
  return files;
}

export interface QueryResult {
  columns: string[];
  rows: unknown[][];
  views: string[];
}

/** Runs `sql` over the parquet files in `dir`, with one view per file type that has files. */
export async function queryFolder(dir: string, sql: string, files: readonly ExportedFile[]): Promise<QueryResult> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const views: string[] = [];
    for (const [view, token] of Object.entries(VIEWS)) {
      // `<token>_v4_...` and legacy `<token>_<seq>`; "delivery_contents" must not match plain "deliveries" etc.
      const has = files.some((f) => new RegExp(`^${token}_(v4_)?\\d`).test(path.basename(f.name)));
      if (!has) continue;
      const glob = path.join(dir, `${token}_*.parquet`).replaceAll("'", "''");
      await connection.run(`create view "${view}" as select * from read_parquet('${glob}', union_by_name = true)`);
      views.push(view);
    }
    const reader = await connection.runAndReadAll(sql);
    return { columns: reader.columnNames(), rows: reader.getRowsJson() as unknown[][], views };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** A plain text table; long values are cut to `width` characters. */
export function formatTable(columns: readonly string[], rows: readonly unknown[][], width = 48): string {
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? 'NULL' : typeof v === 'string' ? v : JSON.stringify(v);
    const flat = s.replace(/\s+/g, ' ');
    return flat.length > width ? flat.slice(0, width - 1) + '…' : flat;
  };
  const body = rows.map((r) => r.map(cell));
  const widths = columns.map((c, i) => Math.max(c.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ').trimEnd();
  return [line([...columns]), widths.map((w) => '-'.repeat(w)).join('-+-'), ...body.map(line)].join('\n') + `\n(${rows.length} row${rows.length === 1 ? '' : 's'})`;
}

/** Downloads the demo export to a temp folder, runs the query, removes the folder. */
export async function queryDemoExport(connectionString: string, sql: string): Promise<QueryResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'demo-export-'));
  try {
    const files = await downloadExport(connectionString, dir);
    if (files.length === 0) throw new Error(`query: no parquet files under ${DEMO_CONTAINER}/${DEMO_BLOB_PATH}/ yet; run \`npm start\` and wait for the first sync`);
    return await queryFolder(dir, sql, files);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const sql = process.argv.slice(2).join(' ').trim();
  if (!sql) {
    process.stderr.write(
      'usage: node dist/src/local/query.js "<sql>"\n' +
        `views: ${Object.keys(VIEWS).join(', ')}\n` +
        'example: node dist/src/local/query.js "select metric, count(*) n from metrics group by 1 order by 2 desc"\n',
    );
    process.exitCode = 2;
    return;
  }
  const { loadSettings } = await import('./start.js');
  const { values } = loadSettings();
  const connectionString = process.env.AzureWebJobsStorage ?? values.AzureWebJobsStorage;
  if (!connectionString) throw new Error('query: AzureWebJobsStorage is not set');
  const result = await queryDemoExport(connectionString, sql);
  process.stdout.write(formatTable(result.columns, result.rows) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exitCode = 1;
  });
}
