// Shared by the warehouse and readers tests: the real pipeline on the test Azurite (HTTP ingest →
// timer → queue → worker → customer container, through the local Functions host), exported files
// downloaded under their own names, and the two independent readers (DuckDB, parquet-wasm).
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inject } from 'vitest';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { startHost, type Host } from '../../src/local/host.js';
import { FILE_TYPES, SCHEMAS, type FileType } from '../../src/lib/contract/schemas.js';
import { customerContainer, type CustomerContainer } from './container.js';
import { TEST_KEY, TEST_PREFIX, freshWorkspace } from './env.js';

export type Rec = Record<string, unknown>;

export interface Pipeline {
  readonly ws: number;
  readonly host: Host;
  readonly container: CustomerContainer;
  /** POST /ingest/{name}; throws unless the whole batch is accepted. */
  ingest(name: string, records: Rec[]): Promise<void>;
  /** PUT the integration (all 8 file types) on the test container under `blobPath`. */
  connect(blobPath: string): Promise<void>;
  /** One timer tick, then wait until every export it fanned out is done. */
  sync(): Promise<void>;
  /** Exported parquet blob names under `blobPath/`, in listing (= sequence) order. */
  files(blobPath: string): Promise<string[]>;
  /** Downloads blobs into `dir` under their own file names (no blob path); returns the local paths. */
  download(names: string[], dir: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** Starts the app in the local host with its own export queue; `settings` override app settings. */
export async function startPipeline(settings: Record<string, string> = {}): Promise<Pipeline> {
  Object.assign(process.env, {
    AzureWebJobsStorage: inject('storageConnectionString'),
    SAS_ENCRYPTION_KEY: TEST_KEY,
    ALLOW_EMULATOR_SAS_URLS: 'true', // the customer containers are on Azurite (path-style loopback URLs)
    STORAGE_PREFIX: TEST_PREFIX,
    EXPORT_QUEUE_NAME: `wh-${process.pid}-${Date.now().toString(36)}`,
    EXPORT_SCHEDULE: '0 0 0 1 1 *', // the test ticks the timer itself
    ...settings,
  });
  const host = await startHost({
    entry: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
    port: 0,
    hostJson: { version: '2.0', extensions: { queues: { batchSize: 8, maxPollingInterval: '00:00:00.200', visibilityTimeout: '00:00:00', maxDequeueCount: 5 } } },
    log: () => undefined,
  });
  const container = await customerContainer();
  const ws = freshWorkspace();
  const call = async (method: string, route: string, body: unknown) => {
    const r = await fetch(`${host.url}/api${route}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, text: await r.text() };
  };
  return {
    ws,
    host,
    container,
    async ingest(name, records) {
      const r = await call('POST', `/workspaces/${ws}/ingest/${name}`, records);
      if (r.status !== 202) throw new Error(`ingest ${name}: ${r.status} ${r.text}`);
    },
    async connect(blobPath) {
      const r = await call('PUT', `/workspaces/${ws}/integration`, { sasUrl: container.sasUrl, blobPath, files: [...FILE_TYPES] });
      if (r.status !== 200 && r.status !== 201) throw new Error(`integration: ${r.status} ${r.text}`);
    },
    async sync() {
      await host.invoke('exportTimer');
      await host.whenIdle({ timeoutMs: 60_000 });
    },
    async files(blobPath) {
      return (await container.list(`${blobPath}/`)).filter((n) => n.endsWith('.parquet'));
    },
    async download(names, dir) {
      mkdirSync(dir, { recursive: true });
      return Promise.all(
        names.map(async (n) => {
          const local = path.join(dir, path.posix.basename(n));
          await container.client.getBlockBlobClient(n).downloadToFile(local);
          return local;
        }),
      );
    },
    stop: () => host.stop(),
  };
}

export const tempDir = (prefix: string) => mkdtempSync(path.join(tmpdir(), prefix));

/** `<name>_v4_<ws>_` — the prefix of every v4 file of a type (the initial metrics parts included). */
export const filePrefix = (fileType: FileType, ws: number) => `${SCHEMAS[fileType].name}_v4_${ws}_`;

// ---------------------------------------------------------------------------------------------
// DuckDB

/** Runs one or more statements on a connection; rows of the last one as JS values. */
export async function duckRows(connection: DuckDBConnection, sql: string): Promise<Rec[]> {
  const reader = await connection.runAndReadAll(sql);
  return reader.getRowObjectsJS() as Rec[];
}

/** A DuckDB database (a file path or ':memory:') and one connection; close() releases both. */
export async function duckDatabase(file = ':memory:') {
  const instance = await DuckDBInstance.create(file);
  const connection = await instance.connect();
  return {
    connection,
    rows: (sql: string) => duckRows(connection, sql),
    close() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// parquet-wasm (arrow-rs compiled to WebAssembly) + apache-arrow to decode the Arrow IPC it returns

export interface ArrowReader {
  /** parquet-wasm and apache-arrow versions actually loaded. */
  versions: { parquetWasm: string; apacheArrow: string };
  /** Arrow schema of the file: name, Arrow type as text (e.g. `Timestamp<MILLISECOND, UTC>`), nullable. */
  schema(bytes: Uint8Array): { name: string; type: string; nullable: boolean }[];
  /** Every row as plain JS values (INT64 → bigint, timestamps → epoch ms, strings, booleans, null). */
  rows(bytes: Uint8Array): Rec[];
}

interface ParquetWasmModule {
  readParquet(bytes: Uint8Array): { intoIPCStream(): Uint8Array };
}
interface ArrowTableLike {
  schema: { fields: { name: string; type: { toString(): string }; nullable: boolean }[] };
  toArray(): { toJSON(): Rec }[];
}
interface ApacheArrowModule {
  tableFromIPC(bytes: Uint8Array): ArrowTableLike;
}

/**
 * Loads parquet-wasm (node build) and apache-arrow: from the repo's dependencies, or else from the
 * folder named by PARQUET_WASM_DIR (where both are installed, e.g. `npm install parquet-wasm apache-arrow`
 * in /tmp/pw). Resolves with the reason when neither works, so the caller can skip with it.
 */
export async function loadParquetWasm(): Promise<ArrowReader | { unavailable: string }> {
  // Specifiers in variables: type-checking must not depend on the packages being installed.
  const pwName = 'parquet-wasm';
  const arrowName = 'apache-arrow';
  let pw: ParquetWasmModule;
  let arrow: ApacheArrowModule;
  let from: (name: string) => string;
  try {
    pw = (await import(pwName)) as ParquetWasmModule;
    arrow = (await import(arrowName)) as ApacheArrowModule;
    const require = createRequire(import.meta.url);
    from = (name) => require.resolve(name);
  } catch (first) {
    const dir = process.env.PARQUET_WASM_DIR;
    if (!dir) return { unavailable: `import('parquet-wasm') / import('apache-arrow') failed (${(first as Error).message.split('\n')[0]}); add them as devDependencies or set PARQUET_WASM_DIR` };
    try {
      const require = createRequire(path.join(path.resolve(dir), 'package.json'));
      from = (name) => require.resolve(name);
      pw = (await import(pathToFileURL(from(pwName)).href)) as ParquetWasmModule;
      arrow = (await import(pathToFileURL(from(arrowName)).href)) as ApacheArrowModule;
    } catch (second) {
      return { unavailable: `parquet-wasm / apache-arrow not loadable from PARQUET_WASM_DIR=${dir}: ${(second as Error).message.split('\n')[0]}` };
    }
  }
  const version = (name: string) => {
    // <pkg>/.../entry.js → walk up to the package.json whose name is the package.
    for (let d = path.dirname(from(name)); d !== path.dirname(d); d = path.dirname(d)) {
      const p = path.join(d, 'package.json');
      if (existsSync(p)) {
        const json = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
        if (json.name === name) return json.version ?? '?';
      }
    }
    return '?';
  };
  const table = (bytes: Uint8Array) => arrow.tableFromIPC(pw.readParquet(bytes).intoIPCStream());
  return {
    versions: { parquetWasm: version(pwName), apacheArrow: version(arrowName) },
    schema: (bytes) => table(bytes).schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable })),
    rows: (bytes) => table(bytes).toArray().map((r) => ({ ...r.toJSON() })),
  };
}

// ---------------------------------------------------------------------------------------------
// What the writer actually put in a file: page types and encodings, from the page headers

export interface PageCensus {
  /** Page type → number of pages (DATA_PAGE, DATA_PAGE_V2, DICTIONARY_PAGE). */
  pages: Record<string, number>;
  /** Data page encodings seen (PLAIN, PLAIN_DICTIONARY, RLE_DICTIONARY, ...). */
  encodings: string[];
  codecs: string[];
}

/** Walks every column chunk's page headers (hyparquet's thrift reader; only headers are decoded). */
export async function pageCensus(bytes: Uint8Array): Promise<PageCensus> {
  const { parquetMetadata } = await import('hyparquet');
  const { parquetHeader } = await import('hyparquet/src/column.js');
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const view = new DataView(buffer);
  const pages: Record<string, number> = {};
  const encodings = new Set<string>();
  const codecs = new Set<string>();
  for (const group of parquetMetadata(buffer).row_groups) {
    for (const chunk of group.columns) {
      const meta = chunk.meta_data!;
      codecs.add(meta.codec);
      const start = Number(meta.dictionary_page_offset ?? meta.data_page_offset);
      const end = start + Number(meta.total_compressed_size);
      const reader = { view, offset: start };
      while (reader.offset < end) {
        const header = parquetHeader(reader);
        pages[header.type] = (pages[header.type] ?? 0) + 1;
        const encoding = header.data_page_header?.encoding ?? header.data_page_header_v2?.encoding;
        if (encoding) encodings.add(encoding);
        reader.offset += header.compressed_page_size;
      }
    }
  }
  return { pages, encodings: [...encodings].sort(), codecs: [...codecs].sort() };
}
