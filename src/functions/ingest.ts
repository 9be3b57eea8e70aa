import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getServices } from '../lib/services.js';
import { errorResponse, jsonBody } from '../lib/platform/http.js';
import { parseFileTypeToken } from '../lib/source/ingest.js';
import { parseIdempotencyKey } from '../lib/source/idempotency.js';
import { parseWorkspaceId } from '../lib/contract/routes.js';
import { createLogger } from '../lib/platform/log.js';

/** POST /api/workspaces/{workspaceId}/ingest/{fileType}: the platform's writes (SPEC section 6). */
export async function ingest(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const workspaceId = parseWorkspaceId(request.params.workspaceId);
    const fileType = parseFileTypeToken(request.params.fileType);
    const body = await jsonBody(request);
    const idempotencyKey = parseIdempotencyKey(request.headers.get('idempotency-key'));
    const services = await getServices();
    const log = createLogger(context, { invocationId: context.invocationId, workspaceId, fileType });
    const onFollowUpError = (e: unknown) => log.warn('ingest committed; follow-up work failed and is left to the next writer', { error: String((e as Error)?.message ?? e) });
    const result = await services.ingest.ingest(workspaceId, fileType, body, { idempotencyKey, onFollowUpError });
    log.info('ingest accepted', { ...result });
    return { status: 202, jsonBody: result };
  } catch (e) {
    return errorResponse(e, (m) => context.error(m));
  }
}

app.http('ingest', { route: 'workspaces/{workspaceId}/ingest/{fileType}', methods: ['POST'], authLevel: 'function', handler: ingest });
