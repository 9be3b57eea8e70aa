// Pending pairs: the (workspace, file type) pairs that may have work for the exporter, so the timer
// reads these markers instead of every integration. A marker is a hint that errs on the side of work:
// ingest and settings changes write it before and after their commit, the export job deletes it only
// after a complete run and only if nobody marked it since (its ETag), then re-checks the head.
// Table `exportpending`, PartitionKey = shard of the workspace (fixed count: a shard message lists
// one partition), RowKey = `<workspaceId>|<fileType>`.
import { odata, TableTransaction, type TableClient } from '@azure/data-tables';
import type { AppStorage } from '../platform/storage.js';
import { TABLES } from '../platform/storage.js';
import { isConflict, isNotFound } from '../platform/errors.js';
import { FILE_TYPES, type FileType } from '../contract/schemas.js';

/** Shards of the marker table; fixed, since a marker is found only in its own shard. */
export const PENDING_SHARDS = 32;
/** Markers one fan-out invocation expands: a Table query page, so no invocation grows with the shard. */
export const PENDING_PAGE = 1000;

export interface PendingPair {
  workspaceId: number;
  fileType: FileType;
}

export const shardOf = (workspaceId: number): number => workspaceId % PENDING_SHARDS;
const partition = (shard: number) => `s${String(shard).padStart(3, '0')}`;

export class PendingPairs {
  constructor(private readonly storage: AppStorage) {}

  private get table(): TableClient {
    return this.storage.table(TABLES.pending);
  }

  /** Marks pairs (a new ETag each time, so a concurrent clear by an older reader fails). */
  async mark(workspaceId: number, fileTypes: readonly FileType[]): Promise<void> {
    if (fileTypes.length === 0) return;
    const tx = new TableTransaction();
    for (const fileType of new Set(fileTypes)) tx.upsertEntity({ partitionKey: partition(shardOf(workspaceId)), rowKey: `${workspaceId}|${fileType}`, markedAt: Date.now() }, 'Replace');
    await this.table.submitTransaction(tx.actions);
  }

  /** Runs `commit` between two marks: a crash before it leaves a false positive, never a missed change. */
  async around<T>(workspaceId: number, fileTypes: readonly FileType[], commit: () => Promise<T>): Promise<T> {
    await this.mark(workspaceId, fileTypes);
    const result = await commit();
    await this.mark(workspaceId, fileTypes);
    return result;
  }

  /** The marker's ETag, or undefined when the pair is not marked. */
  async etag(pair: PendingPair): Promise<string | undefined> {
    try {
      return (await this.table.getEntity(partition(shardOf(pair.workspaceId)), `${pair.workspaceId}|${pair.fileType}`, { queryOptions: { select: ['PartitionKey'] } })).etag;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Deletes the marker if it is still the one read (ETag): a mark written since stays. */
  async clear(pair: PendingPair, etag: string): Promise<boolean> {
    try {
      await this.table.deleteEntity(partition(shardOf(pair.workspaceId)), `${pair.workspaceId}|${pair.fileType}`, { etag });
      return true;
    } catch (e) {
      if (isNotFound(e) || isConflict(e)) return false;
      throw e;
    }
  }

  /**
   * About `size` marked pairs of a shard, from the first RowKey after `after` on (`''`: the start);
   * `next` is the RowKey the rest starts after, when there is more.
   */
  async page(shard: number, after: string, size = PENDING_PAGE): Promise<{ pairs: PendingPair[]; next?: string }> {
    const filter = after ? odata`PartitionKey eq ${partition(shard)} and RowKey gt ${after}` : odata`PartitionKey eq ${partition(shard)}`;
    const pairs: PendingPair[] = [];
    let read = 0;
    let last = after;
    // Azure may answer a page short (even empty) with a continuation: read on until `size` markers.
    for await (const page of this.table.listEntities({ queryOptions: { filter, select: ['RowKey'] } }).byPage({ maxPageSize: size })) {
      for (const e of page) {
        read++;
        last = String(e.rowKey);
        const pair = parsePair(last);
        if (pair) pairs.push(pair);
      }
      if (read >= size) return { pairs, next: page.continuationToken ? last : undefined };
    }
    return { pairs };
  }
}

function parsePair(rowKey: string): PendingPair | undefined {
  const [ws, fileType] = rowKey.split('|');
  return FILE_TYPES.includes(fileType as FileType) ? { workspaceId: Number(ws), fileType: fileType as FileType } : undefined;
}
