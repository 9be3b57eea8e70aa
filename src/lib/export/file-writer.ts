// One file into the customer's container: a producer's rows → parquet → staged blocks → a
// create-only commit carrying the run id and end position in its metadata. The name is reserved
// only once the file has rows (just before its first block is staged), and the settings are checked
// again just before the commit. If the name is already taken by this run (crash between commit and
// checkpoint), the file is adopted: its metadata says where it ended. Taken by anything else, the
// export stops with `file_name_taken` (reservations make that impossible for our own files).
import type { BlockBlobClient } from '@azure/storage-blob';
import { columnsFor, type FileType } from '../contract/schemas.js';
import { blobName } from '../contract/naming.js';
import { UserError } from '../platform/errors.js';
import { sasContainer } from '../platform/storage.js';
import { EXPORT_BLOCK_BYTES } from '../platform/config.js';
import { ParquetFileWriter } from '../parquet/writer.js';
import type { Integration } from '../integration/settings.js';
import { containerError } from '../integration/settings.js';
import { CreateOnlyBlob } from './create-only-blob.js';
import type { Producer } from './rows.js';

/** What a file is written under and how its name and commit are cleared. */
export interface FileTarget {
  integration: Integration;
  fileType: FileType;
  runId: string;
  /** Reserves the file's name; called once, when the first block is about to be staged. */
  reserve(): Promise<string>;
  /** Throws when the file may no longer be committed (the settings changed); called just before the commit. */
  beforeCommit(): Promise<void>;
}

export interface WrittenFile {
  name: string;
  rows: number;
  bytes: number;
  end: number | string;
  /** As the producer said (Produced); unknown for a file an earlier attempt committed. */
  complete?: boolean;
  oldestCommit?: number;
}

/** Fault seams of a file write (tests only). */
export interface FileFaults {
  afterBlockStaged?(blocks: number): void | Promise<void>;
  afterBlobCommit?(): void | Promise<void>;
}

/** Writes the file; undefined when the producer had no rows (the run is complete). */
export async function writeFile(target: FileTarget, produce: Producer, faults?: FileFaults): Promise<WrittenFile | undefined> {
  const { integration } = target;
  const customer = <T>(op: () => Promise<T>) => onCustomer(op, !!integration.sasPolicyId);
  const container = sasContainer(integration.sasUrl);
  let opened: Promise<{ name: string; client: BlockBlobClient; blob: CreateOnlyBlob }> | undefined;
  const open = () =>
    (opened ??= target.reserve().then((name) => {
      const client = container.getBlockBlobClient(blobName(integration.blobPath, name));
      return { name, client, blob: new CreateOnlyBlob(client) };
    }));
  let staged = 0;
  const sink = {
    stageBlock: async (bytes: Uint8Array) => {
      const { blob } = await open();
      await customer(() => blob.stageBlock(bytes));
      await faults?.afterBlockStaged?.(++staged);
    },
  };
  const writer = new ParquetFileWriter({ columns: columnsFor(target.fileType, integration.schemaVersion), sink, blockBytes: EXPORT_BLOCK_BYTES });
  const produced = await produce({ row: (row) => writer.write(row), columns: (columns, length) => writer.writeColumns(columns, length) });
  // No rows left (or only filtered ones, like events older than the window): the run is complete.
  if (produced.rows === 0) return undefined;
  const { bytes } = await writer.finish();
  const { name, client, blob } = await open();
  await target.beforeCommit();
  const outcome = await customer(() => blob.commit({ rows: String(produced.rows), endposition: encodePosition(produced.end), run: target.runId }));
  await faults?.afterBlobCommit?.();
  if (outcome === 'created') return { name, rows: produced.rows, bytes, end: produced.end, complete: produced.complete, oldestCommit: produced.oldestCommit };
  // A previous attempt committed this file (crash before its checkpoint): continue from where it ended.
  const props = await customer(() => client.getProperties());
  const end = props.metadata?.endposition;
  if (end === undefined || props.metadata?.run !== target.runId) throw new UserError('file_name_taken', `a blob named ${name} already exists in the container and was not written by this export run: remove it (or clear the old files of a previous sync) and the export continues`);
  return { name, rows: Number(props.metadata?.rows ?? 0), bytes: props.contentLength ?? 0, end: decodePosition(end) };
}

/** Errors of the customer's container become UserErrors saying what to fix (and never carry the URL). */
async function onCustomer<T>(op: () => Promise<T>, viaPolicy: boolean): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw containerError(e, viaPolicy);
  }
}

// Blob metadata values must be ASCII: positions (numbers or person keys) travel as base64url JSON.
const encodePosition = (p: number | string) => Buffer.from(JSON.stringify(p)).toString('base64url');
const decodePosition = (s: string) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as number | string;
