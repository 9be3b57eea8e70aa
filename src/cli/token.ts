// `npm run cli -- token <workspaceId> [--minutes N] [--scope read|manage]`: mints a workspace token
// the way the platform does (src/lib/platform/workspace-token.ts), with WORKSPACE_TOKEN_SIGNING_KEY
// from the environment (never a command-line option: it would land in the shell history).
import { MAX_TOKEN_MINUTES, TOKEN_SCOPES, mintWorkspaceToken, type TokenScope } from '../lib/platform/workspace-token.js';

export const DEFAULT_TOKEN_MINUTES = 30;

export class TokenUsageError extends Error {}

export function mintToken(env: Record<string, string | undefined>, workspaceId: string, options: { minutes?: number; scope?: string }, now: number): string {
  if (!/^\d+$/.test(workspaceId) || Number(workspaceId) < 1) throw new TokenUsageError(`<workspaceId> must be a positive whole number, got "${workspaceId}"`);
  const minutes = options.minutes ?? DEFAULT_TOKEN_MINUTES;
  if (minutes > MAX_TOKEN_MINUTES) throw new TokenUsageError(`--minutes must be at most ${MAX_TOKEN_MINUTES} (tokens are short-lived), got ${minutes}`);
  const scope = options.scope ?? 'read';
  if (!TOKEN_SCOPES.includes(scope as TokenScope)) throw new TokenUsageError(`--scope must be one of ${TOKEN_SCOPES.join(', ')}, got "${scope}"`);
  const keyText = env.WORKSPACE_TOKEN_SIGNING_KEY?.trim();
  const key = keyText ? Buffer.from(keyText, 'base64') : undefined;
  if (!key || key.length < 32 || key.toString('base64') !== keyText) {
    throw new TokenUsageError('set WORKSPACE_TOKEN_SIGNING_KEY in the environment to the app setting of the same name (base64, at least 32 bytes)');
  }
  return mintWorkspaceToken(key, { workspaceId: Number(workspaceId), scope: scope as TokenScope, expiresAt: now + minutes * 60_000 });
}
