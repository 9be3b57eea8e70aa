// Current state of each person (profile flags and attributes), derived from the people and attributes
// logs. Ingest diffs against it so attribute rows come from real changes only; initial People and
// Attributes syncs are snapshots of it. Every write is seq-guarded (pseq/aseq) and ETag-guarded, so
// replaying a log range is idempotent and an older writer can never overwrite a newer state.
import { TableTransaction, type TransactionAction } from '@azure/data-tables';
import type { AppStorage } from '../platform/storage.js';
import { decodeKey, encodeKey, int64, TABLES } from '../platform/storage.js';
import { findLeaves, mayHold, OWN, ownKey, pageKey, pageOf, PAGES_FROM, PAGES_UNTIL, partitionKey, PARTITIONS, placeOf, type Page, type PageNode } from './people-pages.js';
import { emptyState, fromEntity, unpack } from './people-codec.js';
import { planWrites, written, type StateRead } from './people-writes.js';
import { legacyChunks, legacyScan } from './people-legacy.js';
import { held, PENDING_RECORD_BYTES, RECENT_MAX_BYTES, RecentPages, rememberedBytes, trimPages, type PageNodes, type Remembered } from './people-recent.js';
import type { Head, SourceLog, SourceRecord } from './source-log.js';
import { backoff } from './source-log.js';
import { isConflict, isNotFound } from '../platform/errors.js';

export type { StateRead } from './people-writes.js';

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
  const name = r.attribute_name as string;
  // "__proto__" by defineProperty: it must stay a key (ingest refuses it too); others by assignment (cheaper).
  if (name === '__proto__') Object.defineProperty(s.attrs, name, { value: [value, r.timestamp as number], enumerable: true, writable: true, configurable: true });
  else s.attrs[name] = [value, r.timestamp as number];
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

/** A person's state after the records above its pseq/aseq (a copy), or undefined when none is new. */
export function applyChanges(before: PersonState, c: PersonChanges): PersonState | undefined {
  let s: PersonState | undefined;
  for (const { seq, record } of c.people) if (seq > (s ?? before).pseq) applyPersonRecord((s ??= { ...before, attrs: { ...before.attrs } }), seq, record);
  for (const { seq, record } of c.attributes) if (seq > (s ?? before).aseq) applyAttributeRecord((s ??= { ...before, attrs: { ...before.attrs } }), seq, record);
  return s;
}

/**
 * Committed records a writer may hold in memory, not yet in the pages (people-recent.ts), before its
 * request writes them: they bound what a crashed writer leaves for catchUp to replay from the logs
 * (~17 segments of 6,000 records, a second or two), and take ~30 MB at most (PEOPLE_STATE_MEMORY_MB bounds
 * them with the pages). A write of every page a flush touches costs the same for 25,000 records as
 * for 100,000 (a backfill touches every page each time): 100,000 ingested people 15-20% faster.
 */
export const PENDING_MAX_RECORDS = 100_000;

/**
 * People per step of a state write of many people (a writer's pending ones, a catch-up): their pages
 * are read (those not held), written, then let go of down to the memory bound, so a write holds at
 * most this many people's pages beyond it, whatever the workspace's size. In place order (partition,
 * bits), so a step's people share pages.
 */
export const WRITE_STEP_PEOPLE = 1_000;

/**
 * Share of the memory bound the pending records may always take, when the pages held would take
 * more (half: ~110,000 records, over PENDING_MAX_RECORDS): a workspace larger than memory still
 * writes its state every ~16 requests, not every request, and holds as many pages as the rest fits.
 */
export const PENDING_MIN_SHARE = 0.5;

/** Whether the leaf holding `bits` is held in `seen` (a path of markers down to a page), so a lookup reads nothing. */
function heldLeaf(seen: Map<string, PageNode> | undefined, bits: string): boolean {
  for (let d = 0; seen && d <= bits.length; d++) {
    const n = seen.get(bits.slice(0, d));
    if (n !== 'split') return held(n);
  }
  return false;
}

/** What apply did: wrote the pages (as written when in one round), or kept the changes in memory. */
export type Applied = { nodes?: PageNodes; deferred?: true };

/** Where a people writer starts: the heads, and what this process holds of the state at exactly them. */
export type WriterStart = { people: Head; attributes: Head; remembered?: Remembered };

export class PeopleState {
  /** Workspaces whose gone index is known to be built (one entry per workspace, not per person). */
  private readonly indexed = new Set<number>();
  /** Workspaces whose state of the previous layout is known to be migrated. */
  private readonly migratedWorkspaces = new Set<number>();
  private readonly recent: RecentPages;

  constructor(
    private readonly storage: AppStorage,
    private readonly source: SourceLog,
    /** What a writer keeps in memory of the state, over all workspaces (PEOPLE_STATE_MEMORY_MB). */
    private readonly memoryBytes = RECENT_MAX_BYTES,
  ) {
    this.recent = new RecentPages(memoryBytes);
  }

  private get table() {
    return this.storage.table(TABLES.peopleState);
  }

  /** Sparse: one empty entity per person ever deleted or suppressed (partition = workspace), never removed. */
  private get goneTable() {
    return this.storage.table(TABLES.gonePeople);
  }

  /** The current states of these people (the state caught up to the logs first). */
  async get(workspaceId: number, ids: Iterable<string>): Promise<Map<string, PersonState>> {
    await this.catchUp(workspaceId);
    return (await this.read(workspaceId, ids)).states;
  }

  /**
   * The states of these people (absent: empty), read page by page: a few reads per partition, not one
   * per person. Pages in `base.nodes` (what this process holds, people-recent.ts) are not read again;
   * with `base.pending`, the states include those committed changes (the state at the writer's heads).
   */
  async read(workspaceId: number, ids: Iterable<string>, base?: { nodes: PageNodes; pending?: Map<string, PersonChanges>; records?: number }): Promise<StateRead> {
    const byPartition = new Map<number, Map<string, string>>();
    for (const id of new Set(ids)) {
      const { partition, bits } = placeOf(id);
      if (!byPartition.has(partition)) byPartition.set(partition, new Map());
      byPartition.get(partition)!.set(id, bits);
    }
    const nodes: PageNodes = base?.nodes ?? new Map();
    const out: StateRead = { states: new Map(), pages: new Map(), own: new Map(), nodes };
    const ownIds: [number, string][] = [];
    await Promise.all(
      [...byPartition].map(async ([partition, people]) => {
        if (!nodes.has(partition)) nodes.set(partition, new Map());
        const seen = nodes.get(partition)!;
        const leaves = await findLeaves(this.table, workspaceId, partition, people.values(), seen);
        // A sketch (people-pages.ts Page.ids) that may hold one of them is read whole, for all of its people.
        const unsure = new Set<string>();
        for (const [id, bits] of people) {
          const page = leaves.get(bits)!;
          if (page.ids && mayHold(page.ids, id)) unsure.add(page.prefix);
        }
        if (unsure.size > 0) {
          for (const prefix of unsure) seen.set(prefix, 'leaf');
          const again = [...people.values()].filter((bits) => unsure.has(leaves.get(bits)!.prefix));
          for (const [bits, page] of await findLeaves(this.table, workspaceId, partition, again, seen)) leaves.set(bits, page);
        }
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
    if (base?.pending) {
      for (const [id, s] of out.states) {
        const c = base.pending.get(id);
        const now = c && applyChanges(s, c);
        if (now) out.states.set(id, now);
      }
      out.pending = base.pending;
      out.records = base.records ?? 0;
    }
    return out;
  }

  /**
   * Applies log records to the states of their people. Records at or below a state's pseq/aseq are
   * skipped, so applying the same range twice (or concurrently) converges to the same state.
   */
  async apply(workspaceId: number, changes: Map<string, PersonChanges>, known?: StateRead, committed?: { people: Head; attributes: Head }): Promise<Applied | undefined> {
    if (committed && known?.pending) return this.applyCommitted(workspaceId, changes, known, committed);
    const update = (s: PersonState) => applyChanges(s, changes.get(s.internal_customer_id)!);
    if (changes.size > WRITE_STEP_PEOPLE) return { nodes: await this.writeInSteps(workspaceId, [...changes.keys()], update, known?.nodes ?? new Map()) };
    return { nodes: await this.write(workspaceId, [...changes.keys()], update, known) };
  }

  /**
   * A writer's own commit (its heads now `at`), on top of what it read (`known`: stored pages and the
   * changes pending on them): kept in memory while the pending records stay under PENDING_MAX_RECORDS
   * (the heads' stateSeq stays behind; nothing is written), else written to the pages with everything pending.
   */
  private async applyCommitted(workspaceId: number, changes: Map<string, PersonChanges>, known: StateRead, heads: { people: Head; attributes: Head }): Promise<Applied | undefined> {
    const pending = new Map(known.pending);
    let records = known.records ?? 0;
    for (const [id, c] of changes) {
      records += c.people.length + c.attributes.length;
      const before = pending.get(id);
      pending.set(id, before ? { people: [...before.people, ...c.people], attributes: [...before.attributes, ...c.attributes] } : c);
    }
    // Kept while few enough to replay and to hold in memory, else written now. The pages held take
    // what the pending records leave, and leave them at least PENDING_MIN_SHARE of the memory (a
    // workspace larger than memory keeps as many pages as fit, people-recent.ts).
    const pages = Math.min(rememberedBytes(known.nodes, 0), this.memoryBytes * (1 - PENDING_MIN_SHARE));
    if (records < PENDING_MAX_RECORDS && records * PENDING_RECORD_BYTES + pages <= this.memoryBytes) {
      this.recent.remember(workspaceId, { people: heads.people.seq, attributes: heads.attributes.seq, heads }, known.nodes, pending, records);
      return { deferred: true };
    }
    return { nodes: await this.writeInSteps(workspaceId, [...pending.keys()], (s) => applyChanges(s, pending.get(s.internal_customer_id)!), known.nodes) };
  }

  /**
   * write() of the people whose pages are held (`nodes`) at once (no read: every page written once, in
   * parallel), then of the others in steps of WRITE_STEP_PEOPLE people in place order, letting go of
   * pages down to half the memory bound after each step. Returns the nodes when every write took one
   * round (no conflict), else undefined.
   */
  private async writeInSteps(workspaceId: number, ids: string[], update: (s: PersonState) => PersonState | undefined, nodes: PageNodes): Promise<PageNodes | undefined> {
    const inHeld: string[] = [];
    const placed: { id: string; place: { partition: number; bits: string } }[] = [];
    for (const id of ids) {
      const place = placeOf(id);
      if (heldLeaf(nodes.get(place.partition), place.bits)) inHeld.push(id);
      else placed.push({ id, place });
    }
    let kept: PageNodes | undefined = nodes;
    if (inHeld.length > 0) kept = await this.write(workspaceId, inHeld, update, await this.read(workspaceId, inHeld, { nodes }));
    placed.sort((a, b) => a.place.partition - b.place.partition || (a.place.bits < b.place.bits ? -1 : a.place.bits > b.place.bits ? 1 : 0));
    for (let i = 0; i < placed.length; i += WRITE_STEP_PEOPLE) {
      const step = placed.slice(i, i + WRITE_STEP_PEOPLE).map((p) => p.id);
      const stored = await this.read(workspaceId, step, { nodes: kept ?? new Map() });
      const after = await this.write(workspaceId, step, update, stored);
      kept = kept && after;
      trimPages(after ?? stored.nodes, 0, this.memoryBytes / 2);
    }
    return kept;
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
    // Whether every write so far went through at once (no conflict, no unit over its bytes): the nodes are then as written.
    let clean = true;
    for (let attempt = 0; pending.length > 0; ) {
      const plan = planWrites(workspaceId, pending, r, update);
      if (plan.transactions.length === 0 && plan.unread.length === 0) return clean ? r.nodes : undefined;
      // The gone index first: a person is never gone in the state without being in it.
      for (let i = 0; i < plan.gone.length; i += 100) {
        await this.goneTable.submitTransaction(plan.gone.slice(i, i + 100).map((id) => ['upsert', { partitionKey: String(workspaceId), rowKey: encodeKey(id) }, 'Merge'] as TransactionAction));
      }
      try {
        const etags = new Map<string, string | undefined>();
        await pool(plan.transactions, 8, async (tx) => {
          for (const [key, etag] of await this.commit(tx)) etags.set(key, etag);
        });
        const nodes: PageNodes | undefined = clean && plan.deferred.length === 0 ? written(r.nodes, plan.nodes, etags) : undefined;
        clean = nodes !== undefined;
        pending = [...plan.deferred, ...plan.unread];
        if (pending.length === 0) return nodes;
        if (nodes) {
          // Sketches to rewrite: read whole (the rest of the nodes stays as written), then written.
          for (const page of plan.unreadPages) nodes.get(page.partition)?.set(page.prefix, 'leaf');
          r = await this.read(workspaceId, pending, { nodes });
          continue;
        }
      } catch (e) {
        if (!isConflict(e) && !isNotFound(e)) throw e;
        clean = false;
        await backoff(attempt++);
      }
      r = await this.read(workspaceId, pending);
    }
    return undefined;
  }

  /** Pages a writer just wrote at these heads (the logs' seqs its state reflects; as written, with ETags, when known), for its next request. */
  remember(workspaceId: number, at: { people: number; attributes: number; heads?: { people: Head; attributes: Head } }, nodes: PageNodes | undefined): void {
    if (nodes) this.recent.remember(workspaceId, at, nodes);
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
    this.recent.forget(workspaceId);
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
   * Where a people writer starts: the heads, with what this process remembers at exactly those heads
   * (pages and changes not yet written: the state at the heads without a read), or else caught up.
   */
  async start(workspaceId: number, fromMemory = false): Promise<WriterStart> {
    await this.migrated(workspaceId);
    // Without reading the heads: the commit is guarded by their ETags (a conflict retries with fromMemory false).
    const latest = fromMemory ? this.recent.latest(workspaceId) : undefined;
    if (latest?.heads) return { ...latest.heads, remembered: latest };
    const [people, attributes] = await Promise.all([this.source.head(workspaceId, 'people'), this.source.head(workspaceId, 'attributes')]);
    const remembered = this.recent.at(workspaceId, { people: people.seq, attributes: attributes.seq });
    if (remembered) return { people, attributes, remembered };
    if (people.stateSeq >= people.seq && attributes.stateSeq >= attributes.seq) return { people, attributes };
    return this.catchUp(workspaceId);
  }

  /**
   * Records that the state reflects the logs through these seqs (never moves stateSeq backwards).
   * With the heads' ETags of the commit that made these seqs (nobody can have moved them further
   * unless the ETag changed), both heads in one request; otherwise, or on a conflict, head by head.
   */
  async markApplied(workspaceId: number, peopleSeq: number, attributesSeq: number, etags?: { people?: string; attributes?: string }): Promise<{ people?: string; attributes?: string } | undefined> {
    const index = this.storage.table(TABLES.sourceIndex);
    const pk = String(workspaceId);
    if (etags?.people && etags.attributes) {
      const merge = (fileType: 'people' | 'attributes', seq: number, etag: string): TransactionAction => ['update', { partitionKey: pk, rowKey: `head|${fileType}`, stateSeq: int64(seq) }, 'Merge', { etag }];
      try {
        const response = await index.submitTransaction([merge('people', peopleSeq, etags.people), merge('attributes', attributesSeq, etags.attributes)]);
        // The heads' new ETags (sub-responses in the order of the actions).
        return { people: response.subResponses[0]?.etag, attributes: response.subResponses[1]?.etag };
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
    // The pages must hold the state through `seq` (a writer may hold later changes in memory: people-recent.ts).
    if ((await this.source.head(workspaceId, 'people')).stateSeq < seq) await this.catchUp(workspaceId);
    const candidates = [...(await this.goneCandidates(workspaceId, new Set(ids)))];
    const out = new Set<string>();
    // In chunks: only the answer is kept, not the pages of a whole file's people.
    for (let i = 0; i < candidates.length; i += 2_000) {
      const { states } = await this.read(workspaceId, candidates.slice(i, i + 2_000));
      for (const s of states.values()) if (goneAt(s, seq)) out.add(s.internal_customer_id);
    }
    return out;
  }

  /**
   * Whether anyone in the workspace may have been gone (deleted or suppressed) by people-log `seq`:
   * false when the gone index is empty (a person is never gone in the state without being in it).
   */
  async anyGone(workspaceId: number, seq: number): Promise<boolean> {
    await this.migrated(workspaceId);
    // The gone index must hold the state through `seq`, as for goneAt (a writer may hold later changes in memory).
    if ((await this.source.head(workspaceId, 'people')).stateSeq < seq) await this.catchUp(workspaceId);
    await this.goneIndexBuilt(workspaceId);
    const query = { filter: `PartitionKey eq '${workspaceId}'`, select: ['RowKey'] };
    for await (const _ of this.goneTable.listEntities({ queryOptions: query })) return true;
    return false;
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

const compare = (a: [string, string], b: [string, string]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);

/** A scan position of this layout: `#<partition hex>|<bits>|<encoded id>`. */
function parsePosition(position: string): { partition: number; last?: [string, string] } {
  if (position === '') return { partition: 0 };
  const [partition, bits, id] = position.slice(1).split('|');
  return { partition: parseInt(partition, 16), last: [bits, decodeKey(id)] };
}

/** Runs `fn` over `items` with at most `concurrency` at once. */
export async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
