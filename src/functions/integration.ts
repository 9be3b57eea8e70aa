// Integration management routes (SPEC section 6). Each handler: parse, call src/lib/api/admin.ts, answer.
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getServices } from '../lib/services.js';
import { errorResponse, jsonBody } from '../lib/platform/http.js';
import { parseWorkspaceId } from '../lib/contract/routes.js';
import { Admin, type AdminAnswer } from '../lib/api/admin.js';

type Action = (admin: Admin, workspaceId: number, request: HttpRequest) => Promise<AdminAnswer>;

function route(action: Action) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const workspaceId = parseWorkspaceId(request.params.workspaceId);
      const { status, body } = await action(new Admin(await getServices()), workspaceId, request);
      return { status, jsonBody: body };
    } catch (e) {
      return errorResponse(e, (m) => context.error(m));
    }
  };
}

export const putIntegration = route(async (admin, ws, req) => admin.put(ws, await jsonBody(req)));
export const getIntegration = route((admin, ws) => admin.status(ws));
export const deleteIntegration = route((admin, ws) => admin.delete(ws));
export const validateIntegration = route(async (admin, _ws, req) => admin.validate(await jsonBody(req)));
export const listExports = route((admin, ws, req) => admin.exports(ws, Object.fromEntries(req.query)));
export const enableIntegration = route((admin, ws) => admin.enable(ws));
export const disableIntegration = route((admin, ws) => admin.disable(ws));
export const setIntegrationFile = route(async (admin, ws, req) => admin.setFile(ws, req.params.fileType, await jsonBody(req)));
export const upgradeIntegration = route(async (admin, ws, req) => admin.upgrade(ws, await jsonBody(req)));

const base = 'workspaces/{workspaceId}/integration';
const opts = { authLevel: 'function' as const };
app.http('putIntegration', { ...opts, route: base, methods: ['PUT'], handler: putIntegration });
app.http('getIntegration', { ...opts, route: base, methods: ['GET'], handler: getIntegration });
app.http('deleteIntegration', { ...opts, route: base, methods: ['DELETE'], handler: deleteIntegration });
app.http('validateIntegration', { ...opts, route: `${base}/validate`, methods: ['POST'], handler: validateIntegration });
app.http('listExports', { ...opts, route: `${base}/exports`, methods: ['GET'], handler: listExports });
app.http('enableIntegration', { ...opts, route: `${base}/enable`, methods: ['POST'], handler: enableIntegration });
app.http('disableIntegration', { ...opts, route: `${base}/disable`, methods: ['POST'], handler: disableIntegration });
app.http('setIntegrationFile', { ...opts, route: `${base}/files/{fileType}`, methods: ['PUT'], handler: setIntegrationFile });
app.http('upgradeIntegration', { ...opts, route: `${base}/upgrade`, methods: ['POST'], handler: upgradeIntegration });
