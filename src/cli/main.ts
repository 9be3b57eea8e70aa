// Operator CLI for the platform team: `npm run cli -- <command>` (node dist/src/cli/main.js).
// It only calls the app's HTTP API (src/functions/operations.ts and the integration routes); `token` signs locally.
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Api, ApiError } from './api.js';
import * as commands from './commands.js';
import type { CommandContext, Output } from './commands.js';
import { FILE_TYPES, SCHEMAS } from '../lib/contract/schemas.js';
import { redact } from '../lib/platform/redaction.js';
import { DEFAULT_TOKEN_MINUTES, TokenUsageError, mintToken } from './token.js';

export const DEFAULT_URL = 'http://127.0.0.1:7071';
const POLL_INTERVAL_MS = 2_000;
const DEFAULT_WATCH_TIMEOUT_S = 600;

export const USAGE = `Usage: npm run cli -- <command> [options]

Commands:
  list [--limit N]           every integration: destination, pending changes, lag, running, errors
  show <workspaceId>         one integration: destination, SAS expiry, warnings, each file's status
  sync <workspaceId> <fileType> [--watch] [--timeout SECONDS]
                             queue an export of one file now; --watch follows it (every 2 s) until
                             nothing is pending and it is not running (default timeout ${DEFAULT_WATCH_TIMEOUT_S} s)
  exports <workspaceId> [--file-type T] [--limit N] [--before ID|TIME]
                             the export history, newest first: files written (rows, bytes, kind,
                             lag) and failed attempts; --before pages on (the id it prints)
  poison                     the poison queue: count and the first 32 messages, decoded
  replay [--max N]           move valid export messages from the poison queue back to the export
                             queue (default at most 1000); invalid ones stay and are counted as skipped
  keys                       SAS encryption keys: the current key's id and how many integrations
                             still use an earlier key (SAS_ENCRYPTION_KEYS_PREVIOUS)
  reencrypt                  re-encrypt every stored SAS URL under the current SAS_ENCRYPTION_KEY
  token <workspaceId> [--minutes N] [--scope read|manage]
                             mint a workspace token for the owner routes (/api/owner/...), signed
                             with WORKSPACE_TOKEN_SIGNING_KEY from the environment; no API call
                             (default ${DEFAULT_TOKEN_MINUTES} minutes, scope read)
  help                       this text

Options:
  --url URL      API base URL (env WAREHOUSE_API_URL, default ${DEFAULT_URL})
  --key KEY      function key, sent as the x-functions-key header (env WAREHOUSE_API_KEY)
  --json         print the API's JSON instead of tables (sync --watch: one JSON line per change)

File types: ${FILE_TYPES.map((t) => (SCHEMAS[t].name === t ? t : `${SCHEMAS[t].name} (${t})`)).join(', ')}
Exit codes: 0 done, 1 the API refused or failed (its message is printed), 2 bad usage.
`;

export interface CliOptions {
  stdout: Output;
  /** Errors and usage mistakes; default: stdout. */
  stderr?: Output;
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
  /** Test seams for `sync --watch`. */
  pollIntervalMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

class UsageError extends Error {}

/** A SAS is never printed, whatever the API or a poison message holds. */
function redacting(out: Output): Output {
  return { isTTY: out.isTTY, write: (text: string) => out.write(redact(text)) };
}

function positiveInt(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`${option} must be a positive whole number, got "${value}"`);
  return Number(value);
}

function args(positionals: string[], names: string[], command: string): string[] {
  if (positionals.length !== names.length) {
    throw new UsageError(`${command} takes ${names.length ? names.map((n) => `<${n}>`).join(' ') : 'no arguments'}, got ${positionals.length ? positionals.join(' ') : 'none'}`);
  }
  return positionals;
}

/** Runs one CLI command; resolves with the exit code (never calls process.exit). */
export async function runCli(argv: string[], options: CliOptions): Promise<number> {
  const stdout = redacting(options.stdout);
  const stderr = redacting(options.stderr ?? options.stdout);
  const env = options.env ?? process.env;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        key: { type: 'string' },
        json: { type: 'boolean', default: false },
        watch: { type: 'boolean', default: false },
        timeout: { type: 'string' },
        max: { type: 'string' },
        limit: { type: 'string' },
        minutes: { type: 'string' },
        scope: { type: 'string' },
        'file-type': { type: 'string' },
        before: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    const [command, ...rest] = positionals;
    if (values.help || command === undefined || command === 'help') {
      stdout.write(USAGE);
      return 0;
    }
    const baseUrl = values.url ?? (env.WAREHOUSE_API_URL || DEFAULT_URL);
    if (!/^https?:\/\/[^/]/i.test(baseUrl) || !URL.canParse(baseUrl)) throw new UsageError(`--url must be an http(s) URL like ${DEFAULT_URL}, got "${baseUrl}"`);
    const ctx: CommandContext = {
      api: new Api({ baseUrl, key: values.key ?? (env.WAREHOUSE_API_KEY || undefined), fetch: options.fetch }),
      stdout,
      json: values.json,
      sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
      now: options.now ?? Date.now,
      pollIntervalMs: options.pollIntervalMs ?? POLL_INTERVAL_MS,
    };
    switch (command) {
      case 'list':
        args(rest, [], 'list');
        return await commands.list(ctx, { limit: positiveInt(values.limit, '--limit') });
      case 'show':
        return await commands.show(ctx, args(rest, ['workspaceId'], 'show')[0]);
      case 'sync': {
        const [workspaceId, fileType] = args(rest, ['workspaceId', 'fileType'], 'sync');
        const timeoutS = positiveInt(values.timeout, '--timeout') ?? DEFAULT_WATCH_TIMEOUT_S;
        return await commands.sync(ctx, workspaceId, fileType, { watch: values.watch, timeoutMs: timeoutS * 1000 });
      }
      case 'exports': {
        const [workspaceId] = args(rest, ['workspaceId'], 'exports');
        return await commands.exports(ctx, workspaceId, { fileType: values['file-type'], limit: positiveInt(values.limit, '--limit'), before: values.before });
      }
      case 'poison':
        args(rest, [], 'poison');
        return await commands.poison(ctx);
      case 'replay':
        args(rest, [], 'replay');
        return await commands.replay(ctx, { max: positiveInt(values.max, '--max') });
      case 'keys':
        args(rest, [], 'keys');
        return await commands.keys(ctx);
      case 'reencrypt':
        args(rest, [], 'reencrypt');
        return await commands.reencrypt(ctx);
      case 'token': {
        const [workspaceId] = args(rest, ['workspaceId'], 'token');
        // The token itself is the output (not passed through redaction: it holds no SAS).
        options.stdout.write(mintToken(env, workspaceId, { minutes: positiveInt(values.minutes, '--minutes'), scope: values.scope }, (options.now ?? Date.now)()) + '\n');
        return 0;
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof ApiError) {
      stderr.write(`error: ${e.message} (${e.code}${e.status ? `, HTTP ${e.status}` : ''})\n`);
      for (const d of Array.isArray(e.details) ? (e.details as { path?: unknown; message?: unknown }[]) : []) {
        stderr.write(`  ${String(d.path ?? '')}: ${String(d.message ?? '')}\n`);
      }
      return 1;
    }
    // parseArgs reports unknown options and missing values as TypeErrors with an ERR_PARSE_ARGS_* code.
    if (e instanceof UsageError || e instanceof TokenUsageError || String((e as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS')) {
      stderr.write(`error: ${(e as Error).message}\n(usage: npm run cli -- help)\n`);
      return 2;
    }
    stderr.write(`error: ${(e as Error)?.message ?? String(e)}\n`);
    return 1;
  }
}

function invokedDirectly(): boolean {
  try {
    return process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
}
