// fast-check generators of inputs that are malformed by construction (independent of the app's
// zod schemas): a valid record of the SPEC section 2 columns is broken by at least one mutation that
// no reading of the contract allows (a required field missing, a value of the wrong type, an unknown
// key, a timestamp without zone, a key that is empty or too long, ...).
import fc from 'fast-check';
import { SCHEMAS, ingestColumns, type Column, type FileType } from '../../src/lib/contract/schemas.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Rec = Record<string, Json>;

const MAX_KEY = 1024;
const iso = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());

/** Timestamps the contract (ISO-8601 with a zone) does not allow. */
export const badTimestamp: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom(
    '2026-01-01',
    '2026-01-01T00:00:00',
    '2026-01-01 00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-01-32T00:00:00Z',
    '2026-01-01T25:00:00Z',
    '2026-01-01T00:61:00Z',
    'yesterday',
    'now',
    '',
    'T00:00:00Z',
    '01/02/2026',
    '2026-01-01T00:00:00+25:00',
    'NaN',
    '∞',
  ),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.array(fc.string(), { maxLength: 2 }),
  fc.string({ maxLength: 12 }).filter((s) => !/^\d{4}-\d\d-\d\dT/.test(s)),
);

/** A value that is not of the column's type (null only where the column is required). */
function wrongValue(c: Column): fc.Arbitrary<Json> {
  const nested: fc.Arbitrary<Json> = fc.oneof(fc.array(fc.jsonValue() as fc.Arbitrary<Json>, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue() as fc.Arbitrary<Json>, { maxKeys: 3 }));
  const nullIfRequired = c.required ? [fc.constant(null)] : [];
  switch (c.type) {
    case 'INTEGER':
      return fc.oneof(
        fc.string(),
        fc.boolean(),
        nested,
        fc.constantFrom(1.5, -0.25, 1e300, -1e300, 2 ** 60, -(2 ** 60), 9007199254740992, '12', '0x10'),
        fc.double({ noInteger: true, noDefaultInfinity: true, noNaN: true }),
        ...nullIfRequired,
      );
    case 'STRING':
      return fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), nested, ...nullIfRequired);
    case 'BOOLEAN':
      return fc.oneof(fc.constantFrom('true', 'false', 0, 1, 'yes'), fc.integer(), nested, ...nullIfRequired);
    case 'TIMESTAMP':
      return fc.oneof(badTimestamp, nested, ...nullIfRequired);
  }
}

function validValue(c: Column, isKey: boolean): fc.Arbitrary<Json> {
  switch (c.type) {
    case 'INTEGER':
      return fc.integer({ min: -1_000_000, max: 1_000_000 });
    case 'STRING':
      return isKey ? fc.string({ minLength: 1, maxLength: 12 }) : fc.string({ maxLength: 12 });
    case 'BOOLEAN':
      return fc.boolean();
    case 'TIMESTAMP':
      return iso;
  }
}

interface Shape {
  columns: Column[];
  keys: string[];
  /** Fields outside the column list that the route accepts (people: attributes). */
  more?: Record<string, fc.Arbitrary<Json>>;
}

const attributeValue: fc.Arbitrary<Json> = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null));
const col = (name: string, type: Column['type'], required: boolean): Column => ({ name, type, required });

function shape(fileType: FileType): Shape {
  if (fileType === 'people') {
    return {
      columns: [
        col('internal_customer_id', 'STRING', true),
        col('customer_id', 'STRING', true),
        col('email_addr', 'STRING', false),
        col('deleted', 'BOOLEAN', false),
        col('suppressed', 'BOOLEAN', false),
        col('created_at', 'TIMESTAMP', false),
        col('updated_at', 'TIMESTAMP', false),
      ],
      keys: ['internal_customer_id', 'customer_id'],
      more: { attributes: fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }).filter((k) => k !== '__proto__'), attributeValue, { maxKeys: 3 }) },
    };
  }
  if (fileType === 'attributes') {
    return {
      columns: [col('internal_customer_id', 'STRING', true), col('attribute_name', 'STRING', true), col('timestamp', 'TIMESTAMP', false)],
      keys: ['internal_customer_id', 'attribute_name'],
      more: { attribute_value: attributeValue },
    };
  }
  const cols = [...ingestColumns(fileType)];
  return { columns: cols, keys: [...SCHEMAS[fileType].primaryKey] };
}

/** A record the contract accepts (optional fields present, null or absent). */
export function validRecord(fileType: FileType): fc.Arbitrary<Rec> {
  const s = shape(fileType);
  const fields: Record<string, fc.Arbitrary<Json | undefined>> = {};
  for (const c of s.columns) {
    const v = validValue(c, s.keys.includes(c.name));
    fields[c.name] = c.required ? v : fc.oneof(v, fc.constant(null), fc.constant(undefined));
  }
  for (const [k, a] of Object.entries(s.more ?? {})) fields[k] = k === 'attribute_value' ? a : fc.option(a, { nil: undefined });
  return fc.record(fields).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as Rec);
}

export type Mutation = 'dropRequired' | 'wrongType' | 'extraKey' | 'badKey' | 'badTimestamp' | 'notObject' | 'badAttributes';

/** A record broken by one mutation that makes it invalid whatever the other fields are. */
export function brokenRecord(fileType: FileType): fc.Arbitrary<{ mutation: Mutation; record: Json }> {
  const s = shape(fileType);
  const required = [...s.columns.filter((c) => c.required).map((c) => c.name), ...(fileType === 'attributes' ? ['attribute_value'] : [])];
  const known = new Set([...s.columns.map((c) => c.name), ...Object.keys(s.more ?? {})]);
  const timestamps = s.columns.filter((c) => c.type === 'TIMESTAMP');
  const options: fc.Arbitrary<{ mutation: Mutation; record: Json }>[] = [
    fc.tuple(validRecord(fileType), fc.constantFrom(...required)).map(([r, k]) => {
      const { [k]: _gone, ...rest } = r;
      return { mutation: 'dropRequired' as const, record: rest };
    }),
    fc.tuple(validRecord(fileType), fc.constantFrom(...s.columns)).chain(([r, c]) => wrongValue(c).map((v) => ({ mutation: 'wrongType' as const, record: { ...r, [c.name]: v } }))),
    fc.tuple(validRecord(fileType), fc.string({ minLength: 1, maxLength: 10 }).filter((k) => !known.has(k)), fc.jsonValue() as fc.Arbitrary<Json>).map(([r, k, v]) => ({
      mutation: 'extraKey' as const,
      record: { ...r, [k]: v },
    })),
    fc.tuple(validRecord(fileType), fc.constantFrom(...s.keys), fc.constantFrom('', 'k'.repeat(MAX_KEY + 1))).map(([r, k, v]) => ({ mutation: 'badKey' as const, record: { ...r, [k]: v } })),
    fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue() as fc.Arbitrary<Json>, { maxLength: 3 })).map((v) => ({ mutation: 'notObject' as const, record: v })),
  ];
  if (timestamps.length) {
    options.push(
      fc.tuple(validRecord(fileType), fc.constantFrom(...timestamps), badTimestamp.filter((v) => v !== null)).map(([r, c, v]) => ({ mutation: 'badTimestamp' as const, record: { ...r, [c.name]: v } })),
    );
  }
  if (fileType === 'people') {
    const badAttrs: fc.Arbitrary<Json> = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.boolean(),
      fc.array(fc.string(), { maxLength: 3 }),
      fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }).filter((k) => k !== '__proto__'), fc.oneof(fc.array(fc.integer(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { minKeys: 1, maxKeys: 2 })), { minKeys: 1, maxKeys: 2 }),
      fc.constant({ '': 'empty name' }),
    );
    options.push(fc.tuple(validRecord(fileType), badAttrs).map(([r, a]) => ({ mutation: 'badAttributes' as const, record: { ...r, attributes: a } })));
  }
  if (fileType === 'attributes') {
    options.push(
      fc.tuple(validRecord(fileType), fc.oneof(fc.array(fc.integer(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { minKeys: 1, maxKeys: 2 }))).map(([r, v]) => ({
        mutation: 'badAttributes' as const,
        record: { ...r, attribute_value: v },
      })),
    );
  }
  return fc.oneof(...options);
}

export type BodyKind = 'notArray' | 'emptyArray' | 'batchWithBrokenRecord' | 'notJson' | 'truncatedJson';

/** A whole ingest body that must be refused: the raw text sent and what kind it is. */
export function badIngestBody(fileType: FileType): fc.Arbitrary<{ kind: BodyKind | Mutation; text: string }> {
  const json = (kind: BodyKind | Mutation, v: Json) => ({ kind, text: JSON.stringify(v) });
  return fc.oneof(
    { weight: 1, arbitrary: fc.oneof(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue() as fc.Arbitrary<Json>, { maxKeys: 3 }), fc.string(), fc.integer(), fc.boolean(), fc.constant(null), validRecord(fileType)).map((v) => json('notArray', v)) },
    { weight: 1, arbitrary: fc.constant(json('emptyArray', [])) },
    {
      weight: 8,
      arbitrary: fc
        .tuple(fc.array(validRecord(fileType), { maxLength: 4 }), fc.array(brokenRecord(fileType), { minLength: 1, maxLength: 2 }), fc.nat())
        .map(([good, bad, at]) => {
          const records: Json[] = [...good];
          for (const b of bad) records.splice(at % (records.length + 1), 0, b.record);
          return json(bad[0].mutation, records);
        }),
    },
    {
      weight: 1,
      arbitrary: fc.string({ minLength: 1 }).filter((s) => {
        try {
          JSON.parse(s);
          return false;
        } catch {
          return true;
        }
      }).map((text) => ({ kind: 'notJson' as const, text })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.array(validRecord(fileType), { minLength: 1, maxLength: 3 }), fc.nat()).map(([records, cut]) => {
        const full = JSON.stringify(records);
        return { kind: 'truncatedJson' as const, text: full.slice(0, 1 + (cut % (full.length - 1))) };
      }),
    },
  );
}

// --- admin bodies ---

/** Blob paths that must be refused: traversal, backslashes, leading slashes, control characters. */
export const badBlobPath: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('..', '../up', 'a/../b', 'a/./b', '.', '/abs', '//x', 'a\\b', '\\\\server\\share', 'a//b', 'x/\u0000', 'a\u0007b', 'tab\there', 'new\nline', 'del\u007f'),
  fc.tuple(fc.string({ maxLength: 6 }), fc.constantFrom('..', '\\', '\u0001', '\u001f'), fc.string({ maxLength: 6 })).map(([a, bad, b]) => (bad === '..' ? `${a}/../${b}` : `${a}${bad}${b}`)),
  fc.string({ minLength: 1, maxLength: 8 }).map((s) => `/${s}`),
  fc.constant('p'.repeat(600)),
);

const notString: fc.Arbitrary<Json> = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), { maxKeys: 2 }));
const nonObjectBody: fc.Arbitrary<Json> = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue() as fc.Arbitrary<Json>, { maxLength: 3 }));
const notJsonText = fc.string({ minLength: 1 }).filter((s) => {
  try {
    JSON.parse(s);
    return false;
  } catch {
    return true;
  }
});

/** Bodies of PUT .../integration (and, with `validateOnly`, POST .../validate) that must be refused. */
export function badIntegrationBody(goodSas: string, validateOnly = false): fc.Arbitrary<{ kind: string; text: string }> {
  const j = (kind: string) => (v: Json) => ({ kind, text: JSON.stringify(v) });
  const extraKeys = validateOnly ? ['sasUrl', 'blobPath'] : ['sasUrl', 'blobPath', 'files', 'schemaVersion'];
  const variants: fc.Arbitrary<{ kind: string; text: string }>[] = [
    nonObjectBody.map(j('notObject')),
    notJsonText.map((text) => ({ kind: 'notJson', text })),
    fc.record({ blobPath: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }) }).map((r) => j('noSasUrl')(JSON.parse(JSON.stringify(r)))),
    notString.map((v) => j('sasUrlNotString')({ sasUrl: v })),
    fc.constantFrom('', 'x'.repeat(4097)).map((v) => j('sasUrlLength')({ sasUrl: v })),
    // Strings that are no container SAS: refused by form (sas_*) before anything is probed.
    fc.oneof(fc.string(), fc.webUrl(), fc.constantFrom('https://acct.blob.core.windows.net/c', 'https://acct.blob.core.windows.net/c?sv=1&ss=b&srt=sco&sp=racwl&sig=x', 'https://acct.blob.core.windows.net/c/blob?sv=1&sr=b&sp=racwl&sig=x', 'ftp://acct/c?sr=c&sig=x')).map((v) => j('notAContainerSas')({ sasUrl: v })),
    fc.tuple(fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !extraKeys.includes(k)), fc.jsonValue() as fc.Arbitrary<Json>).map(([k, v]) => j('extraKey')({ sasUrl: goodSas, [k]: v })),
    badBlobPath.map((p) => j('badBlobPath')({ sasUrl: goodSas, blobPath: p })),
    notString.filter((v) => v !== null).map((v) => j('blobPathNotString')({ sasUrl: goodSas, blobPath: v })),
  ];
  if (!validateOnly) {
    variants.push(
      fc.oneof(fc.string(), fc.integer(), fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), { maxKeys: 2 })).map((v) => j('filesNotArray')({ sasUrl: goodSas, files: v })),
      fc.array(fc.string({ maxLength: 10 }).filter((s) => !Object.values(SCHEMAS).some((x) => x.name === s || x.fileType === s)), { minLength: 1, maxLength: 3 }).map((v) => j('unknownFileType')({ sasUrl: goodSas, files: v })),
      fc.oneof(fc.string().filter((s) => s !== 'v1' && s !== 'v4'), fc.integer(), fc.constant(4)).map((v) => j('badSchemaVersion')({ sasUrl: goodSas, schemaVersion: v })),
    );
  }
  return fc.oneof(...variants);
}

/** Bodies of PUT .../integration/files/{type} that must be refused. */
export const badToggleBody: fc.Arbitrary<{ kind: string; text: string }> = fc.oneof(
  nonObjectBody.map((v) => ({ kind: 'notObject', text: JSON.stringify(v) })),
  notJsonText.map((text) => ({ kind: 'notJson', text })),
  fc.constant({ kind: 'missing', text: '{}' }),
  fc.oneof(fc.constantFrom('true', 'false', 'yes', 0, 1, null), fc.string(), fc.integer(), fc.array(fc.boolean(), { maxLength: 2 })).map((v) => ({ kind: 'notBoolean', text: JSON.stringify({ enabled: v }) })),
  fc.tuple(fc.boolean(), fc.string({ minLength: 1, maxLength: 8 }).filter((k) => k !== 'enabled'), fc.jsonValue()).map(([e, k, v]) => ({ kind: 'extraKey', text: JSON.stringify({ enabled: e, [k]: v }) })),
);

/** Bodies of POST .../integration/upgrade that must be refused. */
export const badUpgradeBody: fc.Arbitrary<{ kind: string; text: string }> = fc.oneof(
  nonObjectBody.map((v) => ({ kind: 'notObject', text: JSON.stringify(v) })),
  notJsonText.map((text) => ({ kind: 'notJson', text })),
  fc.constant({ kind: 'missing', text: '{}' }),
  fc.oneof(fc.string().filter((s) => s !== 'v1' && s !== 'v4'), fc.integer(), fc.constantFrom('V4', 'v5', 'v4 ', 4, null)).map((v) => ({ kind: 'badVersion', text: JSON.stringify({ schemaVersion: v }) })),
  fc.tuple(fc.string({ minLength: 1, maxLength: 8 }).filter((k) => k !== 'schemaVersion'), fc.jsonValue()).map(([k, v]) => ({ kind: 'extraKey', text: JSON.stringify({ schemaVersion: 'v4', [k]: v }) })),
);

/** workspaceId route values that are not a positive integer. */
export const badWorkspaceId: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('abc', '0', '-1', '-0', '1.5', 'NaN', 'Infinity', '-Infinity', '9007199254740993', '1'.repeat(30), 'null', 'undefined', '%00', 'true', '[1]', '1;2', '١٢'),
  fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !/^\s*[+-]?(\d|\.\d)/.test(s) && !/^\s*0[xob]/i.test(s) && !/^\s*$/.test(s)),
);

/** Export queue messages of the wrong form: raw text, base64 of non-JSON, JSON of the wrong shape. */
export const badQueueMessage: fc.Arbitrary<{ kind: string; text: string }> = fc.oneof(
  // Raw text (the host expects base64); printable, so the queue accepts it.
  fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme-ascii' }).filter((s) => s.trim().length > 0).map((s) => ({ kind: 'rawText', text: s })),
  // base64 of text that is no JSON object.
  fc.string({ minLength: 1, maxLength: 40 }).filter((s) => {
    try {
      const v = JSON.parse(s);
      return typeof v !== 'object' || v === null;
    } catch {
      return true;
    }
  }).map((s) => ({ kind: 'base64NotJson', text: Buffer.from(s).toString('base64') })),
  // base64 JSON of the wrong shape.
  fc.oneof(
    fc.record({ workspaceId: fc.oneof(fc.string(), fc.constantFrom(0, -1, 1.5, 2 ** 60, null, true)), fileType: fc.constantFrom('deliveries', 'people') }),
    fc.record({ workspaceId: fc.integer({ min: 1, max: 1000 }), fileType: fc.oneof(fc.string().filter((s) => !Object.keys(SCHEMAS).includes(s)), fc.integer(), fc.constantFrom('delivery_contents', 'Deliveries', null)) }),
    fc.record({ workspaceId: fc.integer({ min: 1, max: 1000 }) }),
    fc.record({ fileType: fc.constantFrom('deliveries', 'metrics') }),
    fc.tuple(fc.integer({ min: 1, max: 1000 }), fc.string({ minLength: 1, maxLength: 6 }).filter((k) => k !== 'workspaceId' && k !== 'fileType'), fc.jsonValue()).map(([ws, k, v]) => ({ workspaceId: ws, fileType: 'deliveries', [k]: v })),
    fc.array(fc.jsonValue(), { maxLength: 3 }),
    fc.constant({}),
  ).map((v) => ({ kind: 'wrongShape', text: Buffer.from(JSON.stringify(v)).toString('base64') })),
);
