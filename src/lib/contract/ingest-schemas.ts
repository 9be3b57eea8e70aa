// zod schemas for ingest bodies, derived from the column table in schemas.ts (no second copy of a column list).
import { z } from 'zod';
import { ingestColumns, SCHEMAS, type Column, type FileType } from './schemas.js';
import { encodeKey } from '../platform/storage.js';

/** Records per ingest request: large enough for efficient batches, small enough to bound memory. */
export const MAX_RECORDS_PER_REQUEST = 5000;
const MAX_STRING = 4 * 1024 * 1024;
const MAX_KEY = 1024;

/** ISO-8601 date-time with a zone (Z or ±hh:mm) → epoch milliseconds. */
export const timestamp = z.iso
  .datetime({ offset: true })
  .transform((s) => Date.parse(s))
  .refine((ms) => Number.isFinite(ms), 'not a valid date-time');

function columnSchema(column: Column, isKey: boolean): z.ZodType {
  let base: z.ZodType;
  switch (column.type) {
    case 'INTEGER':
      base = z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
      break;
    case 'STRING':
      base = isKey ? z.string().min(1).max(MAX_KEY) : z.string().max(MAX_STRING);
      break;
    case 'BOOLEAN':
      base = z.boolean();
      break;
    case 'TIMESTAMP':
      base = timestamp;
      break;
  }
  return column.required ? base : base.nullable().optional();
}

function recordSchema(fileType: FileType) {
  const pk = SCHEMAS[fileType].primaryKey;
  const shape: Record<string, z.ZodType> = {};
  for (const c of ingestColumns(fileType)) shape[c.name] = columnSchema(c, pk.includes(c.name));
  return z.strictObject(shape);
}

/** Attribute values live in the person's state entity (1 MiB in all), so each is kept small. */
export const MAX_ATTRIBUTE_VALUE = 64 * 1024;
const attributeValue = z.union([z.string().max(MAX_ATTRIBUTE_VALUE), z.number(), z.boolean(), z.null()]);
// "__proto__" would be an object's prototype, not a key, in every JS consumer of the state.
const attributeName = z
  .string()
  .min(1)
  .max(MAX_KEY)
  .refine((n) => n !== '__proto__', 'the attribute name "__proto__" is reserved');
/** A person's key is a Table RowKey (1 KiB, after escaping) in the people state. */
const personKey = z
  .string()
  .min(1)
  .max(MAX_KEY)
  .refine((id) => encodeKey(id).length <= 512, 'internal_customer_id is too long (at most 512 characters, fewer with / \\ # ? % or control characters)');

/** People records: profile fields plus optional attribute changes (null removes an attribute). */
export const personRecord = z.strictObject({
  internal_customer_id: personKey,
  customer_id: z.string().min(1).max(MAX_KEY),
  email_addr: z.string().max(MAX_KEY).nullable().optional(),
  deleted: z.boolean().nullable().optional(),
  suppressed: z.boolean().nullable().optional(),
  created_at: timestamp.optional(),
  updated_at: timestamp.optional(),
  attributes: z.record(attributeName, attributeValue).optional(),
});
export type PersonRecord = z.infer<typeof personRecord>;

/** Attribute rows sent directly to ingest/attributes. */
export const attributeRecord = z.strictObject({
  internal_customer_id: personKey,
  attribute_name: attributeName,
  attribute_value: attributeValue,
  timestamp: timestamp.optional(),
});
export type AttributeRecord = z.infer<typeof attributeRecord>;

const batch = <T extends z.ZodType>(record: T) => z.array(record).min(1).max(MAX_RECORDS_PER_REQUEST);

export const INGEST_BODIES = {
  deliveries: batch(recordSchema('deliveries')),
  metrics: batch(recordSchema('metrics')),
  subjects: batch(recordSchema('subjects')),
  outputs: batch(recordSchema('outputs')),
  content: batch(recordSchema('content')),
  events: batch(recordSchema('events')),
  people: batch(personRecord),
  attributes: batch(attributeRecord),
} satisfies Record<FileType, z.ZodType>;

/** workspaceId route parameter: a positive integer (it is the INTEGER workspace_id column). */
export const workspaceId = z
  .string()
  .regex(/^[1-9][0-9]{0,15}$/, 'must be a positive integer in canonical form (digits only, no sign, no leading zero)')
  .transform(Number)
  .refine((n) => Number.isSafeInteger(n), 'is too large');

export interface FieldError {
  path: string;
  message: string;
}

/** zod issues → the machine-readable list a 400 answer carries. */
export function fieldErrors(error: z.ZodError, limit = 100): FieldError[] {
  return error.issues.slice(0, limit).map((i) => ({
    path: i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(body)',
    message: i.message,
  }));
}
