// Idempotent ingest (SPEC section 6): a request's Idempotency-Key and its answer are written in the
// same entity-group transaction that commits its segments (the workspace's partition of the
// `sourceindex` table), so a duplicate, late or concurrent, can never commit a second time: its own
// transaction conflicts, and it answers with what the first one stored.
//
// Expiry (Table Storage has no TTL): an entry older than 24 hours counts as absent and is
// overwritten when its key comes back; each keyed request also deletes up to SWEEP_MAX expired
// entries of its workspace, found through a time-ordered index row, so keys nobody sends again do
// not pile up.
import { createHash } from 'node:crypto';
import type { TransactionAction } from '@azure/data-tables';
import type { AppStorage } from '../platform/storage.js';
import { encodeKey, int64, num, TABLES } from '../platform/storage.js';
import { UserError, isNotFound } from '../platform/errors.js';
import { pad20 } from '../contract/naming.js';
import type { Clock } from '../platform/clock.js';

export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** Expired entries a keyed request deletes, at most. */
export const SWEEP_MAX = 20;
const KEY = /^[\x20-\x7e]{1,128}$/;

const keyRow = (key: string) => `idem|${encodeKey(key)}`;
const EXPIRY_PREFIX = 'idemexp|';
const expiryRow = (at: number, key: string) => `${EXPIRY_PREFIX}${pad20(at)}|${encodeKey(key)}`;

/** The Idempotency-Key header: undefined when absent; a 400 unless 1-128 printable ASCII characters. */
export function parseIdempotencyKey(header: string | null | undefined): string | undefined {
  if (header === null || header === undefined) return undefined;
  if (!KEY.test(header)) {
    throw new UserError('invalid_idempotency_key', 'the Idempotency-Key header must be 1 to 128 printable ASCII characters; nothing was stored', 400, [
      { path: 'Idempotency-Key', message: header.length === 0 ? 'empty' : header.length > 128 ? `${header.length} characters, at most 128` : 'characters outside printable ASCII (0x20-0x7E)' },
    ]);
  }
  return header;
}

/** One keyed request: its key and what it asked for (a key sent again with another request is refused). */
export interface Claim {
  key: string;
  request: string;
}

export function claim(key: string, fileType: string, body: unknown): Claim {
  return { key, request: createHash('sha256').update(`${fileType}\n${JSON.stringify(body)}`).digest('base64url') };
}

/** Thrown from inside a commit when the key was accepted already: the first answer. */
export class Replayed<T> extends Error {
  constructor(readonly answer: T & { replayed: true }) {
    super('idempotency key already accepted');
  }
}

interface Entry {
  request: string;
  answer: string;
  at: bigint;
  etag: string;
}

export class IdempotencyKeys {
  constructor(
    private readonly storage: AppStorage,
    private readonly clock: Clock,
  ) {}

  private get table() {
    return this.storage.table(TABLES.sourceIndex);
  }

  /** The first answer if the key was accepted within 24 hours (a 409 if for another request), else undefined. */
  async replay<T>(workspaceId: number, c: Claim): Promise<(T & { replayed: true }) | undefined> {
    const entry = await this.fresh(workspaceId, c);
    return entry?.fresh ? this.answerOf<T>(entry) : undefined;
  }

  /**
   * The transaction actions that record the key with `answer`; throws Replayed when the key was
   * accepted meanwhile (a concurrent duplicate won). Called again on every attempt of a commit.
   */
  async record<T>(workspaceId: number, c: Claim, answer: T): Promise<TransactionAction[]> {
    const entry = await this.fresh(workspaceId, c);
    if (entry && entry.fresh) throw new Replayed(this.answerOf<T>(entry));
    const at = this.clock.now();
    const pk = String(workspaceId);
    const row = { partitionKey: pk, rowKey: keyRow(c.key), request: c.request, answer: JSON.stringify(answer), at: int64(at) };
    return [
      // An expired entry is replaced only if nobody replaced it since it was read.
      entry ? ['update', row, 'Replace', { etag: entry.etag }] : ['create', row],
      ['create', { partitionKey: pk, rowKey: expiryRow(at, c.key), key: c.key, at: int64(at) }],
    ] as TransactionAction[];
  }

  /** Deletes up to SWEEP_MAX entries of the workspace older than 24 hours; returns how many. */
  async sweep(workspaceId: number): Promise<number> {
    const pk = String(workspaceId);
    const filter = `PartitionKey eq '${pk}' and RowKey gt '${EXPIRY_PREFIX}' and RowKey lt '${EXPIRY_PREFIX}${pad20(this.clock.now() - IDEMPOTENCY_TTL_MS)}'`;
    const page = await this.table.listEntities<{ key: string; at: bigint }>({ queryOptions: { filter } }).byPage({ maxPageSize: SWEEP_MAX }).next();
    const expired = page.done ? [] : page.value.slice(0, SWEEP_MAX);
    const gone = (e: unknown) => {
      if (!isNotFound(e) && (e as { statusCode?: number })?.statusCode !== 412) throw e;
    };
    await Promise.all(
      expired.map(async (x) => {
        // The entry goes only if it is still the one this index row points at (its key was not reused since).
        const entry = await this.table.getEntity<Entry>(pk, keyRow(x.key)).catch((e) => (gone(e), undefined));
        if (entry && num(entry.at) === num(x.at)) await this.table.deleteEntity(pk, keyRow(x.key), { etag: entry.etag }).catch(gone);
        await this.table.deleteEntity(pk, x.rowKey!).catch(gone);
      }),
    );
    return expired.length;
  }

  /** The stored entry (undefined when absent), `fresh` when within 24 hours; a 409 if fresh for another request. */
  private async fresh(workspaceId: number, c: Claim): Promise<(Entry & { fresh: boolean }) | undefined> {
    let entry: Entry;
    try {
      entry = await this.table.getEntity<Entry>(String(workspaceId), keyRow(c.key));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    const fresh = this.clock.now() - num(entry.at) < IDEMPOTENCY_TTL_MS;
    if (fresh && entry.request !== c.request) {
      throw new UserError('idempotency_key_reused', 'this Idempotency-Key was used in the past 24 hours for a different request (another file type or body); nothing was stored. Use a new key for a new request', 409);
    }
    return { ...entry, fresh };
  }

  private answerOf<T>(entry: Entry): T & { replayed: true } {
    return { ...(JSON.parse(entry.answer) as T), replayed: true };
  }
}
