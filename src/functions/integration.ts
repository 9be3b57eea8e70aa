// Integration management routes (SPEC section 6). Each handler: parse, call src/lib/api/admin.ts, answer.
// Every route is registered twice (src/lib/api/access.ts says why):
//   /api/workspaces/{id}/integration...        authLevel 'function': the platform and operators
//   /api/owner/workspaces/{id}/integration...  authLevel 'anonymous' for the host; the handler requires
//                                              a workspace token (Authorization: Bearer) for that workspace
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getServices } from '../lib/services.js';
import { errorResponse, jsonBody } from '../lib/platform/http.js';
import { parseWorkspaceId } from '../lib/contract/routes.js';
import { Admin, type AdminAnswer } from '../lib/api/admin.js';
import { requireWorkspaceToken } from '../lib/api/access.js';
import { API_SECURITY_HEADERS } from '../lib/platform/security-headers.js';
import { RateLimited } from '../lib/platform/rate-limit.js';
import type { TokenScope } from '../lib/platform/workspace-token.js';

type Action = (admin: Admin, workspaceId: number, request: HttpRequest) => Promise<AdminAnswer>;

/** `scope` set: an owner route, which needs a workspace token covering it. */
function route(action: Action, scope?: TokenScope) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const workspaceId = parseWorkspaceId(request.params.workspaceId);
      const services = await getServices();
      if (scope) requireWorkspaceToken(services.config, request.headers.get('authorization'), workspaceId, scope, services.clock.now());
      const { status, body } = await action(new Admin(services), workspaceId, request);
      return { status, jsonBody: body, headers: { ...API_SECURITY_HEADERS } };
    } catch (e) {
      const response = errorResponse(e, (m) => context.error(m));
      const headers: Record<string, string> = { ...API_SECURITY_HEADERS };
      if (e instanceof RateLimited) headers['Retry-After'] = String(e.retryAfterSeconds);
      if (response.status === 401 && scope) headers['WWW-Authenticate'] = 'Bearer';
      return { ...response, headers };
    }
  };
}

const ROUTES: { name: string; path: string; method: 'GET' | 'PUT' | 'POST' | 'DELETE'; scope: TokenScope; action: Action }[] = [
  { name: 'putIntegration', path: '', method: 'PUT', scope: 'manage', action: async (admin, ws, req) => admin.put(ws, await jsonBody(req)) },
  { name: 'getIntegration', path: '', method: 'GET', scope: 'read', action: (admin, ws) => admin.status(ws) },
  { name: 'deleteIntegration', path: '', method: 'DELETE', scope: 'manage', action: (admin, ws) => admin.delete(ws) },
  { name: 'listExports', path: '/exports', method: 'GET', scope: 'read', action: (admin, ws, req) => admin.exports(ws, Object.fromEntries(req.query)) },
  { name: 'validateIntegration', path: '/validate', method: 'POST', scope: 'manage', action: async (admin, ws, req) => admin.validate(ws, await jsonBody(req)) },
  { name: 'enableIntegration', path: '/enable', method: 'POST', scope: 'manage', action: (admin, ws) => admin.enable(ws) },
  { name: 'disableIntegration', path: '/disable', method: 'POST', scope: 'manage', action: (admin, ws) => admin.disable(ws) },
  { name: 'setIntegrationFile', path: '/files/{fileType}', method: 'PUT', scope: 'manage', action: async (admin, ws, req) => admin.setFile(ws, req.params.fileType, await jsonBody(req)) },
  { name: 'upgradeIntegration', path: '/upgrade', method: 'POST', scope: 'manage', action: async (admin, ws, req) => admin.upgrade(ws, await jsonBody(req)) },
];

/** The function-key handlers by name (putIntegration, getIntegration, ...). */
export const handlers = Object.fromEntries(ROUTES.map((r) => [r.name, route(r.action)]));

const base = 'workspaces/{workspaceId}/integration';
for (const r of ROUTES) {
  app.http(r.name, { authLevel: 'function', route: `${base}${r.path}`, methods: [r.method], handler: handlers[r.name] });
  const owner = `owner${r.name[0].toUpperCase()}${r.name.slice(1)}`;
  app.http(owner, { authLevel: 'anonymous', route: `owner/${base}${r.path}`, methods: [r.method], handler: route(r.action, r.scope) });
}
