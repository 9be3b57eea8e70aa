// Current state of each person (profile flags and attributes), derived from the people and attributes
// logs. Ingest diffs against it so attribute rows come from real changes only; initial People and
// Attributes syncs are snapshots of it. Every write is seq-guarded (pseq/aseq) and ETag-guarded, so
// replaying a log range is idempotent and an older writer can never overwrite a newer state.
import { TableTransaction } from '@azure/data-tables';
import type { AppStorage } from '../platform/storage.js';
import { decodeKey, encodeKey, int64, num, TABLES } from '../platform/storage.js';
import { transactionChunks } from '../platform/azure-limits.js';
import type { Head, SourceLog, SourceRecord } from './source-log.js';
import { backoff } from './source-log.js';
import { isConflict, isNotFound } from '../platform/errors.js';

export interface PersonState {
  internal_customer_id: string;
  customer_id: string | null;
  email_addr: string | null;
  deleted: boolean;
  suppressed: boolean;
  created_at: number | null;
  updated_at: number | null;
  /** attribute name → [value, timestamp ms]; a removed attribute keeps [null, timestamp of its removal]. */
  attrs: Record<string, [string | null, number]>;
  /** People seq_num from which the person is deleted or suppressed without a break (null: neither now). */
  goneSince: number | null;
  /** Earlier spans [from, until) of people seq_nums in which the person was deleted or suppressed. */
  goneBefore: [number, number][];
  /** Highest people / attributes seq_num applied. */
  pseq: number;
  aseq: number;
  etag?: string;
}

/** Earlier gone spans kept per person; beyond, the oldest two merge (wider: errs towards anonymizing). */
const MAX_GONE_SPANS = 500;
const ATTR_CHUNK = 30_000; // characters per property (a property holds at most 64 KiB)
/** A person's attributes, as JSON, must fit the state entity (1 MiB, strings stored as UTF-16). */
export const MAX_PERSON_ATTRIBUTES_CHARS = 400_000;

function emptyState(id: string): PersonState {
  return { internal_customer_id: id, customer_id: null, email_addr: null, deleted: false, suppressed: false, created_at: null, updated_at: null, attrs: {}, goneSince: null, goneBefore: [], pseq: 0, aseq: 0 };
}

function fromEntity(e: Record<string, unknown>): PersonState {
  let json = '';
  for (let i = 0; typeof e[`attrs${i}`] === 'string'; i++) json += e[`attrs${i}`] as string;
  return {
    internal_customer_id: decodeKey(String(e.rowKey)),
    customer_id: (e.customer_id as string) ?? null,
    email_addr: (e.email_addr as string) ?? null,
    deleted: e.deleted === true,
    suppressed: e.suppressed === true,
    created_at: e.created_at === undefined || e.created_at === null ? null : num(e.created_at),
    updated_at: e.updated_at === undefined || e.updated_at === null ? null : num(e.updated_at),
    attrs: json ? JSON.parse(json) : {},
    // A state written before goneSince existed: gone since always (the safe reading).
    goneSince: e.goneSince !== undefined && e.goneSince !== null ? num(e.goneSince) : e.deleted === true || e.suppressed === true ? 0 : null,
    goneBefore: typeof e.goneBefore === 'string' ? JSON.parse(e.goneBefore) : [],
    pseq: num(e.pseq),
    aseq: num(e.aseq),
    etag: e.etag as string | undefined,
  };
}

function toEntity(workspaceId: number, s: PersonState) {
  const entity: Record<string, unknown> = {
    partitionKey: String(workspaceId),
    rowKey: encodeKey(s.internal_customer_id),
    deleted: s.deleted,
    suppressed: s.suppressed,
    pseq: int64(s.pseq),
    aseq: int64(s.aseq),
  };
  if (s.customer_id !== null) entity.customer_id = s.customer_id;
  if (s.email_addr !== null) entity.email_addr = s.email_addr;
  if (s.created_at !== null) entity.created_at = int64(s.created_at);
  if (s.updated_at !== null) entity.updated_at = int64(s.updated_at);
  if (s.goneSince !== null) entity.goneSince = int64(s.goneSince);
  if (s.goneBefore.length > 0) entity.goneBefore = JSON.stringify(s.goneBefore);
  const json = JSON.stringify(s.attrs);
  for (let i = 0; i * ATTR_CHUNK < json.length; i++) entity[`attrs${i}`] = json.slice(i * ATTR_CHUNK, (i + 1) * ATTR_CHUNK);
  return entity as { partitionKey: string; rowKey: string };
}

/** A people log record applied to a state (the record is the exported people row). */
export function applyPersonRecord(s: PersonState, seq: number, r: SourceRecord): void {
  s.customer_id = r.customer_id as string;
  s.email_addr = (r.email_addr as string | null) ?? null;
  s.deleted = r.deleted === true;
  s.suppressed = r.suppressed === true;
  s.created_at = r.created_at as number;
  s.updated_at = r.updated_at as number;
  const gone = s.deleted || s.suppressed;
  if (gone && s.goneSince === null) s.goneSince = seq;
  if (!gone && s.goneSince !== null) {
    s.goneBefore = [...s.goneBefore, [s.goneSince, seq]];
    if (s.goneBefore.length > MAX_GONE_SPANS) s.goneBefore.splice(0, 2, [s.goneBefore[0][0], s.goneBefore[1][1]]);
    s.goneSince = null;
  }
  s.pseq = seq;
}

/** Whether the person was deleted or suppressed once the people log reached `seq` (SPEC section 4: "before the first sync"). */
export function goneAt(s: Pick<PersonState, 'goneSince' | 'goneBefore'>, seq: number): boolean {
  if (s.goneSince !== null && s.goneSince <= seq) return true;
  return s.goneBefore.some(([from, until]) => from <= seq && seq < until);
}

/**
 * An attributes log record applied to a state. A removal is kept as [null, timestamp]: a later change
 * of the attribute must be exported after the removal too (SPEC 5.4).
 */
export function applyAttributeRecord(s: PersonState, seq: number, r: SourceRecord): void {
  const value = (r.attribute_value as string | null) ?? null;
  // defineProperty, not assignment: a name like "__proto__" must stay a key (ingest refuses it too).
  Object.defineProperty(s.attrs, r.attribute_name as string, { value: [value, r.timestamp as number], enumerable: true, writable: true, configurable: true });
  s.aseq = seq;
}

/**
 * The timestamp a people or attribute change is exported with (SPEC 5.4): its own, unless that is not
 * later than the one exported before it for the same key, then 1 ms after that one. Loaders keep the
 * latest updated_at / timestamp per key, so the latest change always wins and never ties.
 */
export function changeTimestamp(own: number, previous: number | null | undefined): number {
  return previous !== null && previous !== undefined && own <= previous ? previous + 1 : own;
}

export interface PersonChanges {
  people: { seq: number; record: SourceRecord }[];
  attributes: { seq: number; record: SourceRecord }[];
}

export class PeopleState {
  /** Workspaces whose gone index is known to be built (one entry per workspace, not per person). */
  private readonly indexed = new Set<number>();

  constructor(
    private readonly storage: AppStorage,
    private readonly source: SourceLog,
  ) {}

  private get table() {
    return this.storage.table(TABLES.peopleState);
  }

  /** Sparse: one empty entity per person ever deleted or suppressed (partition = workspace), never removed. */
  private get goneTable() {
    return this.storage.table(TABLES.gonePeople);
  }

  async get(workspaceId: number, ids: Iterable<string>): Promise<Map<string, PersonState>> {
    const out = new Map<string, PersonState>();
    const queue = [...new Set(ids)];
    const worker = async () => {
      for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
        try {
          const e = await this.table.getEntity(String(workspaceId), encodeKey(id));
          out.set(id, fromEntity(e as Record<string, unknown>));
        } catch (err) {
          if (!isNotFound(err)) throw err;
          out.set(id, emptyState(id));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(64, queue.length) }, worker));
    return out;
  }

  /**
   * Applies log records to the states of their people. Records at or below a state's pseq/aseq are
   * skipped, so applying the same range twice (or concurrently) converges to the same state.
   */
  async apply(workspaceId: number, changes: Map<string, PersonChanges>, known?: Map<string, PersonState>): Promise<void> {
    const ids = [...changes.keys()];
    const batches: string[][] = [];
    for (let i = 0; i < ids.length; i += 100) batches.push(ids.slice(i, i + 100));
    // Batches touch different people, so they commit in parallel (each is one entity-group transaction).
    await pool(batches, 8, (batch) => this.applyBatch(workspaceId, batch, changes, known));
  }

  private async applyBatch(workspaceId: number, batch: string[], changes: Map<string, PersonChanges>, known?: Map<string, PersonState>): Promise<void> {
    let states = known && batch.every((id) => known.has(id)) ? known : await this.get(workspaceId, batch);
    for (let attempt = 0; ; attempt++) {
      const tx = new TableTransaction();
      const gone = new TableTransaction();
      for (const id of batch) {
        const before = states.get(id)!;
        const s: PersonState = { ...before, attrs: { ...before.attrs } };
        const c = changes.get(id)!;
        let changed = false;
        for (const { seq, record } of c.people) if (seq > s.pseq) { applyPersonRecord(s, seq, record); changed = true; }
        for (const { seq, record } of c.attributes) if (seq > s.aseq) { applyAttributeRecord(s, seq, record); changed = true; }
        if (!changed) continue;
        if (s.goneSince !== null) gone.upsertEntity({ partitionKey: String(workspaceId), rowKey: encodeKey(id) }, 'Merge');
        const entity = toEntity(workspaceId, s);
        if (s.etag) tx.updateEntity(entity, 'Replace', { etag: s.etag });
        else tx.createEntity(entity);
      }
      if (tx.actions.length === 0) return;
      // The gone index first: a person is never gone in the state without being in it.
      if (gone.actions.length > 0) await this.goneTable.submitTransaction(gone.actions);
      try {
        // 100 large states exceed a transaction's 4 MiB: commit by size. A part that committed before a
        // conflict is skipped on the retry (its seqs are applied), so the parts need not be atomic together.
        for (const part of transactionChunks(tx.actions)) await this.table.submitTransaction(part);
        return;
      } catch (e) {
        if (!isConflict(e)) throw e;
        await backoff(attempt);
        states = await this.get(workspaceId, batch);
      }
    }
  }

  /**
   * Brings the state up to the people and attributes heads (replaying what a crashed or racing
   * ingest committed but did not apply) and returns both heads, current, with stateSeq === seq.
   */
  async catchUp(workspaceId: number): Promise<{ people: Head; attributes: Head }> {
    for (let attempt = 0; ; attempt++) {
      const [people, attributes] = await Promise.all([
        this.source.head(workspaceId, 'people'),
        this.source.head(workspaceId, 'attributes'),
      ]);
      if (people.stateSeq >= people.seq && attributes.stateSeq >= attributes.seq) return { people, attributes };
      const changes = new Map<string, PersonChanges>();
      const entry = (id: string) => {
        let c = changes.get(id);
        if (!c) changes.set(id, (c = { people: [], attributes: [] }));
        return c;
      };
      for await (const r of this.source.read(workspaceId, 'people', people.stateSeq, people.seq)) entry(r.record.internal_customer_id as string).people.push(r);
      for await (const r of this.source.read(workspaceId, 'attributes', attributes.stateSeq, attributes.seq)) entry(r.record.internal_customer_id as string).attributes.push(r);
      await this.apply(workspaceId, changes);
      await this.markApplied(workspaceId, people.seq, attributes.seq).catch((e) => {
        if (!isConflict(e)) throw e;
      });
      if (attempt > 0) await backoff(attempt);
    }
  }

  /** Records that the state reflects the logs through these seqs (never moves stateSeq backwards). */
  async markApplied(workspaceId: number, peopleSeq: number, attributesSeq: number): Promise<void> {
    const index = this.storage.table(TABLES.sourceIndex);
    const pk = String(workspaceId);
    for (const [fileType, seq] of [['people', peopleSeq], ['attributes', attributesSeq]] as const) {
      if (seq === 0) continue;
      for (let attempt = 0; attempt < 5; attempt++) {
        const head = await this.source.head(workspaceId, fileType);
        if (head.stateSeq >= seq || !head.etag) break;
        try {
          await index.updateEntity({ partitionKey: pk, rowKey: `head|${fileType}`, stateSeq: int64(seq) }, 'Merge', { etag: head.etag });
          break;
        } catch (e) {
          if (!isConflict(e)) throw e;
        }
      }
    }
  }

  /** People of the workspace with a key after `afterKey` (encoded), in key order (initial People/Attributes syncs). */
  async *scan(workspaceId: number, afterKey = ''): AsyncGenerator<PersonState> {
    const filter = `PartitionKey eq '${workspaceId}' and RowKey gt '${afterKey.replace(/'/g, "''")}'`;
    for await (const e of this.table.listEntities({ queryOptions: { filter } })) {
      yield fromEntity(e as Record<string, unknown>);
    }
  }

  /**
   * Of these people, those deleted or suppressed once the people log reached `seq` (their history is
   * anonymized). Point reads of the few gone-span properties only, never the attributes; memory and
   * reads grow with `ids` (one file's people), not with the number of deleted people.
   */
  async goneAt(workspaceId: number, ids: Iterable<string>, seq: number): Promise<Set<string>> {
    const out = new Set<string>();
    const select = ['deleted', 'suppressed', 'goneSince', 'goneBefore'];
    const candidates = await this.goneCandidates(workspaceId, new Set(ids));
    await pool([...candidates], 32, async (id) => {
      try {
        const e = (await this.table.getEntity(String(workspaceId), encodeKey(id), { queryOptions: { select } })) as Record<string, unknown>;
        if (goneAt(fromEntity({ ...e, rowKey: encodeKey(id) }), seq)) out.add(id);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    });
    return out;
  }

  /**
   * Those of `ids` that may have been gone: with few gone people in the workspace, the gone index
   * read whole (at most ids.size + 1 entities, keeping only members of `ids`); with more, all of `ids`.
   */
  private async goneCandidates(workspaceId: number, ids: Set<string>): Promise<Set<string>> {
    await this.goneIndexBuilt(workspaceId);
    const out = new Set<string>();
    let seen = 0;
    const query = { filter: `PartitionKey eq '${workspaceId}'`, select: ['RowKey'] };
    for await (const e of this.goneTable.listEntities({ queryOptions: query })) {
      if (++seen > ids.size) return ids;
      const id = decodeKey(String(e.rowKey));
      if (ids.has(id)) out.add(id);
    }
    return out;
  }

  /**
   * People state written before the gone index existed: index its gone people once per workspace
   * (streamed, 100 per transaction), then mark the workspace done. New gone people index themselves.
   */
  private async goneIndexBuilt(workspaceId: number): Promise<void> {
    if (this.indexed.has(workspaceId)) return;
    const marker = { partitionKey: '_built', rowKey: String(workspaceId) };
    try {
      await this.goneTable.getEntity(marker.partitionKey, marker.rowKey);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const filter = `PartitionKey eq '${workspaceId}' and (deleted eq true or suppressed eq true)`;
      let tx = new TableTransaction();
      for await (const e of this.table.listEntities({ queryOptions: { filter, select: ['RowKey'] } })) {
        tx.upsertEntity({ partitionKey: String(workspaceId), rowKey: String(e.rowKey) }, 'Merge');
        if (tx.actions.length === 100) await this.goneTable.submitTransaction(tx.actions).then(() => (tx = new TableTransaction()));
      }
      if (tx.actions.length > 0) await this.goneTable.submitTransaction(tx.actions);
      await this.goneTable.upsertEntity(marker, 'Merge');
    }
    this.indexed.add(workspaceId);
  }
}

/** Runs `fn` over `items` with at most `concurrency` at once. */
export async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
