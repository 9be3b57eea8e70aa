// Current state of each person (profile flags and attributes), derived from the people and attributes
// logs. Ingest diffs against it so attribute rows come from real changes only; initial People and
// Attributes syncs are snapshots of it. Every write is seq-guarded (pseq/aseq) and ETag-guarded, so
// replaying a log range is idempotent and an older writer can never overwrite a newer state.
import { TableTransaction, type TransactionAction } from '@azure/data-tables';
import type { AppStorage } from '../platform/storage.js';
import { decodeKey, encodeKey, int64, num, TABLES } from '../platform/storage.js';
import { chunked, findLeaves, INLINE_MAX, OWN, joinChunks, ownKey, pageKey, pageOf, PAGES_FROM, PAGES_UNTIL, partitionKey, PARTITIONS, placeOf, splitPage, unitTransactions, type Page } from './people-pages.js';
import { legacyChunks, legacyScan } from './people-legacy.js';
import { RecentPages, type PageNodes } from './people-recent.js';
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
/** A person's attributes, as JSON, must fit the state entity (1 MiB, strings stored as UTF-16). */
export const MAX_PERSON_ATTRIBUTES_CHARS = 400_000;

function emptyState(id: string): PersonState {
  return { internal_customer_id: id, customer_id: null, email_addr: null, deleted: false, suppressed: false, created_at: null, updated_at: null, attrs: {}, goneSince: null, goneBefore: [], pseq: 0, aseq: 0 };
}

/** A person's entity (a person too large for a page, or the previous layout's one entity per person). */
export function fromEntity(e: Record<string, unknown>, id = decodeKey(String(e.rowKey))): PersonState {
  const json = joinChunks(e, 'attrs');
  return {
    internal_customer_id: id,
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

function toEntity(partitionKey: string, rowKey: string, s: PersonState) {
  const entity: Record<string, unknown> = { partitionKey, rowKey, deleted: s.deleted, suppressed: s.suppressed, pseq: int64(s.pseq), aseq: int64(s.aseq) };
  if (s.customer_id !== null) entity.customer_id = s.customer_id;
  if (s.email_addr !== null) entity.email_addr = s.email_addr;
  if (s.created_at !== null) entity.created_at = int64(s.created_at);
  if (s.updated_at !== null) entity.updated_at = int64(s.updated_at);
  if (s.goneSince !== null) entity.goneSince = int64(s.goneSince);
  if (s.goneBefore.length > 0) entity.goneBefore = JSON.stringify(s.goneBefore);
  Object.assign(entity, chunked(JSON.stringify(s.attrs), 'attrs'));
  return entity as { partitionKey: string; rowKey: string } & Record<string, unknown>;
}

/**
 * A state as a page holds it: an array, no names (a page holds hundreds of people); an attribute's
 * timestamp as its difference from updated_at (mostly 0: attributes come with the person's record).
 */
type Packed = [string | null, string | null, number, number | null, number | null, PersonState['attrs'], number | null, [number, number][], number, number];

function pack(s: PersonState): Packed {
  const base = s.updated_at ?? 0;
  const attrs: PersonState['attrs'] = {};
  // defineProperty, not assignment: a name like "__proto__" must stay a key.
  for (const [name, [value, at]] of Object.entries(s.attrs)) Object.defineProperty(attrs, name, { value: [value, at - base], enumerable: true });
  return [s.customer_id, s.email_addr, (s.deleted ? 1 : 0) | (s.suppressed ? 2 : 0), s.created_at, s.updated_at, attrs, s.goneSince, s.goneBefore, s.pseq, s.aseq];
}

function unpack(id: string, json: string): PersonState {
  const [customer_id, email_addr, flags, created_at, updated_at, attrs, goneSince, goneBefore, pseq, aseq] = JSON.parse(json) as Packed;
  for (const a of Object.values(attrs)) a[1] += updated_at ?? 0;
  return { internal_customer_id: id, customer_id, email_addr, deleted: (flags & 1) !== 0, suppressed: (flags & 2) !== 0, created_at, updated_at, attrs, goneSince, goneBefore, pseq, aseq };
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

/** What read() found: each person's state, the page holding it, and the ETags of own entities. */
export interface StateRead {
  states: Map<string, PersonState>;
  pages: Map<string, Page>;
  own: Map<string, string>;
  /** Every page and marker the lookups saw (remembered after a write, see people-recent.ts). */
  nodes: PageNodes;
}

/**
 * UTF-8 bytes of state one transaction's unit (a page, its split, its people's own entities) may carry:
 * sent as JSON strings, escaping at most doubles them, and a transaction holds 4 MiB.
 */
const UNIT_BYTES = 1_800_000;

export class PeopleState {
  /** Workspaces whose gone index is known to be built (one entry per workspace, not per person). */
  private readonly indexed = new Set<number>();
  /** Workspaces whose state of the previous layout is known to be migrated. */
  private readonly migratedWorkspaces = new Set<number>();
  private readonly recent = new RecentPages();

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
    return (await this.read(workspaceId, ids)).states;
  }

  /**
   * The states of these people (absent: empty), read page by page: a few reads per partition, not one
   * per person. With the heads the state is caught up to, pages this process remembers at exactly
   * those heads are not read again.
   */
  async read(workspaceId: number, ids: Iterable<string>, heads?: { people: number; attributes: number }): Promise<StateRead> {
    const byPartition = new Map<number, Map<string, string>>();
    for (const id of new Set(ids)) {
      const { partition, bits } = placeOf(id);
      if (!byPartition.has(partition)) byPartition.set(partition, new Map());
      byPartition.get(partition)!.set(id, bits);
    }
    const nodes: PageNodes = (heads && this.recent.at(workspaceId, heads)) || new Map();
    const out: StateRead = { states: new Map(), pages: new Map(), own: new Map(), nodes };
    const ownIds: [number, string][] = [];
    await Promise.all(
      [...byPartition].map(async ([partition, people]) => {
        if (!nodes.has(partition)) nodes.set(partition, new Map());
        const leaves = await findLeaves(this.table, workspaceId, partition, people.values(), nodes.get(partition));
        for (const [id, bits] of people) {
          const page = leaves.get(bits)!;
          out.pages.set(id, page);
          const v = page.people.get(id);
          if (v === OWN) ownIds.push([partition, id]);
          out.states.set(id, v === undefined || v === OWN ? emptyState(id) : unpack(id, v));
        }
      }),
    );
    await pool(ownIds, 32, async ([partition, id]) => {
      const e = (await this.table.getEntity(partitionKey(workspaceId, partition), ownKey(id))) as Record<string, unknown>;
      out.states.set(id, fromEntity(e, id));
      out.own.set(id, e.etag as string);
    });
    return out;
  }

  /**
   * Applies log records to the states of their people. Records at or below a state's pseq/aseq are
   * skipped, so applying the same range twice (or concurrently) converges to the same state.
   */
  async apply(workspaceId: number, changes: Map<string, PersonChanges>, known?: StateRead): Promise<PageNodes | undefined> {
    return this.write(workspaceId, [...changes.keys()], (before) => {
      const s: PersonState = { ...before, attrs: { ...before.attrs } };
      const c = changes.get(s.internal_customer_id)!;
      let changed = false;
      for (const { seq, record } of c.people) if (seq > s.pseq) { applyPersonRecord(s, seq, record); changed = true; }
      for (const { seq, record } of c.attributes) if (seq > s.aseq) { applyAttributeRecord(s, seq, record); changed = true; }
      return changed ? s : undefined;
    }, known);
  }

  /**
   * Writes `update(state)` of each person (undefined: unchanged), page by page, every write guarded
   * by the ETag it read; on a conflict it reads again and retries (updates are seq-guarded, so what
   * committed is skipped). A page takes at most UNIT_BYTES per round; the rest goes in the next round.
   * Returns the pages as written when it took one round (no conflict), else undefined.
   */
  private async write(workspaceId: number, ids: string[], update: (s: PersonState) => PersonState | undefined, known?: StateRead): Promise<PageNodes | undefined> {
    let pending = ids;
    let r = known && ids.every((id) => known.states.has(id)) ? known : await this.read(workspaceId, ids);
    for (let attempt = 0, round = 0; pending.length > 0; round++) {
      const plan = planWrites(workspaceId, pending, r, update);
      if (plan.transactions.length === 0) return round === 0 ? r.nodes : undefined;
      // The gone index first: a person is never gone in the state without being in it.
      for (let i = 0; i < plan.gone.length; i += 100) {
        await this.goneTable.submitTransaction(plan.gone.slice(i, i + 100).map((id) => ['upsert', { partitionKey: String(workspaceId), rowKey: encodeKey(id) }, 'Merge'] as TransactionAction));
      }
      try {
        const etags = new Map<string, string | undefined>();
        await pool(plan.transactions, 8, async (tx) => {
          for (const [key, etag] of await this.commit(tx)) etags.set(key, etag);
        });
        if (round === 0 && plan.deferred.length === 0) return written(r.nodes, plan.nodes, etags);
        pending = plan.deferred;
      } catch (e) {
        if (!isConflict(e) && !isNotFound(e)) throw e;
        await backoff(attempt++);
      }
      if (pending.length > 0) r = await this.read(workspaceId, pending);
    }
    return undefined;
  }

  /** Pages a writer just wrote at these heads (the logs' seqs its state reflects), for its next request. */
  remember(workspaceId: number, heads: { people: number; attributes: number }, nodes: PageNodes | undefined): void {
    if (nodes) this.recent.remember(workspaceId, heads, nodes);
    else this.recent.forget(workspaceId);
  }

  /**
   * One transaction; a single write as a plain request (Azurite takes it at a third of the cost).
   * Returns the new ETags by `<partition key>|<row key>`.
   */
  private async commit(tx: TransactionAction[]): Promise<[string, string | undefined][]> {
    const [action] = tx;
    const key = (a: TransactionAction) => `${a[1].partitionKey}|${a[1].rowKey}`;
    if (tx.length > 1 || (action[0] !== 'create' && action[0] !== 'update')) {
      const response = await this.table.submitTransaction(tx);
      return tx.map((a, i) => [key(a), response.subResponses[i]?.etag]); // in the order of the actions
    }
    const response = action[0] === 'create' ? await this.table.createEntity(action[1]) : await this.table.updateEntity(action[1], action[2], action[3]);
    return [[key(action), response.etag]];
  }

  /**
   * Brings the state up to the people and attributes heads (replaying what a crashed or racing
   * ingest committed but did not apply) and returns both heads, current, with stateSeq === seq.
   */
  async catchUp(workspaceId: number): Promise<{ people: Head; attributes: Head }> {
    await this.migrated(workspaceId);
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

  /**
   * Records that the state reflects the logs through these seqs (never moves stateSeq backwards).
   * With the heads' ETags of the commit that made these seqs (nobody can have moved them further
   * unless the ETag changed), both heads in one request; otherwise, or on a conflict, head by head.
   */
  async markApplied(workspaceId: number, peopleSeq: number, attributesSeq: number, etags?: { people?: string; attributes?: string }): Promise<void> {
    const index = this.storage.table(TABLES.sourceIndex);
    const pk = String(workspaceId);
    if (etags?.people && etags.attributes) {
      const merge = (fileType: 'people' | 'attributes', seq: number, etag: string): TransactionAction => ['update', { partitionKey: pk, rowKey: `head|${fileType}`, stateSeq: int64(seq) }, 'Merge', { etag }];
      try {
        return void (await index.submitTransaction([merge('people', peopleSeq, etags.people), merge('attributes', attributesSeq, etags.attributes)]));
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
    }
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

  /**
   * People of the workspace after `after` (a position this yields; '' = from the start), in
   * (partition, bits, id) order, each with its position (initial People/Attributes syncs). A person is
   * yielded once even if its page splits meanwhile: what sorts at or before the last yielded is skipped.
   * A position of the previous layout (an encoded id) continues that layout's scan.
   */
  async *scan(workspaceId: number, after = ''): AsyncGenerator<{ person: PersonState; position: string }> {
    await this.migrated(workspaceId);
    if (after !== '' && !after.startsWith('#')) {
      for await (const person of legacyScan(this.table, workspaceId, after)) yield { person, position: encodeKey(person.internal_customer_id) };
      return;
    }
    const from = parsePosition(after);
    for (let partition = from.partition; partition < PARTITIONS; partition++) {
      const last = partition === from.partition ? from.last : undefined;
      const cursor = { last };
      let filter = `PartitionKey eq '${partitionKey(workspaceId, partition)}' and RowKey ge '${PAGES_FROM}' and RowKey lt '${PAGES_UNTIL}'`;
      if (last) {
        const leaf = (await findLeaves(this.table, workspaceId, partition, [last[0]])).get(last[0])!;
        yield* this.pagePeople(workspaceId, leaf, cursor);
        filter = `PartitionKey eq '${partitionKey(workspaceId, partition)}' and RowKey gt '${pageKey(last[0])}' and RowKey lt '${PAGES_UNTIL}'`;
      }
      for await (const entities of this.table.listEntities({ queryOptions: { filter } }).byPage({ maxPageSize: 8 })) {
        for (const e of entities) {
          const page = pageOf(partition, e as Record<string, unknown>);
          if (page !== 'split') yield* this.pagePeople(workspaceId, page, cursor);
        }
      }
    }
  }

  /** A page's people after `cursor.last`, in (bits, id) order; moves the cursor. */
  private async *pagePeople(workspaceId: number, page: Page, cursor: { last?: [string, string] }): AsyncGenerator<{ person: PersonState; position: string }> {
    const people = [...page.people].map(([id, v]) => ({ id, v, bits: placeOf(id).bits })).sort((a, b) => compare([a.bits, a.id], [b.bits, b.id]));
    for (const { id, v, bits } of people) {
      if (cursor.last && compare([bits, id], cursor.last) <= 0) continue;
      cursor.last = [bits, id];
      const person = v === OWN ? fromEntity((await this.table.getEntity(partitionKey(workspaceId, page.partition), ownKey(id))) as Record<string, unknown>, id) : unpack(id, v);
      yield { person, position: `#${page.partition.toString(16)}|${bits}|${encodeKey(id)}` };
    }
  }

  /**
   * Of these people, those deleted or suppressed once the people log reached `seq` (their history is
   * anonymized). Memory and reads grow with `ids` (one file's people), not with the number of deleted people.
   */
  async goneAt(workspaceId: number, ids: Iterable<string>, seq: number): Promise<Set<string>> {
    await this.migrated(workspaceId);
    const candidates = await this.goneCandidates(workspaceId, new Set(ids));
    const { states } = await this.read(workspaceId, candidates);
    return new Set([...states.values()].filter((s) => goneAt(s, seq)).map((s) => s.internal_customer_id));
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
   * People state written before the gone index existed (only in the previous layout): index its gone
   * people once per workspace (streamed, 100 per transaction), then mark the workspace done.
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

  /**
   * The previous layout (one entity per person, partition = workspace id) copied into pages once per
   * workspace, before anything reads the state: in chunks, its progress saved, so an interrupted
   * migration resumes; a person already in the pages is never overwritten (concurrent migrations agree).
   */
  async migrated(workspaceId: number): Promise<void> {
    if (this.migratedWorkspaces.has(workspaceId)) return;
    const marker = { partitionKey: `${workspaceId}|~`, rowKey: 'legacy' };
    let after = '';
    try {
      const e = await this.table.getEntity<{ done?: boolean; after?: string }>(marker.partitionKey, marker.rowKey);
      if (e.done) return void this.migratedWorkspaces.add(workspaceId);
      after = e.after ?? '';
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    for await (const chunk of legacyChunks(this.table, workspaceId, after)) {
      const legacy = new Map(chunk.map((s) => [s.internal_customer_id, s]));
      await this.write(workspaceId, [...legacy.keys()], (s) => (s.pseq === 0 && s.aseq === 0 ? { ...legacy.get(s.internal_customer_id)!, etag: undefined } : undefined));
      await this.table.upsertEntity({ ...marker, after: encodeKey(chunk[chunk.length - 1].internal_customer_id) }, 'Replace');
    }
    await this.table.upsertEntity({ ...marker, done: true }, 'Replace');
    this.migratedWorkspaces.add(workspaceId);
  }
}

type WrittenNode = { partition: number; key: string; prefix: string; text?: string; people?: Map<string, string> };

/** The nodes a lookup saw, with what was just written (and its new ETags) in their place. */
function written(seen: PageNodes, nodes: WrittenNode[], etags: Map<string, string | undefined>): PageNodes | undefined {
  for (const n of nodes) {
    const etag = etags.get(n.key);
    if (n.text !== undefined && !etag) return undefined;
    const page: Page | 'split' = n.text === undefined ? 'split' : { partition: n.partition, prefix: n.prefix, etag, people: n.people!, bytes: Buffer.byteLength(n.text) };
    seen.get(n.partition)!.set(n.prefix, page);
  }
  return seen;
}

const compare = (a: [string, string], b: [string, string]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);

/** A scan position of this layout: `#<partition hex>|<bits>|<encoded id>`. */
function parsePosition(position: string): { partition: number; last?: [string, string] } {
  if (position === '') return { partition: 0 };
  const [partition, bits, id] = position.slice(1).split('|');
  return { partition: parseInt(partition, 16), last: [bits, decodeKey(id)] };
}

/**
 * The transactions that write `update` of the pending people, and the people left for the next round
 * (a page's unit is full). A page over its size is split in its own unit (markers and children).
 */
function planWrites(workspaceId: number, pending: string[], r: StateRead, update: (s: PersonState) => PersonState | undefined) {
  const units = new Map<Page, { people: Map<string, string>; bytes: number; changed: number; own: TransactionAction[] }>();
  const gone: string[] = [];
  const deferred: string[] = [];
  for (const id of pending) {
    const s = update(r.states.get(id)!);
    if (!s) continue;
    const page = r.pages.get(id)!;
    let unit = units.get(page);
    if (!unit) units.set(page, (unit = { people: new Map(page.people), bytes: page.bytes, changed: 0, own: [] }));
    const json = JSON.stringify(pack(s));
    const pk = partitionKey(workspaceId, page.partition);
    const ownEtag = r.own.get(id);
    const big = json.length > INLINE_MAX;
    const bytes = Buffer.byteLength(json) + (big ? 1000 : 3 * id.length + 2);
    if (unit.changed > 0 && unit.bytes + bytes > UNIT_BYTES) {
      deferred.push(id);
      continue;
    }
    unit.bytes += bytes;
    unit.changed++;
    if (s.goneSince !== null) gone.push(id);
    unit.people.set(id, big ? OWN : json);
    if (big) unit.own.push(ownEtag ? ['update', toEntity(pk, ownKey(id), s), 'Replace', { etag: ownEtag }] : ['create', toEntity(pk, ownKey(id), s)]);
    else if (ownEtag) unit.own.push(['delete', { partitionKey: pk, rowKey: ownKey(id) }]); // guarded by the page's ETag (same transaction)
  }
  const byPartition = new Map<number, TransactionAction[][]>();
  const nodes: WrittenNode[] = [];
  for (const [page, unit] of units) {
    const pk = partitionKey(workspaceId, page.partition);
    const write = (prefix: string, props: Record<string, unknown>): TransactionAction => {
      const entity = { partitionKey: pk, rowKey: pageKey(prefix), ...props };
      return prefix === page.prefix && page.etag ? ['update', entity, 'Replace', { etag: page.etag }] : ['create', entity];
    };
    const split = splitPage(page.prefix, unit.people, (id) => placeOf(id).bits);
    nodes.push(...split.map((node) => ({ ...node, partition: page.partition, key: `${pk}|${pageKey(node.prefix)}` })));
    const actions = split.map((node) => write(node.prefix, node.text === undefined ? { split: true } : chunked(node.text)));
    actions.push(...unit.own);
    if (!byPartition.has(page.partition)) byPartition.set(page.partition, []);
    byPartition.get(page.partition)!.push(actions);
  }
  return { transactions: [...byPartition.values()].flatMap(unitTransactions), gone, deferred, nodes };
}

/** Runs `fn` over `items` with at most `concurrency` at once. */
export async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
