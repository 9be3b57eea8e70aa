// A person's state as stored: packed into a page's line, or as an entity of its own (a person too
// large for a page, and the previous layout's one entity per person).
import { decodeKey, int64, num } from '../platform/storage.js';
import { chunked, joinChunks } from './people-pages.js';
import type { PersonState } from './people-state.js';

export function emptyState(id: string): PersonState {
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

export function toEntity(partitionKey: string, rowKey: string, s: PersonState) {
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
export type Packed = [string | null, string | null, number, number | null, number | null, PersonState['attrs'], number | null, [number, number][], number, number];

export function pack(s: PersonState): Packed {
  const base = s.updated_at ?? 0;
  const attrs: PersonState['attrs'] = {};
  // defineProperty, not assignment: a name like "__proto__" must stay a key.
  for (const [name, [value, at]] of Object.entries(s.attrs)) Object.defineProperty(attrs, name, { value: [value, at - base], enumerable: true });
  return [s.customer_id, s.email_addr, (s.deleted ? 1 : 0) | (s.suppressed ? 2 : 0), s.created_at, s.updated_at, attrs, s.goneSince, s.goneBefore, s.pseq, s.aseq];
}

export function unpack(id: string, json: string): PersonState {
  const [customer_id, email_addr, flags, created_at, updated_at, attrs, goneSince, goneBefore, pseq, aseq] = JSON.parse(json) as Packed;
  for (const a of Object.values(attrs)) a[1] += updated_at ?? 0;
  return { internal_customer_id: id, customer_id, email_addr, deleted: (flags & 1) !== 0, suppressed: (flags & 2) !== 0, created_at, updated_at, attrs, goneSince, goneBefore, pseq, aseq };
}
