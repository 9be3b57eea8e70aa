// source/: the write side. ingest.ts validates and appends what the platform sends; the source log
// (this file) keeps it per (workspace, file type) in seq_num order; people-state.ts turns people
// records into real attribute changes. Nothing here knows about exports.
//
// The source log: what the ingest API accepted, per (workspace, file type), in seq_num order.
// Segments (one blob per accepted request and file type) become visible only when their index entity
// is inserted in the same entity-group transaction that advances the ETag-guarded head: seq_num
// allocation and visibility are one atomic step (see docs/ARCHITECTURE.md).
import { randomUUID } from 'node:crypto';
import { TableTransaction, type TransactionAction } from '@azure/data-tables';
import type { AppStorage } from '../platform/storage.js';
import { int64, num, TABLES } from '../platform/storage.js';
import { pad20 } from '../contract/naming.js';
import type { FileType } from '../contract/schemas.js';
import { isConflict, isNotFound, SystemError } from '../platform/errors.js';
import { PendingPairs } from './pending.js';
import { decodeRest, decodeSegment, encodeSegment, recordAt, type DecodeOptions, type SegmentBatch, type SourceRecord } from './segment.js';

export type { SourceRecord };

/** Records afterSeq < seq_num <= throughSeq of one segment: rows [start, end) of `batch`, row i is seq_num firstSeq + i. */
export interface SegmentSlice {
  /** The segment (as listed in the index): a later read of the same range can be given it (SliceOptions.segments). */
  segment: SegmentRef;
  firstSeq: number;
  batch: SegmentBatch;
  start: number;
  end: number;
}

/** How slices() reads. */
export interface SliceOptions {
  /** As decodeSegment's (`utf8`: string columns as their bytes). */
  decode?: DecodeOptions;
  /** Plan reads: whether to download this segment whole instead of its plan section alone (asked once per segment, in order). */
  whole?(segment: { bytes: number; planBytes: number }): boolean;
  /**
   * A segment the caller already holds from a plan read (decoded the same way), by its first
   * sequence: whole, it is not downloaded again; its plan section only, the rest of it is.
   */
  plan?(firstSeq: number): SegmentBatch | undefined;
  /** The range's segments as an earlier read of it listed them (in order): read without listing the index again. */
  segments?: readonly SegmentRef[];
}

export interface Head {
  fileType: FileType;
  /** Highest visible seq_num (0 = empty). */
  seq: number;
  /** people/attributes only: the seq through which people-state.ts has applied this log. */
  stateSeq: number;
  /**
   * Every segment indexed only by firstSeq (`seg|`, by earlier versions) starts below this seq; absent
   * when such a writer may have committed last (it replaces the head without it).
   */
  lastSeqKeyedFrom?: number;
  /** Undefined when the head entity does not exist yet. */
  etag?: string;
}

export interface AppendPart {
  fileType: FileType;
  records: SourceRecord[];
}

export interface Appended {
  fileType: FileType;
  firstSeq: number;
  lastSeq: number;
  /** The head's ETag after the commit (also given, with an empty range, for an unchanged `expected` head). */
  headEtag?: string;
  /** The head as the commit wrote it, with that ETag. */
  head?: Head;
}

/** Thrown by append() when `expected` heads are no longer current: the caller re-reads and retries. */
export class HeadMoved extends Error {
  constructor() {
    super('source head moved');
  }
}

interface IndexEntity {
  firstSeq: bigint;
  lastSeq: bigint;
  blob: string;
  /** Length of the segment's plan section (segment.ts), and of the whole blob; absent for earlier versions' segments. */
  planBytes?: number;
  bytes?: number;
}

/** Segments downloaded ahead of the one being consumed: at most this many, and this many bytes once one is. */
const READ_AHEAD = 8;
const READ_AHEAD_BYTES = 1024 * 1024;

const headKey = (fileType: FileType) => `head|${fileType}`;
/** Index entities keyed by lastSeq: the segments after a cursor are one key range. */
const segPrefix = (fileType: FileType) => `segl|${fileType}|`;
/** Earlier versions' index entities, keyed by firstSeq: read only below the head's lastSeqKeyedFrom. */
const legacySegPrefix = (fileType: FileType) => `seg|${fileType}|`;
type HeadEntity = { seq: bigint; stateSeq?: bigint; lastSeqKeyedFrom?: bigint };

/** (workspace, file type) pairs whose keyed-index statement a SourceLog remembers (the oldest forgotten first). */
const KEYED_FROM_REMEMBERED = 10_000;

export class SourceLog {
  private readonly pending: PendingPairs;
  /**
   * What a head said about earlier versions' segments, per (workspace, file type): every segment
   * indexed only by firstSeq starts below `from`, among the segments through `through` (the head's
   * seq then). Segments never change, so the statement stays true for that range whatever a later
   * head says: reads within it skip the head read (legacySegments).
   */
  private readonly keyedFrom = new Map<string, { from: number; through: number }>();

  constructor(
    private readonly storage: AppStorage,
    /** Fault seam for tests: between the mark and the commit of an append. */
    private readonly faults?: { beforeCommit?(): void | Promise<void> },
  ) {
    this.pending = new PendingPairs(storage);
  }

  private get index() {
    return this.storage.table(TABLES.sourceIndex);
  }

  async head(workspaceId: number, fileType: FileType): Promise<Head> {
    try {
      const e = await this.index.getEntity<HeadEntity>(String(workspaceId), headKey(fileType));
      const lastSeqKeyedFrom = e.lastSeqKeyedFrom === undefined ? undefined : num(e.lastSeqKeyedFrom);
      const seq = num(e.seq);
      if (lastSeqKeyedFrom !== undefined) this.rememberKeyedFrom(workspaceId, fileType, lastSeqKeyedFrom, seq);
      return { fileType, seq, stateSeq: num(e.stateSeq), lastSeqKeyedFrom, etag: e.etag };
    } catch (e) {
      if (isNotFound(e)) return { fileType, seq: 0, stateSeq: 0 };
      throw e;
    }
  }

  /**
   * Rewrites the head unchanged, so that a commit in flight (it read the head before marking its pair)
   * conflicts and retries with a new mark; returns the head. The export job calls it after clearing a marker.
   */
  async touchHead(workspaceId: number, fileType: FileType): Promise<Head> {
    for (let attempt = 0; ; attempt++) {
      const head = await this.head(workspaceId, fileType);
      const key = { partitionKey: String(workspaceId), rowKey: headKey(fileType) };
      try {
        if (head.etag) await this.index.updateEntity(key, 'Merge', { etag: head.etag });
        else await this.index.createEntity({ ...key, seq: int64(0), stateSeq: int64(0) });
        return head;
      } catch (e) {
        if (!isConflict(e)) throw e;
        await backoff(attempt);
      }
    }
  }

  /**
   * Appends records of one or more file types of a workspace, all or nothing.
   * With `expected`, commits only if those heads are unchanged (else throws HeadMoved);
   * without, retries the commit until it wins (segment blobs are written once and carry no seq_num).
   * `also` gives, per attempt, more actions on the workspace's partition that commit in the same
   * transaction (an idempotency record); it may throw to stop the append.
   */
  async append(workspaceId: number, parts: AppendPart[], expected?: Head[], also?: () => Promise<TransactionAction[]>): Promise<Appended[]> {
    const nonEmpty = parts.filter((p) => p.records.length > 0);
    if (nonEmpty.length === 0 && !also) return [];
    // The exporter finds changed pairs by their markers (pending.ts): marked after the heads were
    // read and before the commit, which is guarded by those heads' ETags (see touchHead). The first
    // attempt's heads and mark go while the segments are written (independent requests).
    const headsAndMark = async () => {
      const heads = expected ?? (await Promise.all(nonEmpty.map((p) => this.head(workspaceId, p.fileType))));
      await this.pending.mark(workspaceId, nonEmpty.map((p) => p.fileType));
      return heads;
    };
    const [segments, firstHeads] = await Promise.all([Promise.all(nonEmpty.map((p) => this.writeSegment(workspaceId, p))), headsAndMark()]);
    for (let attempt = 0; ; attempt++) {
      const heads = attempt === 0 ? firstHeads : await headsAndMark();
      const tx = new TableTransaction();
      const appended: Appended[] = [];
      const written = new Map<FileType, Omit<Head, 'etag'>>();
      for (const [i, part] of nonEmpty.entries()) {
        const head = heads.find((h) => h.fileType === part.fileType);
        if (!head) throw new SystemError('source_head_missing', `no expected head for ${part.fileType}`);
        const firstSeq = head.seq + 1;
        const lastSeq = head.seq + part.records.length;
        const pk = String(workspaceId);
        const next = { fileType: part.fileType, seq: lastSeq, stateSeq: head.stateSeq, lastSeqKeyedFrom: head.lastSeqKeyedFrom ?? firstSeq };
        written.set(part.fileType, next);
        const headEntity = headEntityOf(pk, next);
        if (head.etag) tx.updateEntity(headEntity, 'Replace', { etag: head.etag });
        else tx.createEntity(headEntity);
        const segment = { partitionKey: pk, firstSeq: int64(firstSeq), lastSeq: int64(lastSeq), ...segments[i] };
        tx.createEntity({ ...segment, rowKey: segPrefix(part.fileType) + pad20(lastSeq) });
        // Also keyed by firstSeq while a previous version may still read (rolling deploy): it knows only `seg|`.
        tx.createEntity({ ...segment, rowKey: legacySegPrefix(part.fileType) + pad20(firstSeq) });
        appended.push({ fileType: part.fileType, firstSeq, lastSeq });
      }
      // Heads of the untouched expected file types are asserted unchanged too (people ingest reads both).
      for (const head of expected ?? []) {
        if (nonEmpty.some((p) => p.fileType === head.fileType)) continue;
        appended.push({ fileType: head.fileType, firstSeq: head.seq + 1, lastSeq: head.seq });
        const pk = String(workspaceId);
        const next = head.etag ? { fileType: head.fileType, seq: head.seq, stateSeq: head.stateSeq, lastSeqKeyedFrom: head.lastSeqKeyedFrom } : { fileType: head.fileType, seq: 0, stateSeq: 0, lastSeqKeyedFrom: 1 };
        written.set(head.fileType, next);
        if (head.etag) tx.updateEntity(headEntityOf(pk, next), 'Replace', { etag: head.etag });
        else tx.createEntity(headEntityOf(pk, next));
      }
      if (also) tx.actions.push(...(await also()));
      await this.faults?.beforeCommit?.();
      try {
        const response = await this.index.submitTransaction(tx.actions);
        // Sub-responses come in the order of the actions (they carry no row key).
        const etagOf = (fileType: FileType) => response.subResponses[tx.actions.findIndex((a) => a[1].rowKey === headKey(fileType))]?.etag;
        return appended.map((a) => ({ ...a, headEtag: etagOf(a.fileType), head: { ...written.get(a.fileType)!, etag: etagOf(a.fileType) } }));
      } catch (e) {
        // With `also`, an entity it expected may have been deleted meanwhile (404): a race like a conflict.
        if (!isConflict(e) && !(also && isNotFound(e))) throw e;
        if (expected) throw new HeadMoved();
        await backoff(attempt);
      }
    }
  }

  /** Records with afterSeq < seq_num <= throughSeq, in seq_num order (with 'plan', only their plan columns: segment.ts). */
  async *read(workspaceId: number, fileType: FileType, afterSeq: number, throughSeq: number, part: 'plan' | 'all' = 'all'): AsyncGenerator<{ seq: number; record: SourceRecord }> {
    for await (const { firstSeq, batch, start, end } of this.slices(workspaceId, fileType, afterSeq, throughSeq, part)) {
      for (let i = start; i < end; i++) yield { seq: firstSeq + i, record: recordAt(batch, i) };
    }
  }

  /**
   * The records afterSeq < seq_num <= throughSeq by segment, in seq_num order, by column: every column
   * ('all'), or only the plan columns and sizes ('plan': a range read of each segment's plan section);
   * SliceOptions: segments read whole by a plan, and those a plan read is not repeated for.
   */
  async *slices(workspaceId: number, fileType: FileType, afterSeq: number, throughSeq: number, part: 'plan' | 'all', options: SliceOptions = {}): AsyncGenerator<SegmentSlice> {
    if (throughSeq <= afterSeq) return;
    const segments = options.segments ? fromList(options.segments) : this.segments(workspaceId, fileType, afterSeq, throughSeq);
    // Download ahead while the caller consumes the current segment: up to a few segments and a
    // byte budget (content segments can be large), and always at least the next one.
    const ahead: { segment: SegmentRef; bytes: number; batch: Promise<SegmentBatch> }[] = [];
    let aheadBytes = 0;
    let listed = false;
    const fill = async () => {
      while (!listed && (ahead.length === 0 || (ahead.length < READ_AHEAD && aheadBytes < READ_AHEAD_BYTES))) {
        const next = await segments.next();
        if (next.done) listed = true;
        else {
          const segment = next.value;
          const plan = part === 'all' ? options.plan?.(segment.firstSeq) : undefined;
          const { planBytes: planSize, bytes: size } = segment;
          // Only segments of this version say their size, and have a plan section to read alone.
          const read = part === 'plan' && planSize !== undefined && size !== undefined && options.whole?.({ bytes: size, planBytes: planSize }) ? 'all' : part;
          const batch = plan?.whole ? Promise.resolve(plan) : plan ? this.loadRest(segment, plan, options.decode) : this.loadSegment(segment, read, options.decode);
          batch.catch(() => undefined);
          const bytes = plan?.whole ? 0 : ((read === 'plan' ? planSize : size) ?? READ_AHEAD_BYTES);
          ahead.push({ segment, bytes, batch });
          aheadBytes += bytes;
        }
      }
    };
    for (;;) {
      await fill();
      const current = ahead.shift();
      if (!current) return;
      aheadBytes -= current.bytes;
      const batch = await current.batch;
      const { firstSeq } = current.segment;
      const start = Math.max(0, afterSeq + 1 - firstSeq);
      const end = Math.min(batch.rows, throughSeq + 1 - firstSeq);
      if (start < end) yield { segment: current.segment, firstSeq, batch, start, end };
      if (end < batch.rows) return;
    }
  }

  /**
   * The segments holding afterSeq < seq_num <= throughSeq, in order: a key range from the cursor
   * (lastSeq > afterSeq), stopped at the first segment past throughSeq. Earlier versions' entities
   * are merged in (a segment indexed both ways once) only when the range starts below the head's
   * lastSeqKeyedFrom.
   */
  private async *segments(workspaceId: number, fileType: FileType, afterSeq: number, throughSeq: number): AsyncGenerator<SegmentRef> {
    const legacy = await this.legacySegments(workspaceId, fileType, afterSeq, throughSeq);
    let next = 0;
    let lastFirstSeq = 0;
    const keyed = this.index.listEntities<IndexEntity>({ queryOptions: { filter: this.afterFilter(workspaceId, fileType, afterSeq) } });
    for await (const e of keyed) {
      const segment = segmentRef(e);
      for (; next < legacy.length && legacy[next].firstSeq < segment.firstSeq; next++) yield legacy[next];
      if (next < legacy.length && legacy[next].firstSeq === segment.firstSeq) next++;
      if (segment.firstSeq > throughSeq) return;
      lastFirstSeq = segment.firstSeq;
      yield segment;
    }
    for (; next < legacy.length; next++) if (legacy[next].firstSeq > lastFirstSeq) yield legacy[next];
  }

  private rememberKeyedFrom(workspaceId: number, fileType: FileType, from: number, through: number): void {
    const key = `${workspaceId}|${fileType}`;
    const known = this.keyedFrom.get(key);
    if (known && known.from === from && known.through >= through) return;
    this.keyedFrom.delete(key); // re-inserted last: the map forgets the least recently learnt first
    this.keyedFrom.set(key, { from, through: known?.from === from ? Math.max(known.through, through) : through });
    if (this.keyedFrom.size > KEYED_FROM_REMEMBERED) this.keyedFrom.delete(this.keyedFrom.keys().next().value!);
  }

  /** lastSeq-keyed index entities with lastSeq > afterSeq: a pure key range. */
  private afterFilter(workspaceId: number, fileType: FileType, afterSeq: number): string {
    return `PartitionKey eq '${workspaceId}' and RowKey gt '${segPrefix(fileType)}${pad20(afterSeq)}' and RowKey lt '${segPrefix(fileType)}~'`;
  }

  /**
   * firstSeq-keyed segments overlapping the range, or none when the head says every segment indexed
   * only that way ends at or before afterSeq: once a cursor is past lastSeqKeyedFrom its reads never
   * scan them (the scan, on a non-key filter, runs only for reads starting in the older history).
   */
  private async legacySegments(workspaceId: number, fileType: FileType, afterSeq: number, throughSeq: number): Promise<SegmentRef[]> {
    const known = this.keyedFrom.get(`${workspaceId}|${fileType}`);
    if (known && afterSeq + 1 >= known.from && throughSeq <= known.through) return [];
    const head = await this.head(workspaceId, fileType);
    // Every seq <= head.seq is covered by the head's statement; a range past it is read both ways.
    if (head.lastSeqKeyedFrom !== undefined && afterSeq + 1 >= head.lastSeqKeyedFrom && throughSeq <= head.seq) return [];
    const filter =
      `PartitionKey eq '${workspaceId}' and RowKey gt '${legacySegPrefix(fileType)}' and RowKey le '${legacySegPrefix(fileType)}${pad20(throughSeq)}'` +
      ` and lastSeq gt ${afterSeq}L`;
    const out: SegmentRef[] = [];
    for await (const e of this.index.listEntities<IndexEntity>({ queryOptions: { filter } })) out.push(segmentRef(e));
    return out;
  }

  /** When the oldest record after `afterSeq` was committed (ms), or undefined if there is none. */
  async oldestCommitAfter(workspaceId: number, fileType: FileType, afterSeq: number): Promise<number | undefined> {
    const first = async (filter: string) => {
      for await (const e of this.index.listEntities<IndexEntity>({ queryOptions: { filter } })) return e;
      return undefined;
    };
    const head = await this.head(workspaceId, fileType);
    if (head.seq <= afterSeq) return undefined;
    const legacy =
      head.lastSeqKeyedFrom === undefined || afterSeq + 1 < head.lastSeqKeyedFrom
        ? await first(`PartitionKey eq '${workspaceId}' and RowKey gt '${legacySegPrefix(fileType)}' and RowKey lt '${legacySegPrefix(fileType)}~' and lastSeq gt ${afterSeq}L`)
        : undefined;
    const keyed = await first(this.afterFilter(workspaceId, fileType, afterSeq));
    const oldest = legacy && (!keyed || num(legacy.firstSeq) < num(keyed.firstSeq)) ? legacy : keyed;
    return oldest?.timestamp ? Date.parse(oldest.timestamp) : undefined;
  }

  /** A segment's records: all of them, or only its plan section ('plan'). */
  async loadSegment(segment: Pick<SegmentRef, 'blob' | 'planBytes' | 'bytes'>, part: 'plan' | 'all' = 'all', decode: DecodeOptions = {}): Promise<SegmentBatch> {
    const length = part === 'plan' && segment.planBytes !== undefined ? segment.planBytes : segment.bytes;
    return decodeSegment(await this.download(segment.blob, 0, length), segment.planBytes, decode);
  }

  /** A segment's records, its plan section given (decoded): a range read of the rest. */
  private async loadRest(segment: Pick<SegmentRef, 'blob' | 'planBytes' | 'bytes'>, plan: SegmentBatch, decode: DecodeOptions = {}): Promise<SegmentBatch> {
    const { planBytes, bytes } = segment;
    if (planBytes === undefined || bytes === undefined) return this.loadSegment(segment, 'all', decode);
    if (bytes === planBytes) return plan;
    const rest = await this.download(segment.blob, planBytes, bytes - planBytes);
    return decodeRest(plan, rest, decode);
  }

  /**
   * Bytes [offset, offset + count) of a source blob (to its end without a count), in one request:
   * the body's chunks copied into one buffer (downloadToBuffer zero-fills its buffer, copies each
   * chunk by Buffer.fill, and without a count asks for the blob's properties first). The SDK's
   * stream resumes a broken body (5 retries).
   */
  private async download(blob: string, offset: number, count?: number): Promise<Buffer> {
    const response = await this.storage.sourceContainer.getBlockBlobClient(blob).download(offset, count);
    const body = response.readableStreamBody;
    const length = count ?? response.contentLength;
    if (!body || length === undefined) throw new SystemError('source_read_failed', `segment ${blob}: no body`);
    const out = Buffer.allocUnsafe(length);
    let at = 0;
    for await (const chunk of body) {
      const bytes = chunk as Buffer;
      if (at + bytes.length > length) throw new SystemError('source_read_failed', `segment ${blob}: more bytes than asked for`);
      bytes.copy(out, at);
      at += bytes.length;
    }
    if (at !== length) throw new SystemError('source_read_failed', `segment ${blob}: ${at} of ${length} bytes`);
    return out;
  }

  private async writeSegment(workspaceId: number, part: AppendPart): Promise<{ blob: string; planBytes: number; bytes: number }> {
    const blob = `${workspaceId}/${part.fileType}/${randomUUID()}.seg`;
    const { body, planBytes } = encodeSegment(part.fileType, part.records);
    await this.storage.sourceContainer.getBlockBlobClient(blob).upload(body, body.length, {
      conditions: { ifNoneMatch: '*' },
      blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
    });
    return { blob, planBytes, bytes: body.length };
  }
}

/** A segment as its index entity lists it; `committedAt`: when it was committed (the entity's timestamp, ms). */
export type SegmentRef = { firstSeq: number; lastSeq: number; blob: string; planBytes?: number; bytes?: number; committedAt?: number };

async function* fromList(segments: readonly SegmentRef[]): AsyncGenerator<SegmentRef> {
  yield* segments;
}

function segmentRef(e: IndexEntity & { timestamp?: string }): SegmentRef {
  const ref: SegmentRef = { firstSeq: num(e.firstSeq), lastSeq: num(e.lastSeq), blob: e.blob };
  if (e.timestamp) ref.committedAt = Date.parse(e.timestamp);
  if (e.planBytes !== undefined && e.planBytes !== null) ref.planBytes = Number(e.planBytes);
  if (e.bytes !== undefined && e.bytes !== null) ref.bytes = Number(e.bytes);
  return ref;
}

function headEntityOf(partitionKey: string, head: Omit<Head, 'etag'>) {
  const marker = head.lastSeqKeyedFrom === undefined ? {} : { lastSeqKeyedFrom: int64(head.lastSeqKeyedFrom) };
  return { partitionKey, rowKey: headKey(head.fileType), seq: int64(head.seq), stateSeq: int64(head.stateSeq), ...marker };
}

export async function backoff(attempt: number): Promise<void> {
  const ms = Math.min(1000, 5 * 2 ** Math.min(attempt, 8)) * (0.5 + Math.random());
  await new Promise((r) => setTimeout(r, ms));
}
