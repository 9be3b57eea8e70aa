// HTTP plumbing shared by the HTTP triggers: JSON bodies in, errors out as {error: {code, message, details}}.
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { UserError } from './errors.js';
import { redact } from './redaction.js';

const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** The request body as text; a UserError 413 when it is over the size limit. */
export async function textBody(request: HttpRequest): Promise<string> {
  const tooLarge = () => new UserError('body_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes; send smaller batches`, 413);
  if (Number(request.headers.get('content-length') ?? 0) > MAX_BODY_BYTES) throw tooLarge();
  const text = await request.text();
  if (text.length > MAX_BODY_BYTES) throw tooLarge();
  return text;
}

/** The request body as JSON; a UserError (400/413) when it is not. */
export async function jsonBody(request: HttpRequest): Promise<unknown> {
  const text = await textBody(request);
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError('invalid_json', 'the body is not valid JSON');
  }
}

export function errorResponse(e: unknown, log: (message: string) => void): HttpResponseInit {
  if (e instanceof UserError) {
    return { status: e.status, jsonBody: { error: { code: e.code, message: e.message, details: e.details } } };
  }
  log(redact(`unhandled error: ${(e as Error)?.name}: ${(e as Error)?.message}`));
  // Unknown: the failure may have come after a commit (a lost response, work after it), so no claim
  // either way; a retry with the same Idempotency-Key is stored at most once.
  return { status: 500, jsonBody: { error: { code: 'internal', message: 'internal error; the request may or may not have been applied: retry it (ingest: with the same Idempotency-Key, so that it is stored at most once)', details: [] } } };
}
