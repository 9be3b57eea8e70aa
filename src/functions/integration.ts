import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getServices } from '../lib/services.js';
import { errorResponse, jsonBody } from '../lib/http.js';
import { parseWorkspaceId } from '../lib/routes.js';

/** PUT /api/workspaces/{workspaceId}/integration: create or replace the integration (validated, probed, SAS encrypted). */
export async function putIntegration(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const workspaceId = parseWorkspaceId(request.params.workspaceId);
    const body = await jsonBody(request);
    const services = await getServices();
    const integration = await services.integrations.put(workspaceId, body);
    return { status: 200, jsonBody: integration };
  } catch (e) {
    return errorResponse(e, (m) => context.error(m));
  }
}

app.http('putIntegration', { route: 'workspaces/{workspaceId}/integration', methods: ['PUT'], authLevel: 'function', handler: putIntegration });
