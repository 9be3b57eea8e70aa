// A create-only block blob: bytes go out as staged blocks while the file is written, and the file
// becomes visible only when the block list is committed with If-None-Match: *. An existing blob is
// never overwritten; a crashed attempt leaves only uncommitted blocks, which Azure discards.
import { randomUUID } from 'node:crypto';
import type { BlockBlobClient } from '@azure/storage-blob';
import type { BlockSink } from '../parquet/writer.js';

export type CommitOutcome = 'created' | 'exists';

export class CreateOnlyBlob implements BlockSink {
  private readonly blockIds: string[] = [];
  /** A per-attempt prefix, so a concurrent attempt's uncommitted blocks never mix with ours. */
  private readonly attempt = randomUUID();
  bytes = 0;

  constructor(private readonly client: BlockBlobClient) {}

  async stageBlock(bytes: Uint8Array): Promise<void> {
    const id = Buffer.from(`${this.attempt}-${String(this.blockIds.length).padStart(6, '0')}`).toString('base64');
    await this.client.stageBlock(id, bytes, bytes.byteLength);
    this.blockIds.push(id);
    this.bytes += bytes.byteLength;
  }

  /** Commits the staged blocks as a new blob; 'exists' when a blob of that name is already there. */
  async commit(metadata: Record<string, string>): Promise<CommitOutcome> {
    try {
      await this.client.commitBlockList(this.blockIds, {
        conditions: { ifNoneMatch: '*' },
        metadata,
        blobHTTPHeaders: { blobContentType: 'application/vnd.apache.parquet' },
      });
      return 'created';
    } catch (e) {
      const status = (e as { statusCode?: number }).statusCode;
      if (status === 409 || status === 412) return 'exists';
      throw e;
    }
  }
}
