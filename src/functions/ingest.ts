import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getServices } from '../lib/services.js';
import { errorResponse, jsonBody } from '../lib/platform/http.js';
import { parseFileTypeToken } from '../lib/source/ingest.js';
import { parseWorkspaceId } from '../lib/contract/routes.js';
import { createLogger } from '../lib/platform/log.js';

/** POST /api/workspaces/{workspaceId}/ingest/{fileType}: the platform's writes (SPEC section 6). */
export async function ingest(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const workspaceId = parseWorkspaceId(request.params.workspaceId);
    const fileType = parseFileTypeToken(request.params.fileType);
    const body = await jsonBody(request);
    const services = await getServices();
    const result = await services.ingest.ingest(workspaceId, fileType, body);
    createLogger(context).info('ingest accepted', { invocationId: context.invocationId, workspaceId, fileType, ...result });
    return { status: 202, jsonBody: result };
  } catch (e) {
    return errorResponse(e, (m) => context.error(m));
  }
}

app.http('ingest', { route: 'workspaces/{workspaceId}/ingest/{fileType}', methods: ['POST'], authLevel: 'function', handler: ingest });
