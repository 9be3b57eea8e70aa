// Parquet tests: an in-memory block sink, a temp folder for files, and one DuckDB connection per file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { BlockSink } from '../../src/lib/parquet/writer.js';

export class MemorySink implements BlockSink {
  readonly blocks: Uint8Array[] = [];
  async stageBlock(bytes: Uint8Array): Promise<void> {
    this.blocks.push(bytes);
  }
  bytes(): Buffer {
    return Buffer.concat(this.blocks);
  }
}

export interface Scratch {
  readonly db: DuckDBConnection;
  /** A new file path in the scratch folder. */
  path(): string;
}

/** Registers beforeAll/afterAll: a temp folder and a DuckDB connection, removed after the file's tests. */
export function parquetScratch(prefix: string): Scratch {
  let dir = '';
  let instance: DuckDBInstance | undefined;
  let db: DuckDBConnection | undefined;
  let n = 0;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    instance = await DuckDBInstance.create(':memory:');
    db = await instance.connect();
  });
  afterAll(() => {
    db?.closeSync();
    instance?.closeSync();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return {
    get db() {
      return db!;
    },
    path: () => join(dir, `f${n++}.parquet`),
  };
}
