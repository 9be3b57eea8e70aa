// Workspace-scoped tokens for owners: the platform (holding WORKSPACE_TOKEN_SIGNING_KEY) signs one
// workspace id, a scope and an expiry with HMAC-SHA256; the owner routes accept it for that
// workspace only. Form: wst1.<base64url JSON {ws, scope, exp}>.<base64url HMAC of "wst1.<payload>">.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { UserError } from './errors.js';

export const TOKEN_SCOPES = ['read', 'manage'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];
/** Tokens are short-lived: a verifier refuses one that claims to live longer than this. */
export const MAX_TOKEN_MINUTES = 24 * 60;
const PREFIX = 'wst1';

export interface WorkspaceToken {
  workspaceId: number;
  scope: TokenScope;
  /** Epoch ms. */
  expiresAt: number;
}

const sign = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest();

export function mintWorkspaceToken(key: Buffer, token: WorkspaceToken): string {
  if (!Number.isSafeInteger(token.workspaceId) || token.workspaceId <= 0) throw new Error('a workspace token needs a positive workspace id');
  if (!TOKEN_SCOPES.includes(token.scope)) throw new Error(`a workspace token's scope is one of ${TOKEN_SCOPES.join(', ')}`);
  const payload = Buffer.from(JSON.stringify({ ws: token.workspaceId, scope: token.scope, exp: Math.floor(token.expiresAt / 1000) })).toString('base64url');
  return `${PREFIX}.${payload}.${sign(key, `${PREFIX}.${payload}`).toString('base64url')}`;
}

const invalid = () => new UserError('token_invalid', 'the workspace token is not valid (malformed, altered, or signed with another key); ask the platform for a new one', 401);

/** The token's claims if its signature is ours and it has not expired; a 401 UserError otherwise. */
export function verifyWorkspaceToken(key: Buffer, token: string, now: number): WorkspaceToken {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX || !/^[A-Za-z0-9_-]+$/.test(parts[1]) || !/^[A-Za-z0-9_-]+$/.test(parts[2])) throw invalid();
  const given = Buffer.from(parts[2], 'base64url');
  const expected = sign(key, `${PREFIX}.${parts[1]}`);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
  let claims: { ws?: unknown; scope?: unknown; exp?: unknown };
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const { ws, scope, exp } = claims ?? {};
  if (!Number.isSafeInteger(ws) || (ws as number) <= 0 || !TOKEN_SCOPES.includes(scope as TokenScope) || !Number.isSafeInteger(exp)) throw invalid();
  const expiresAt = (exp as number) * 1000;
  if (expiresAt <= now) throw new UserError('token_expired', `the workspace token expired at ${new Date(expiresAt).toISOString()}; ask the platform for a new one`, 401);
  if (expiresAt > now + MAX_TOKEN_MINUTES * 60_000 + 60_000) throw invalid();
  return { workspaceId: ws as number, scope: scope as TokenScope, expiresAt };
}
