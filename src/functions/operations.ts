// Operations routes for the platform team (the CLI in src/cli wraps them). Each handler: parse, call
// src/lib/api/operations.ts, answer. Not under /admin: the Functions host reserves that prefix.
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getServices } from '../lib/services.js';
import { errorResponse, textBody } from '../lib/platform/http.js';
import { parseWorkspaceId } from '../lib/contract/routes.js';
import { Operations } from '../lib/api/operations.js';
import type { AdminAnswer } from '../lib/api/admin.js';
import { encryptionKeyStatus, reencryptSasUrls } from '../lib/api/encryption-keys.js';
import type { Services } from '../lib/services.js';

type Action = (operations: Operations, request: HttpRequest, services: Services) => Promise<AdminAnswer>;

function route(action: Action) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const services = await getServices();
      const { status, body } = await action(new Operations(services), request, services);
      return { status, jsonBody: body };
    } catch (e) {
      return errorResponse(e, (m) => context.error(m));
    }
  };
}

export const listIntegrationLag = route((ops, req) => ops.integrations(Object.fromEntries(req.query)));
export const syncIntegrationFile = route((ops, req) => ops.syncNow(parseWorkspaceId(req.params.workspaceId), req.params.fileType));
export const listPoison = route((ops) => ops.poison());
export const replayPoison = route(async (ops, req) => ops.replay(await textBody(req)));
export const encryptionKeys = route((_ops, _req, services) => encryptionKeyStatus(services));
export const reencrypt = route((_ops, _req, services) => reencryptSasUrls(services));

const opts = { authLevel: 'function' as const };
app.http('operationsIntegrations', { ...opts, route: 'operations/integrations', methods: ['GET'], handler: listIntegrationLag });
app.http('operationsSyncFile', { ...opts, route: 'workspaces/{workspaceId}/integration/files/{fileType}/sync', methods: ['POST'], handler: syncIntegrationFile });
app.http('operationsPoison', { ...opts, route: 'operations/poison', methods: ['GET'], handler: listPoison });
app.http('operationsEncryptionKeys', { ...opts, route: 'operations/encryption-keys', methods: ['GET'], handler: encryptionKeys });
app.http('operationsReencrypt', { ...opts, route: 'operations/encryption-keys/reencrypt', methods: ['POST'], handler: reencrypt });
app.http('operationsPoisonReplay', { ...opts, route: 'operations/poison/replay', methods: ['POST'], handler: replayPoison });
