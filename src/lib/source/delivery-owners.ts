// The person of each delivery (delivery_id → internal_customer_id), so a content row is tied to its
// person (SPEC section 4: anonymization decides by the person, never by the recipient string).
// Derived from the deliveries log, like people state: one small entity per delivery, written by a
// catch-up that replays the log from a saved position. Ingest stays one transaction per request;
// the exporter catches up before it resolves a content file, so the index covers every delivery
// committed by then, in whatever order content and deliveries arrived.
//
// Table layout (`deliveryowners`): partition `<ws>|<bucket>` (16 buckets by a hash of the id, so
// writes spread over partitions: Azure targets 2,000 entities/s per partition), row = delivery id,
// {person, seq}; the replay position is `<ws>` / `position` {seq}, ETag-guarded, never backwards.
import { TableTransaction } from '@azure/data-tables';
import type { AppStorage } from '../platform/storage.js';
import { encodeKey, int64, num, TABLES } from '../platform/storage.js';
import { isConflict, isNotFound } from '../platform/errors.js';
import type { SourceLog } from './source-log.js';
import { pool } from './people-state.js';

const BUCKETS = 16;
/** Deliveries replayed between two saved positions (bounded memory; a crash replays at most this many). */
const CHUNK = 2_000;

function bucketOf(deliveryId: string): string {
  let h = 2166136261;
  for (let i = 0; i < deliveryId.length; i++) h = Math.imul(h ^ deliveryId.charCodeAt(i), 16777619);
  return String((h >>> 0) % BUCKETS).padStart(2, '0');
}

export class DeliveryOwners {
  constructor(
    private readonly storage: AppStorage,
    private readonly source: SourceLog,
  ) {}

  private get table() {
    return this.storage.table(TABLES.deliveryOwners);
  }

  /**
   * Replays the deliveries log into the index up to its head. Returns false when `deadline` (ms,
   * per `now`) passed first: the position saved so far is kept and the next call continues.
   * Idempotent, so concurrent callers only repeat each other's work.
   */
  async catchUp(workspaceId: number, now: () => number = Date.now, deadline = Infinity): Promise<boolean> {
    const head = await this.source.head(workspaceId, 'deliveries');
    let position = await this.position(workspaceId);
    if (position.seq >= head.seq) return true;
    let chunk = new Map<string, { person: string | null; seq: number }>();
    let last = position.seq;
    const flush = async () => {
      await this.write(workspaceId, chunk);
      position = await this.savePosition(workspaceId, last, position);
      chunk = new Map();
    };
    // delivery_id and internal_customer_id are plan columns of deliveries: the segments' plan sections suffice.
    for await (const { seq, record } of this.source.read(workspaceId, 'deliveries', position.seq, head.seq, 'plan')) {
      chunk.set(String(record.delivery_id), { person: (record.internal_customer_id as string | undefined) ?? null, seq });
      last = seq;
      if (chunk.size >= CHUNK) {
        await flush();
        if (now() >= deadline) return last >= head.seq;
      }
    }
    await flush();
    return true;
  }

  /** The person of each of these deliveries (null: a delivery without a person); unknown deliveries are absent. */
  async owners(workspaceId: number, deliveryIds: Iterable<string>): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    await pool([...new Set(deliveryIds)], 32, async (id) => {
      try {
        const e = await this.table.getEntity<{ person?: string }>(`${workspaceId}|${bucketOf(id)}`, encodeKey(id), { queryOptions: { select: ['person'] } });
        out.set(id, e.person ?? null);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    });
    return out;
  }

  private async write(workspaceId: number, chunk: Map<string, { person: string | null; seq: number }>): Promise<void> {
    const batches = new Map<string, TableTransaction[]>();
    for (const [id, { person, seq }] of chunk) {
      const pk = `${workspaceId}|${bucketOf(id)}`;
      const txs = batches.get(pk) ?? [];
      if (txs.length === 0 || txs[txs.length - 1].actions.length >= 100) txs.push(new TableTransaction());
      batches.set(pk, txs);
      txs[txs.length - 1].upsertEntity({ partitionKey: pk, rowKey: encodeKey(id), seq: int64(seq), ...(person === null ? {} : { person }) }, 'Replace');
    }
    await pool([...batches.values()].flat(), 8, async (tx) => {
      await this.table.submitTransaction(tx.actions);
    });
  }

  private async position(workspaceId: number): Promise<{ seq: number; etag?: string }> {
    try {
      const e = await this.table.getEntity<{ seq: bigint }>(String(workspaceId), 'position');
      return { seq: num(e.seq), etag: e.etag };
    } catch (e) {
      if (isNotFound(e)) return { seq: 0 };
      throw e;
    }
  }

  /** Moves the saved position to `seq` unless another caller already moved it further. */
  private async savePosition(workspaceId: number, seq: number, known: { seq: number; etag?: string }): Promise<{ seq: number; etag?: string }> {
    let current = known;
    for (;;) {
      if (current.seq >= seq) return current;
      const entity = { partitionKey: String(workspaceId), rowKey: 'position', seq: int64(seq) };
      try {
        const r = current.etag ? await this.table.updateEntity(entity, 'Replace', { etag: current.etag }) : await this.table.createEntity(entity);
        return { seq, etag: r.etag };
      } catch (e) {
        if (!isConflict(e) && !isNotFound(e)) throw e;
        current = await this.position(workspaceId);
      }
    }
  }
}
