// Azure Storage limits that Azurite does not enforce, as data, and pipeline policies that refuse a
// request over them the way Azure does (its status, error code and body), so a test on Azurite fails
// where Azure would. The policies are installed only with AZURE_LIMITS_STRICT=1 (the test setup sets
// it); in production Azure itself refuses.
import { createHttpHeaders, type PipelinePolicy, type PipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';
import { toHttpHeadersLike, type CompatResponse, type RequestPolicy, type RequestPolicyFactory, type WebResourceLike } from '@azure/core-http-compat';

const KiB = 1024;
const MiB = 1024 * KiB;

export const AZURE_LIMITS = {
  /** Entity-group transaction: operations, and bytes of the request body. */
  batchOperations: 100,
  batchBytes: 4 * MiB,
  /** An entity, measured the way Azure does (strings count UTF-16: 2 bytes a character). */
  entityBytes: 1 * MiB,
  /** One property value: 64 KiB, i.e. a string of at most 32K characters. */
  propertyBytes: 64 * KiB,
  /** Properties of an entity besides PartitionKey, RowKey and Timestamp. */
  entityProperties: 252,
  /** A queue message's text, UTF-8. */
  queueMessageBytes: 64 * KiB,
  /** One staged block, one Put Blob, and blocks in a committed block list. */
  blockBytes: 4000 * MiB,
  putBlobBytes: 5000 * MiB,
  blocksPerBlob: 50_000,
} as const;

/** True when the test setup asked for Azure's limits to be enforced on the clients (AZURE_LIMITS_STRICT=1). */
export const limitsStrict = (): boolean => process.env.AZURE_LIMITS_STRICT === '1';

export interface Refusal {
  status: number;
  code: string;
  message: string;
}

const refusals = {
  bodyTooLarge: (limit: number): Refusal => ({ status: 413, code: 'RequestBodyTooLarge', message: `The request body is too large and exceeds the maximum permissible limit (${limit} bytes).` }),
  tooManyOperations: (): Refusal => ({ status: 400, code: 'InvalidInput', message: `${AZURE_LIMITS.batchOperations - 1}:The batch request operation exceeds the maximum ${AZURE_LIMITS.batchOperations} changes per change set.` }),
  entityTooLarge: (): Refusal => ({ status: 400, code: 'EntityTooLarge', message: 'The entity is larger than the maximum allowed size (1MB).' }),
  propertyTooLarge: (): Refusal => ({ status: 400, code: 'PropertyValueTooLarge', message: 'The property value exceeds the maximum allowed size (64KB). If the property value is a string, it is UTF-16 encoded and the maximum number of characters should be 32K or less.' }),
  tooManyProperties: (): Refusal => ({ status: 400, code: 'TooManyProperties', message: 'The entity contains more properties than allowed. Each entity can include up to 252 properties to store data. Each entity also has 3 system properties.' }),
  blockListTooLong: (): Refusal => ({ status: 400, code: 'BlockListTooLong', message: `The block list may not contain more than ${AZURE_LIMITS.blocksPerBlob} blocks.` }),
};

// ---------------------------------------------------------------------------------------------
// Table Storage

/**
 * An upper estimate of what one operation adds to an entity-group transaction's body: its entity as
 * JSON (UTF-8, with type annotations), its keys again in the operation's URL, and its headers.
 */
export function batchOperationBytes(entity: { partitionKey: string; rowKey: string } & Record<string, unknown>): number {
  let bytes = 1024 + 3 * (encodeURIComponent(entity.partitionKey).length + encodeURIComponent(entity.rowKey).length);
  for (const [name, value] of Object.entries(entity)) {
    bytes += Buffer.byteLength(JSON.stringify(name)) + 48;
    if (typeof value === 'string') bytes += Buffer.byteLength(JSON.stringify(value));
    else if (value instanceof Uint8Array) bytes += Math.ceil(value.byteLength / 3) * 4 + 2;
    else bytes += 32;
  }
  return bytes;
}

/** Splits operations into entity-group transactions that Azure accepts: at most 100 operations and 4 MiB each. */
export function transactionChunks<A extends readonly [string, { partitionKey: string; rowKey: string } & Record<string, unknown>, ...unknown[]]>(actions: A[]): A[][] {
  const budget = AZURE_LIMITS.batchBytes - 64 * 1024; // the batch's own boundaries and headers
  const chunks: A[][] = [];
  let current: A[] = [];
  let bytes = 0;
  for (const action of actions) {
    const size = batchOperationBytes(action[1]);
    if (current.length > 0 && (current.length === AZURE_LIMITS.batchOperations || bytes + size > budget)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(action);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

const EDM_FIXED: Record<string, number> = { 'Edm.Int64': 8, 'Edm.Double': 8, 'Edm.DateTime': 8, 'Edm.Guid': 16, 'Edm.Int32': 4, 'Edm.Boolean': 1 };

/** Bytes Azure stores for a property value (a string: 2 a UTF-16 code unit). */
function valueBytes(value: unknown, type: unknown): number {
  if (type === 'Edm.Binary') return Buffer.from(String(value), 'base64').length;
  if (typeof type === 'string' && type in EDM_FIXED) return EDM_FIXED[type];
  if (typeof value === 'string') return value.length * 2;
  if (typeof value === 'boolean') return 1;
  if (typeof value === 'number') return Number.isInteger(value) ? 4 : 8;
  return 0;
}

/**
 * An entity as sent (OData JSON, `name@odata.type` annotations) checked against the property, count
 * and size limits. Size as Azure documents it: 4 + 2 × len(PartitionKey + RowKey) + Σ (8 + 2 × len(name) + value).
 */
export function entityRefusal(entity: Record<string, unknown>): Refusal | undefined {
  let size = 4;
  let properties = 0;
  for (const [name, value] of Object.entries(entity)) {
    if (name.startsWith('odata.') || name.includes('@odata.') || name === 'Timestamp') continue;
    if (name === 'PartitionKey' || name === 'RowKey') {
      size += String(value).length * 2;
      continue;
    }
    const type = entity[`${name}@odata.type`];
    const bytes = valueBytes(value, type);
    if (bytes > AZURE_LIMITS.propertyBytes) return refusals.propertyTooLarge();
    properties++;
    size += 8 + name.length * 2 + bytes + (typeof value === 'string' || type === 'Edm.Binary' ? 4 : 0);
  }
  if (properties > AZURE_LIMITS.entityProperties) return refusals.tooManyProperties();
  if (size > AZURE_LIMITS.entityBytes) return refusals.entityTooLarge();
  return undefined;
}

/** The entity bodies of a `$batch` request (multipart/mixed, one changeset), in order. */
function batchOperations(body: string): (Record<string, unknown> | undefined)[] {
  const boundary = /boundary=(changeset_[^\r\n;]+)/.exec(body)?.[1];
  if (!boundary) return [];
  return body
    .split(`--${boundary}`)
    .slice(1)
    .filter((part) => !part.startsWith('--'))
    .map((part) => {
      const open = part.indexOf('{');
      return open < 0 ? undefined : (JSON.parse(part.slice(open, part.lastIndexOf('}') + 1)) as Record<string, unknown>);
    });
}

/** What Azure answers a Table request over its limits; undefined when Azure accepts it. */
export function tableRefusal(method: string, url: string, body: unknown): { refusal: Refusal; batchIndex?: number } | undefined {
  if (typeof body !== 'string' || body.length === 0) return undefined;
  if (method === 'POST' && new URL(url).pathname.endsWith('/$batch')) {
    const bytes = Buffer.byteLength(body);
    if (bytes > AZURE_LIMITS.batchBytes) return { refusal: refusals.bodyTooLarge(AZURE_LIMITS.batchBytes) };
    const operations = batchOperations(body);
    if (operations.length > AZURE_LIMITS.batchOperations) return { refusal: refusals.tooManyOperations(), batchIndex: AZURE_LIMITS.batchOperations - 1 };
    for (const [i, entity] of operations.entries()) {
      const refusal = entity && entityRefusal(entity);
      if (refusal) return { refusal: { ...refusal, message: `${i}:${refusal.message}` }, batchIndex: i };
    }
    return undefined;
  }
  if (!['POST', 'PUT', 'PATCH', 'MERGE'].includes(method) || !body.startsWith('{')) return undefined;
  const refusal = entityRefusal(JSON.parse(body) as Record<string, unknown>);
  return refusal && { refusal };
}

const odataError = (r: Refusal) => JSON.stringify({ 'odata.error': { code: r.code, message: { lang: 'en-US', value: `${r.message}\nRequestId:azure-limits-strict` } } });
const TABLE_JSON = 'application/json;odata=minimalmetadata;streaming=true;charset=utf-8';

/** Azure answers a refused operation of a batch with 202 and a changeset holding that operation's error. */
function batchErrorBody(r: Refusal): { boundary: string; body: string } {
  const id = Math.random().toString(16).slice(2);
  const status = r.status === 413 ? '413 Request Entity Too Large' : '400 Bad Request';
  const body = [
    `--batchresponse_${id}`,
    `Content-Type: multipart/mixed; boundary=changesetresponse_${id}`,
    '',
    `--changesetresponse_${id}`,
    'Content-Type: application/http',
    'Content-Transfer-Encoding: binary',
    '',
    `HTTP/1.1 ${status}`,
    'X-Content-Type-Options: nosniff',
    'DataServiceVersion: 3.0;',
    `Content-Type: ${TABLE_JSON}`,
    '',
    odataError(r),
    `--changesetresponse_${id}--`,
    `--batchresponse_${id}--`,
    '',
  ].join('\r\n');
  return { boundary: `batchresponse_${id}`, body };
}

/** A core-rest-pipeline policy for TableClient (`additionalPolicies`, per call). */
export function tableLimitsPolicy(): PipelinePolicy {
  return {
    name: 'azureTableLimits',
    async sendRequest(request: PipelineRequest, next) {
      const found = tableRefusal(request.method, request.url, request.body);
      if (!found) return next(request);
      const { refusal, batchIndex } = found;
      if (batchIndex !== undefined) {
        const { boundary, body } = batchErrorBody(refusal);
        return response(request, 202, { 'content-type': `multipart/mixed; boundary=${boundary}` }, body);
      }
      return response(request, refusal.status, { 'content-type': TABLE_JSON, 'x-ms-error-code': refusal.code }, odataError(refusal));
    },
  };
}

function response(request: PipelineRequest, status: number, headers: Record<string, string>, bodyAsText: string): PipelineResponse {
  return { request, status, headers: createHttpHeaders({ ...headers, 'x-ms-request-id': 'azure-limits-strict' }), bodyAsText };
}

/** TableClient options that enforce the limits when strict (per retry: after serialization, below deserialization, which turns the answer into the SDK's error). */
export const tableLimitsOptions = () => (limitsStrict() ? { additionalPolicies: [{ policy: tableLimitsPolicy(), position: 'perRetry' as const }] } : {});

// ---------------------------------------------------------------------------------------------
// Blob and Queue Storage (their SDKs take core-http style request policy factories)

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const unescapeXml = (s: string) =>
  s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) =>
    e[0] === '#' ? String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)) : XML_ENTITIES[e.toLowerCase()],
  );

function bodyBytes(headers: { get(name: string): string | undefined }, body: unknown): number {
  const declared = Number(headers.get('content-length'));
  if (Number.isFinite(declared) && declared > 0) return declared;
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  return 0;
}

/** What Azure answers a Blob request over its limits; undefined when Azure accepts it. */
export function blobRefusal(method: string, url: string, headers: { get(name: string): string | undefined }, body: unknown): Refusal | undefined {
  if (method !== 'PUT') return undefined;
  const comp = new URL(url).searchParams.get('comp');
  if (comp === 'block') {
    return bodyBytes(headers, body) > AZURE_LIMITS.blockBytes ? refusals.bodyTooLarge(AZURE_LIMITS.blockBytes) : undefined;
  }
  if (comp === 'blocklist') {
    const blocks = typeof body === 'string' ? (body.match(/<(Latest|Committed|Uncommitted)>/g)?.length ?? 0) : 0;
    return blocks > AZURE_LIMITS.blocksPerBlob ? refusals.blockListTooLong() : undefined;
  }
  if (comp === null && headers.get('x-ms-blob-type') === 'BlockBlob') {
    return bodyBytes(headers, body) > AZURE_LIMITS.putBlobBytes ? refusals.bodyTooLarge(AZURE_LIMITS.putBlobBytes) : undefined;
  }
  return undefined;
}

/** What Azure answers a Queue request over its limits (Put Message, Update Message). */
export function queueRefusal(method: string, url: string, body: unknown): Refusal | undefined {
  if ((method !== 'POST' && method !== 'PUT') || typeof body !== 'string' || !new URL(url).pathname.includes('/messages')) return undefined;
  const text = /<MessageText>([\s\S]*)<\/MessageText>/.exec(body)?.[1];
  if (text === undefined) return undefined;
  // Azure (and Azurite) answer 413 RequestBodyTooLarge here, not the documented 400 MessageTooLarge.
  return Buffer.byteLength(unescapeXml(text)) > AZURE_LIMITS.queueMessageBytes ? refusals.bodyTooLarge(AZURE_LIMITS.queueMessageBytes) : undefined;
}

type Check = (request: WebResourceLike) => Refusal | undefined;

/**
 * A request policy factory for the storage-blob / storage-queue pipelines: refuses as Azure would.
 * The class name is the one the storage SDKs place after their retry and deserialization policies
 * (like the fault injectors of their own tests), so the SDK turns the answer into its usual error.
 */
class InjectorPolicyFactory implements RequestPolicyFactory {
  constructor(private readonly check: Check) {}

  create(next: RequestPolicy): RequestPolicy {
    const check = this.check;
    return {
      async sendRequest(request: WebResourceLike): Promise<CompatResponse> {
        const refusal = check(request);
        if (!refusal) return next.sendRequest(request);
        const { headers, bodyAsText } = xmlRefusal(refusal);
        return { request, status: refusal.status, headers: toHttpHeadersLike(headers), bodyAsText };
      },
    };
  }
}

/** Azure's answer to a refused Blob or Queue request: its headers and XML error body. */
function xmlRefusal(refusal: Refusal) {
  const headers = createHttpHeaders({ 'content-type': 'application/xml', 'x-ms-error-code': refusal.code, 'x-ms-request-id': 'azure-limits-strict' });
  const bodyAsText = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${refusal.code}</Code><Message>${refusal.message}\nRequestId:azure-limits-strict</Message></Error>`;
  return { headers, bodyAsText };
}

/** A core-rest-pipeline policy for Put Message sent without QueueClient (queue-sender.ts). */
export function queueLimitsPolicy(): PipelinePolicy {
  return {
    name: 'azureQueueLimits',
    async sendRequest(request: PipelineRequest, next) {
      const refusal = queueRefusal(request.method, request.url, request.body);
      if (!refusal) return next(request);
      return { request, status: refusal.status, ...xmlRefusal(refusal) };
    },
  };
}

const headerReader = (r: WebResourceLike) => ({ get: (name: string) => r.headers.get(name) });
export const blobLimitsFactory = (): RequestPolicyFactory => new InjectorPolicyFactory((r) => blobRefusal(r.method, r.url, headerReader(r), r.body));
export const queueLimitsFactory = (): RequestPolicyFactory => new InjectorPolicyFactory((r) => queueRefusal(r.method, r.url, r.body));
