// The platform's writes: validate a batch, then append it to the source log, all or nothing.
// People (and direct attribute rows) are diffed against people-state so that attribute rows
// come from real changes only.
import { INGEST_BODIES, fieldErrors, type AttributeRecord, type PersonRecord } from '../contract/ingest-schemas.js';
import { fileTypeByName, type FileType } from '../contract/schemas.js';
import { UserError } from '../platform/errors.js';
import { HeadMoved, type SourceLog, type SourceRecord } from './source-log.js';
import type { PeopleState, PersonChanges, PersonState } from './people-state.js';
import { applyAttributeRecord, applyPersonRecord, changeTimestamp, MAX_PERSON_ATTRIBUTES_CHARS } from './people-state.js';
import type { Clock } from '../platform/clock.js';
import { backoff } from './source-log.js';
import { claim, Replayed, type IdempotencyKeys } from './idempotency.js';
import type { TransactionAction } from '@azure/data-tables';

export interface IngestResult {
  accepted: number;
  /** Attribute rows derived from people records (real changes only). */
  attributeChanges?: number;
  /** The answer of an earlier request with the same Idempotency-Key: nothing was stored this time. */
  replayed?: true;
}

export interface IngestOptions {
  /** The request's Idempotency-Key (already checked with parseIdempotencyKey). */
  idempotencyKey?: string;
  /**
   * Work after the commit failed (the people state update, the sweep of expired keys): the request
   * is stored and answered as accepted; the people state is caught up by the next writer or export.
   */
  onFollowUpError?: (e: unknown) => void;
}

/** Resolves the `{fileType}` route token (the `<name>` of SPEC section 2, e.g. delivery_contents). */
export function parseFileTypeToken(token: string): FileType {
  const fileType = fileTypeByName(token);
  if (!fileType) {
    throw new UserError('unknown_file_type', `"${token}" is not a file type; use one of deliveries, metrics, subjects, outputs, delivery_contents, people, attributes, events`, 404);
  }
  return fileType;
}

/** Validates an ingest body; a UserError with a field-level list when anything is wrong. */
export function parseIngestBody(fileType: FileType, body: unknown): unknown[] {
  const parsed = INGEST_BODIES[fileType].safeParse(body);
  if (!parsed.success) {
    throw new UserError('invalid_records', `the ${fileType} batch was rejected; nothing was stored`, 400, fieldErrors(parsed.error));
  }
  return parsed.data as unknown[];
}

function compact(record: Record<string, unknown>): SourceRecord {
  const out: SourceRecord = {};
  for (const [k, v] of Object.entries(record)) if (v !== undefined && v !== null) out[k] = v;
  return out;
}

export const attributeText = (v: string | number | boolean | null): string | null =>
  v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);

/**
 * An upper bound of JSON.stringify(attrs).length without building it (a string's JSON is at most 6
 * characters per character and its quotes; a timestamp at most 24): the exact size is computed only
 * for a person near the limit.
 */
export function attrsCharsAtMost(attrs: PersonState['attrs']): number {
  let chars = 2;
  for (const name in attrs) {
    const value = attrs[name][0];
    chars += 6 * (name.length + (value?.length ?? 0)) + 36;
  }
  return chars;
}

export class Ingest {
  constructor(
    private readonly source: SourceLog,
    private readonly people: PeopleState,
    private readonly clock: Clock,
    private readonly keys: IdempotencyKeys,
  ) {}

  async ingest(workspaceId: number, fileType: FileType, body: unknown, options: IngestOptions = {}): Promise<IngestResult> {
    const records = parseIngestBody(fileType, body);
    const keyed = options.idempotencyKey === undefined ? undefined : claim(options.idempotencyKey, fileType, body);
    const followUp = (e: unknown) => options.onFollowUpError?.(e);
    // The key is recorded in the commit's own transaction (a concurrent duplicate's commit conflicts).
    const keyRecord = (answer: IngestResult) => (keyed ? () => this.keys.record(workspaceId, keyed, answer) : undefined);
    try {
      if (keyed) {
        const replay = await this.keys.replay<IngestResult>(workspaceId, keyed);
        if (replay) return replay;
      }
      let result: IngestResult;
      if (fileType === 'people') result = await this.ingestPeople(workspaceId, records as PersonRecord[], [], keyRecord, followUp);
      else if (fileType === 'attributes') result = await this.ingestPeople(workspaceId, [], records as AttributeRecord[], keyRecord, followUp);
      else {
        result = { accepted: records.length };
        await this.source.append(workspaceId, [{ fileType, records: (records as Record<string, unknown>[]).map(compact) }], undefined, keyRecord(result));
      }
      if (keyed) await this.keys.sweep(workspaceId).catch(followUp);
      return result;
    } catch (e) {
      if (e instanceof Replayed) return e.answer as IngestResult;
      throw e;
    }
  }

  /**
   * People and attribute rows: diff against the current state, append both logs in one transaction
   * guarded by both heads (so concurrent people writers serialize), then apply the state.
   */
  private async ingestPeople(
    workspaceId: number,
    persons: PersonRecord[],
    attributeRows: AttributeRecord[],
    keyRecord: (answer: IngestResult) => (() => Promise<TransactionAction[]>) | undefined,
    followUp: (e: unknown) => void,
  ): Promise<IngestResult> {
    for (let attempt = 0; ; attempt++) {
      // The state at the heads: what this process remembers at exactly them, or read (caught up). The
      // first attempt may take the heads its last commit wrote without reading them (the commit is
      // guarded by their ETags; a conflict retries from the heads as read).
      const heads = await this.people.start(workspaceId, attempt === 0);
      const ids = [...persons.map((p) => p.internal_customer_id), ...attributeRows.map((a) => a.internal_customer_id)];
      const known = await this.people.read(workspaceId, ids, heads.remembered ?? { nodes: new Map(), pending: new Map() });
      const working = new Map<string, PersonState>();
      const state = (id: string) => {
        let s = working.get(id);
        if (!s) {
          const k = known.states.get(id)!;
          working.set(id, (s = { ...k, attrs: { ...k.attrs } }));
        }
        return s;
      };
      const now = this.clock.now();
      const peopleOut: SourceRecord[] = [];
      const attrsOut: SourceRecord[] = [];
      const changeAttribute = (s: PersonState, name: string, value: string | null, at: number) => {
        const current = s.attrs[name]?.[0] ?? null;
        if (current === value) return; // an identical value (or removing an absent one) is no change
        const record = { internal_customer_id: s.internal_customer_id, attribute_name: name, attribute_value: value, timestamp: changeTimestamp(at, s.attrs[name]?.[1]) };
        attrsOut.push(record);
        applyAttributeRecord(s, 0, record);
      };
      for (const p of persons) {
        const s = state(p.internal_customer_id);
        const updatedAt = p.updated_at ?? now;
        const record: SourceRecord = {
          customer_id: p.customer_id,
          internal_customer_id: p.internal_customer_id,
          deleted: p.deleted ?? s.deleted,
          suppressed: p.suppressed ?? s.suppressed,
          created_at: p.created_at ?? s.created_at ?? now,
          updated_at: changeTimestamp(updatedAt, s.updated_at),
          email_addr: p.email_addr === undefined ? s.email_addr : p.email_addr,
        };
        peopleOut.push(record);
        applyPersonRecord(s, 0, record);
        for (const [name, value] of Object.entries(p.attributes ?? {})) changeAttribute(s, name, attributeText(value), updatedAt);
      }
      for (const a of attributeRows) changeAttribute(state(a.internal_customer_id), a.attribute_name, attributeText(a.attribute_value), a.timestamp ?? now);
      // Refuse (before anything is stored) what the person's state could not hold.
      for (const s of working.values()) {
        if (attrsCharsAtMost(s.attrs) > MAX_PERSON_ATTRIBUTES_CHARS && JSON.stringify(s.attrs).length > MAX_PERSON_ATTRIBUTES_CHARS) {
          throw new UserError('person_too_large', `the attributes of person "${s.internal_customer_id.slice(0, 64)}" would exceed ${MAX_PERSON_ATTRIBUTES_CHARS} characters in all; nothing was stored`, 400, [{ path: 'attributes', message: 'too large in all for one person' }]);
        }
      }

      const result = { accepted: persons.length + attributeRows.length, attributeChanges: attrsOut.length };
      let appended;
      try {
        appended = await this.source.append(
          workspaceId,
          [{ fileType: 'people', records: peopleOut.map(compact) }, { fileType: 'attributes', records: attrsOut.map((r) => ({ ...r })) }],
          [heads.people, heads.attributes],
          keyRecord(result),
        );
      } catch (e) {
        if (e instanceof HeadMoved) {
          await backoff(attempt);
          continue;
        }
        throw e;
      }
      // Apply what was committed to the state, with the seq_nums it was given.
      const changes = new Map<string, PersonChanges>();
      const entry = (id: string) => {
        let c = changes.get(id);
        if (!c) changes.set(id, (c = { people: [], attributes: [] }));
        return c;
      };
      const peopleSeq = appended.find((a) => a.fileType === 'people');
      const attrSeq = appended.find((a) => a.fileType === 'attributes');
      peopleOut.forEach((record, i) => entry(record.internal_customer_id as string).people.push({ seq: peopleSeq!.firstSeq + i, record }));
      attrsOut.forEach((record, i) => entry(record.internal_customer_id as string).attributes.push({ seq: attrSeq!.firstSeq + i, record }));
      // Committed: from here on the request is accepted whatever fails (catchUp repairs the state).
      // Our commit moved the heads from those we read to these: the state at them is known here, and is
      // kept in memory (people-recent.ts) or written to the pages when enough is pending.
      const at = { people: peopleSeq?.lastSeq ?? heads.people.seq, attributes: attrSeq?.lastSeq ?? heads.attributes.seq };
      const committed = peopleSeq?.head && attrSeq?.head ? { people: peopleSeq.head, attributes: attrSeq.head } : undefined;
      try {
        const applied = await this.people.apply(workspaceId, changes, known, committed);
        if (!applied?.deferred) {
          const etags = await this.people.markApplied(workspaceId, peopleSeq?.lastSeq ?? 0, attrSeq?.lastSeq ?? 0, { people: peopleSeq?.headEtag, attributes: attrSeq?.headEtag });
          const heads = committed && etags?.people && etags.attributes
            ? { people: { ...committed.people, stateSeq: at.people, etag: etags.people }, attributes: { ...committed.attributes, stateSeq: at.attributes, etag: etags.attributes } }
            : undefined;
          this.people.remember(workspaceId, { ...at, heads }, applied?.nodes);
        }
      } catch (e) {
        this.people.remember(workspaceId, at, undefined); // what this process held may not be the state
        followUp(e);
      }
      return result;
    }
  }
}
