// HTTP plumbing shared by the HTTP triggers: JSON bodies in, errors out as {error: {code, message, details}}.
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { UserError } from './errors.js';
import { redact } from './redaction.js';

const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** The request body as JSON; a UserError (400/413) when it is not. */
export async function jsonBody(request: HttpRequest): Promise<unknown> {
  const length = Number(request.headers.get('content-length') ?? 0);
  if (length > MAX_BODY_BYTES) throw new UserError('body_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes; send smaller batches`, 413);
  const text = await request.text();
  if (text.length > MAX_BODY_BYTES) throw new UserError('body_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes; send smaller batches`, 413);
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError('invalid_json', 'the body is not valid JSON');
  }
}

export function errorResponse(e: unknown, log: (message: string) => void): HttpResponseInit {
  if (e instanceof UserError) {
    return { status: e.status, jsonBody: { error: { code: e.code, message: e.message, details: e.details ?? [] } } };
  }
  log(redact(`unhandled error: ${(e as Error)?.name}: ${(e as Error)?.message}`));
  return { status: 500, jsonBody: { error: { code: 'internal', message: 'internal error; the request was not applied' } } };
}
