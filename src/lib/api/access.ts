// Who may call which route. Function-key routes: the Functions host checks the key before the
// handler runs (authLevel 'function'): the platform and operators, every workspace. Owner routes
// (/api/owner/workspaces/{id}/integration...): anonymous for the host, so the handler itself requires
// `Authorization: Bearer <workspace token>` for exactly that workspace and a scope that covers the
// action. Without WORKSPACE_TOKEN_SIGNING_KEY every owner request is refused.
import type { Config } from '../platform/config.js';
import { UserError } from '../platform/errors.js';
import { verifyWorkspaceToken, type TokenScope, type WorkspaceToken } from '../platform/workspace-token.js';

/** Which scopes allow an action: `read` sees the integration; `manage` may also change and probe. */
const COVERS: Record<TokenScope, readonly TokenScope[]> = { read: ['read', 'manage'], manage: ['manage'] };

export function requireWorkspaceToken(config: Pick<Config, 'workspaceTokenKey'>, authorization: string | null, workspaceId: number, needed: TokenScope, now: number): WorkspaceToken {
  if (!config.workspaceTokenKey) {
    throw new UserError('workspace_tokens_disabled', 'this deployment does not accept workspace tokens (WORKSPACE_TOKEN_SIGNING_KEY is not set); use the function-key routes', 401);
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!match) throw new UserError('token_required', 'this route needs a workspace token: send it as "Authorization: Bearer <token>"', 401);
  const token = verifyWorkspaceToken(config.workspaceTokenKey, match[1], now);
  if (token.workspaceId !== workspaceId) {
    throw new UserError('token_wrong_workspace', `the workspace token is for another workspace, not ${workspaceId}; nothing was changed`, 403);
  }
  if (!COVERS[needed].includes(token.scope)) {
    throw new UserError('token_scope', `the workspace token has scope "${token.scope}"; this action needs "${needed}"; nothing was changed`, 403);
  }
  return token;
}
