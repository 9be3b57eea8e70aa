// Local stand-in for the Azure Functions host (Core Tools' `func start`), in-process (dev tool only).
//
// Imports the app's entry module with `@azure/functions-core` provided (see functions-core.ts), so it
// runs exactly the functions `func start` would, then serves:
//   HTTP triggers   http://127.0.0.1:<port>/<routePrefix>/<route> (routePrefix "api" unless host.json says
//                   otherwise); `{p}`, `{p?}`, `{p:int}`, `{*rest}` templates. authLevel is accepted and
//                   NOT enforced (Core Tools does not enforce keys either).
//   Admin           POST /admin/functions/{name} {"input": "..."} → 202 (like Core Tools);
//                   GET /admin/functions (metadata), GET /admin/host/status.
//   Timer triggers  NCRONTAB (UTC), `%SETTING%` schedules, runOnStartup, no overlapping runs.
//   Queue triggers  @azure/storage-queue polling with host.json `extensions.queues` semantics,
//                   poison queue `<queue>-poison` after maxDequeueCount.
// Queue output bindings (return / extraOutputs of type `queue`) are written after a successful run;
// other input/output binding types are not supported (a warning is logged at start-up).
import http from 'node:http';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { format, formatWithOptions } from 'node:util';
import { QueueClient, QueueServiceClient, type DequeuedMessageItem } from '@azure/storage-queue';
import {
  loadEntry,
  setSystemLog,
  type BindingMetadata,
  type CoreFunctionMetadata,
  type CoreHandler,
  type CoreHookCallback,
  type CoreHookName,
  type CoreLogLevel,
} from './functions-core.js';
import { parseNcrontab, type CronSchedule } from './ncrontab.js';

// ---------------------------------------------------------------------------------------------
// Public types

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'critical';

/** One log line; the default sink writes it to stdout as JSON. */
export interface LogRecord {
  timestamp: string;
  level: LogLevel;
  /** `user` = context.log & co., `host` = this host, `system` = the @azure/functions library. */
  category: 'user' | 'host' | 'system';
  function?: string;
  invocationId?: string;
  message: string;
  /** Structured fields of the app's log lines (workspaceId, fileType, sequence, ...). */
  [field: string]: unknown;
}

export type LogSink = (record: LogRecord) => void;

export interface QueuesHostJson {
  batchSize?: number;
  newBatchThreshold?: number;
  /** TimeSpan "hh:mm:ss[.fff]" or milliseconds. */
  maxPollingInterval?: string | number;
  visibilityTimeout?: string | number;
  maxDequeueCount?: number;
  messageEncoding?: 'base64' | 'none';
}

export interface HostJson {
  version?: string;
  functionTimeout?: string;
  extensions?: { queues?: QueuesHostJson; http?: { routePrefix?: string } };
  [key: string]: unknown;
}

export interface HostOptions {
  /** Path or file URL of the module that registers the functions (the app's `main`). */
  entry: string;
  /** Default 7071; 0 picks a free port. Always bound to 127.0.0.1. */
  port?: number;
  /**
   * App settings: binding `connection` names and `%NAME%` expressions are looked up here first,
   * then in process.env. (The app's own config reads process.env; start.ts copies settings there.)
   */
  settings?: Record<string, string | undefined>;
  /** host.json path or contents; default `./host.json` if it exists. */
  hostJson?: string | HostJson;
  /** Log sink; default: one JSON object per line on stdout. */
  log?: LogSink;
  /** Start timer schedules (default true). runOnStartup still applies when false. */
  timers?: boolean;
  /** Start queue listeners (default true). */
  queues?: boolean;
  /** How long stop() waits for running invocations (default 10 s). */
  shutdownGraceMs?: number;
}

export interface WhenIdleOptions {
  /** Reject after this long (default 120 s). */
  timeoutMs?: number;
}

export interface Host {
  /** e.g. http://127.0.0.1:7071 */
  readonly url: string;
  readonly port: number;
  /** What the entry registered, as `@azure/functions` describes it to the worker. */
  readonly functions: readonly CoreFunctionMetadata[];
  /**
   * Runs a non-HTTP function now (like Core Tools' POST /admin/functions/{name}) and resolves with
   * its result (rejects with its error). Queue functions get `input` as the message text.
   */
  invoke(name: string, input?: string): Promise<unknown>;
  /** Resolves once every polled queue is empty (visible or not) and no invocation is running. */
  whenIdle(options?: WhenIdleOptions): Promise<void>;
  stop(): Promise<void>;
}

export type { CoreFunctionMetadata, BindingMetadata } from './functions-core.js';

// ---------------------------------------------------------------------------------------------
// host.json

const QUEUE_DEFAULTS = {
  batchSize: 16,
  maxPollingIntervalMs: 60_000,
  visibilityTimeoutMs: 0,
  maxDequeueCount: 5,
  messageEncoding: 'base64' as 'base64' | 'none',
};
/** The real listener's minimum polling interval. */
const MIN_POLL_MS = 100;
/** Messages being processed stay invisible this long, renewed at half-time (as the real host). */
const LEASE_SECONDS = 600;
const MAX_HTTP_BODY = 100 * 1024 * 1024;

/** "hh:mm:ss[.fff]", "d.hh:mm:ss" or a number of milliseconds → milliseconds. */
export function parseTimeSpan(value: string | number, what: string): number {
  if (typeof value === 'number') return value;
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$/.exec(value.trim());
  if (!m) throw new Error(`host.json: ${what} "${value}" is not a TimeSpan (hh:mm:ss[.fff])`);
  const [, d, h, min, s, frac] = m;
  const fraction = frac ? Number(`0.${frac}`) : 0;
  return (((Number(d ?? 0) * 24 + Number(h)) * 60 + Number(min)) * 60 + Number(s) + fraction) * 1000;
}

interface QueueSettings {
  batchSize: number;
  newBatchThreshold: number;
  maxPollingIntervalMs: number;
  visibilityTimeoutMs: number;
  maxDequeueCount: number;
  messageEncoding: 'base64' | 'none';
}

function loadHostJson(option: string | HostJson | undefined): HostJson {
  if (option && typeof option === 'object') return option;
  const file = option ?? path.resolve('host.json');
  if (!option && !existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as HostJson;
  } catch (e) {
    throw new Error(`host.json: cannot read ${file}: ${(e as Error).message}`);
  }
}

function queueSettings(hostJson: HostJson): QueueSettings {
  const q = hostJson.extensions?.queues ?? {};
  const batchSize = q.batchSize ?? QUEUE_DEFAULTS.batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 32) {
    throw new Error(`host.json: extensions.queues.batchSize must be 1-32, got ${batchSize}`);
  }
  const encoding = q.messageEncoding ?? QUEUE_DEFAULTS.messageEncoding;
  if (encoding !== 'base64' && encoding !== 'none') {
    throw new Error(`host.json: extensions.queues.messageEncoding must be "base64" or "none", got "${encoding}"`);
  }
  return {
    batchSize,
    newBatchThreshold: q.newBatchThreshold ?? Math.floor(batchSize / 2),
    maxPollingIntervalMs:
      q.maxPollingInterval === undefined
        ? QUEUE_DEFAULTS.maxPollingIntervalMs
        : parseTimeSpan(q.maxPollingInterval, 'extensions.queues.maxPollingInterval'),
    visibilityTimeoutMs:
      q.visibilityTimeout === undefined
        ? QUEUE_DEFAULTS.visibilityTimeoutMs
        : parseTimeSpan(q.visibilityTimeout, 'extensions.queues.visibilityTimeout'),
    maxDequeueCount: q.maxDequeueCount ?? QUEUE_DEFAULTS.maxDequeueCount,
    messageEncoding: encoding,
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP routes

interface CompiledRoute {
  fn: string;
  methods: Set<string> | undefined;
  regex: RegExp;
  params: { name: string; constraint?: string }[];
  /** Literal segments count more than parameters (ASP.NET-style precedence). */
  precedence: number;
  template: string;
}

const CONSTRAINTS: Record<string, RegExp> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  alpha: /^[a-z]+$/i,
  bool: /^(true|false)$/i,
  guid: /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i,
};

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function compileRoute(fn: string, template: string, methods?: readonly string[]): CompiledRoute {
  const params: CompiledRoute['params'] = [];
  let pattern = '';
  let precedence = 0;
  const segments = template.replace(/^\/+|\/+$/g, '').split('/').filter((s) => s !== '');
  for (const segment of segments) {
    const whole = /^\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?(\?)?\}$/.exec(segment);
    if (whole) {
      const [, catchAll, name, constraint, optional] = whole;
      params.push({ name, constraint });
      if (catchAll) pattern += '(?:/(.*))?';
      else if (optional) pattern += '(?:/([^/]+))?';
      else pattern += '/([^/]+)';
      continue;
    }
    if (segment.includes('{')) throw new Error(`route "${template}" of ${fn}: unsupported segment "${segment}"`);
    pattern += '/' + escapeRegex(segment);
    precedence += 1;
  }
  return {
    fn,
    methods: methods?.length ? new Set(methods.map((m) => m.toUpperCase())) : undefined,
    regex: new RegExp(`^${pattern}/?$`, 'i'),
    params,
    precedence,
    template,
  };
}

function matchRoute(route: CompiledRoute, pathname: string): Record<string, string> | undefined {
  const m = route.regex.exec(pathname);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < route.params.length; i++) {
    const raw = m[i + 1];
    if (raw === undefined || raw === '') continue;
    let value: string;
    try {
      value = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    const c = route.params[i].constraint;
    if (c && CONSTRAINTS[c] && !CONSTRAINTS[c].test(value)) return undefined;
    params[route.params[i].name] = value;
  }
  return params;
}

// ---------------------------------------------------------------------------------------------

interface FunctionsLib {
  HttpRequest: new (init: unknown) => unknown;
  HttpResponse: new (init?: unknown) => HttpResponseLike;
  InvocationContext: new (init: unknown) => InvocationContextLike;
}
interface HttpResponseLike {
  status: number;
  headers: Headers;
  cookies: Cookie[];
  arrayBuffer(): Promise<ArrayBuffer>;
}
interface Cookie {
  name: string;
  value: string;
  domain?: string;
  path?: string;
  expires?: Date | number;
  secure?: boolean;
  httpOnly?: boolean;
  sameSite?: 'Strict' | 'Lax' | 'None';
  maxAge?: number;
}
interface InvocationContextLike {
  extraOutputs: { get(name: string): unknown };
}

interface Registered {
  metadata: CoreFunctionMetadata;
  handler: CoreHandler;
  trigger: BindingMetadata & { name: string };
}

const LEVELS: Record<CoreLogLevel, LogLevel | undefined> = {
  trace: 'trace',
  debug: 'debug',
  information: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'critical',
  none: undefined,
};

/** A message that is one JSON object (the app's structured logs) becomes the record's fields. */
function structured(message: string): { message: string } & Record<string, unknown> {
  if (message.startsWith('{') && message.endsWith('}')) {
    try {
      const parsed = JSON.parse(message) as Record<string, unknown>;
      if (parsed && typeof parsed.message === 'string') return parsed as { message: string } & Record<string, unknown>;
    } catch {
      // not JSON: a plain message
    }
  }
  return { message };
}

const defaultSink: LogSink = (record) => {
  process.stdout.write(JSON.stringify(record) + '\n');
};

class HostError extends Error {
  constructor(message: string) {
    super(`local host: ${message}`);
    this.name = 'HostError';
  }
}

function sleep(ms: number, signal?: { wake?: () => void }): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) {
      signal.wake = () => {
        clearTimeout(t);
        resolve();
      };
    }
  });
}

function errorText(e: unknown): string {
  return e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : format(e);
}

/** Text of a queue message → what the handler receives: parsed JSON for JSON objects/arrays. */
function queueInput(text: string): unknown {
  const t = text.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeMessage(text: string, encoding: 'base64' | 'none'): string {
  if (encoding === 'none') return text;
  const compact = text.replace(/\s+/g, '');
  if (!BASE64.test(compact)) throw new HostError('message is not valid base64 (host.json messageEncoding is base64)');
  return Buffer.from(compact, 'base64').toString('utf8');
}

function encodeMessage(text: string, encoding: 'base64' | 'none'): string {
  return encoding === 'base64' ? Buffer.from(text, 'utf8').toString('base64') : text;
}

function serializeCookie(c: Cookie): string {
  let s = `${c.name}=${encodeURIComponent(c.value)}`;
  if (c.domain) s += `; Domain=${c.domain}`;
  if (c.path) s += `; Path=${c.path}`;
  if (c.expires !== undefined) s += `; Expires=${new Date(c.expires).toUTCString()}`;
  if (c.maxAge !== undefined) s += `; Max-Age=${c.maxAge}`;
  if (c.secure) s += '; Secure';
  if (c.httpOnly) s += '; HttpOnly';
  if (c.sameSite) s += `; SameSite=${c.sameSite}`;
  return s;
}

// ---------------------------------------------------------------------------------------------

export async function startHost(options: HostOptions): Promise<Host> {
  const sink = options.log ?? defaultSink;
  const log = (level: LogLevel, message: string, extra: Partial<LogRecord> = {}): void => {
    sink({ timestamp: new Date().toISOString(), level, category: 'host', message, ...extra });
  };
  const systemLog = (level: CoreLogLevel, message: string): void => {
    const mapped = LEVELS[level];
    if (mapped && mapped !== 'trace' && mapped !== 'debug') {
      sink({ timestamp: new Date().toISOString(), level: mapped, category: 'system', message });
    }
  };

  const setting = (name: string): string | undefined => options.settings?.[name] ?? process.env[name];
  /** Resolves `%NAME%` binding expressions from settings (the Functions convention). */
  const resolveExpression = (value: string, what: string): string =>
    value.replace(/%([^%]+)%/g, (_, name: string) => {
      const v = setting(name);
      if (v === undefined || v === '') throw new HostError(`${what} uses %${name}% but app setting ${name} is not set`);
      return v;
    });

  const hostJson = loadHostJson(options.hostJson);
  const queueConfig = queueSettings(hostJson);
  const functionTimeoutMs = hostJson.functionTimeout ? parseTimeSpan(hostJson.functionTimeout, 'functionTimeout') : undefined;
  const routePrefix = (hostJson.extensions?.http?.routePrefix ?? 'api').replace(/^\/+|\/+$/g, '');

  const entryUrl = /^file:/.test(options.entry) ? options.entry : pathToFileURL(path.resolve(options.entry)).href;
  const registrations = await loadEntry(entryUrl, (url) => import(url), systemLog);
  setSystemLog(systemLog);
  const lib = createRequire(entryUrl)('@azure/functions') as FunctionsLib;

  if (registrations.functions.length === 0) {
    throw new HostError(
      `${options.entry} registered no functions. If it was imported before startHost, @azure/functions ` +
        'switched to test mode; let the host be the first to import it.',
    );
  }
  const functions = new Map<string, Registered>();
  for (const { metadata, handler } of registrations.functions) {
    const entry = Object.entries(metadata.bindings).find(([, b]) => b.direction === 'in' && /Trigger$/.test(b.type));
    if (!entry) throw new HostError(`function ${metadata.name} has no trigger binding`);
    const [name, binding] = entry;
    functions.set(metadata.name, { metadata, handler, trigger: { ...binding, name } });
  }
  const hooks = (name: CoreHookName): CoreHookCallback[] =>
    registrations.hooks.filter((h) => h.name === name).map((h) => h.callback);
  const appHookData: Record<string, unknown> = {};

  // ----- invocation core -----
  let inFlight = 0;
  let stopping = false;
  const idleWaiters = new Set<() => void>();
  const notifyActivity = (): void => {
    for (const w of idleWaiters) w();
  };

  const queueClients = new Map<string, QueueServiceClient>();
  function queueService(connection: string | undefined): QueueServiceClient {
    const name = connection || 'AzureWebJobsStorage';
    const cached = queueClients.get(name);
    if (cached) return cached;
    const value = setting(name) ?? setting(`AzureWebJobs${name}`);
    if (!value) throw new HostError(`connection setting "${name}" is not set (looked for ${name} and AzureWebJobs${name})`);
    const client = QueueServiceClient.fromConnectionString(value);
    queueClients.set(name, client);
    return client;
  }
  const createdQueues = new Set<string>();
  async function ensureQueue(client: QueueClient): Promise<void> {
    if (createdQueues.has(client.url)) return;
    await client.createIfNotExists();
    createdQueues.add(client.url);
  }

  async function writeQueueOutputs(fn: Registered, context: InvocationContextLike, result: unknown): Promise<void> {
    for (const [bindingName, binding] of Object.entries(fn.metadata.bindings)) {
      if (binding.direction !== 'out' || binding.type !== 'queue') continue;
      const value = bindingName === '$return' ? result : context.extraOutputs.get(bindingName);
      if (value === undefined || value === null) continue;
      const queueName = resolveExpression(String(binding.queueName), `${fn.metadata.name}.${bindingName}.queueName`);
      const client = queueService(binding.connection as string | undefined).getQueueClient(queueName);
      await ensureQueue(client);
      for (const item of Array.isArray(value) ? value : [value]) {
        const text = typeof item === 'string' ? item : JSON.stringify(item);
        await client.sendMessage(encodeMessage(text, queueConfig.messageEncoding));
      }
    }
  }

  interface InvocationRequest {
    fn: Registered;
    input: unknown;
    triggerMetadata?: Record<string, unknown>;
    reason: string;
  }

  /** Runs one invocation: context, hooks, handler, queue outputs, host log lines. Throws the handler's error. */
  async function runInvocation({ fn, input, triggerMetadata, reason }: InvocationRequest): Promise<unknown> {
    const invocationId = randomUUID();
    const functionName = fn.metadata.name;
    inFlight++;
    const started = Date.now();
    const logHooks = hooks('log');
    const context = new lib.InvocationContext({
      invocationId,
      functionName,
      triggerMetadata,
      options: {
        trigger: fn.trigger,
        return: fn.metadata.bindings.$return,
        extraInputs: [],
        extraOutputs: Object.entries(fn.metadata.bindings)
          .filter(([n, b]) => n !== '$return' && b.direction === 'out')
          .map(([name, b]) => ({ ...b, name })),
      },
      logHandler: (level: CoreLogLevel, ...args: unknown[]) => {
        let lvl = level;
        // One line per record: objects are printed without line breaks.
        let message = formatWithOptions({ breakLength: Infinity }, ...args);
        for (const hook of logHooks) {
          const hookContext: Record<string, unknown> = { level: lvl, message, category: 'user', invocationContext: context, hookData: {}, appHookData };
          try {
            hook(hookContext);
            lvl = hookContext.level as CoreLogLevel;
            message = hookContext.message as string;
          } catch (e) {
            log('error', `log hook failed: ${errorText(e)}`, { function: functionName, invocationId });
          }
        }
        const mapped = LEVELS[lvl];
        if (mapped) sink({ timestamp: new Date().toISOString(), level: mapped, category: 'user', function: functionName, invocationId, ...structured(message) });
      },
    });
    log('info', `Executing '${functionName}' (Reason='${reason}', Id=${invocationId})`, { function: functionName, invocationId });
    const timeout =
      functionTimeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            log('error', `Timeout value of ${hostJson.functionTimeout} exceeded by function '${functionName}' (Id: ${invocationId}); the real host would abandon it and restart`, { function: functionName, invocationId });
          }, functionTimeoutMs);
    timeout?.unref();
    try {
      const invocationHookData: Record<string, unknown> = {};
      const pre = { hookData: invocationHookData, appHookData, invocationContext: context, inputs: [input], functionCallback: fn.handler as unknown };
      for (const hook of hooks('preInvocation')) await hook(pre);
      let result: unknown;
      let error: unknown;
      try {
        result = await (pre.functionCallback as CoreHandler)(pre.inputs[0], context);
      } catch (e) {
        error = e;
      }
      const postHooks = hooks('postInvocation');
      if (postHooks.length) {
        const post = { hookData: invocationHookData, appHookData, invocationContext: context, inputs: pre.inputs, result, error };
        for (const hook of postHooks) await hook(post);
        result = post.result;
        error = post.error;
      }
      if (error !== undefined) throw error;
      await writeQueueOutputs(fn, context, result);
      log('info', `Executed '${functionName}' (Succeeded, Id=${invocationId}, Duration=${Date.now() - started}ms)`, { function: functionName, invocationId });
      return result;
    } catch (e) {
      log('error', `Executed '${functionName}' (Failed, Id=${invocationId}, Duration=${Date.now() - started}ms)\n${errorText(e)}`, { function: functionName, invocationId });
      throw e;
    } finally {
      if (timeout) clearTimeout(timeout);
      inFlight--;
      notifyActivity();
    }
  }

  // ----- timers -----
  interface TimerState {
    fn: Registered;
    schedule: CronSchedule;
    handle?: NodeJS.Timeout;
    last?: Date;
    running?: Promise<unknown>;
  }
  const timers: TimerState[] = [];
  for (const fn of functions.values()) {
    if (fn.trigger.type !== 'timerTrigger') continue;
    const expression = resolveExpression(String(fn.trigger.schedule), `${fn.metadata.name}.schedule`);
    let schedule: CronSchedule;
    try {
      schedule = parseNcrontab(expression);
    } catch (e) {
      throw new HostError(`function ${fn.metadata.name}: ${(e as Error).message}`);
    }
    timers.push({ fn, schedule });
  }

  function timerInput(t: TimerState, scheduledFor: Date | undefined): unknown {
    const now = new Date();
    return {
      isPastDue: scheduledFor !== undefined && now.getTime() - scheduledFor.getTime() > 1000,
      schedule: { adjustForDST: false },
      scheduleStatus: {
        last: (t.last ?? new Date(0)).toISOString(),
        next: t.schedule.next(now).toISOString(),
        lastUpdated: now.toISOString(),
      },
    };
  }

  function fireTimer(t: TimerState, reason: string, scheduledFor?: Date): Promise<unknown> {
    const run = runInvocation({ fn: t.fn, input: timerInput(t, scheduledFor), reason }).finally(() => {
      t.last = new Date();
      if (t.running === run) t.running = undefined;
    });
    t.running = run;
    return run;
  }

  function armTimer(t: TimerState): void {
    if (stopping) return;
    const due = t.schedule.next(new Date());
    // setTimeout fires early by a few ms at most; re-arm until the due time has passed.
    const wait = Math.min(Math.max(due.getTime() - Date.now(), 0), 2 ** 31 - 1);
    t.handle = setTimeout(async () => {
      if (stopping) return;
      if (Date.now() < due.getTime()) return armTimer(t);
      // No overlapping runs: a still-running previous invocation makes this occurrence wait.
      if (t.running) await t.running.catch(() => undefined);
      if (stopping) return;
      await fireTimer(t, `Timer fired at ${new Date().toISOString()}`, due).catch(() => undefined);
      armTimer(t);
    }, wait);
  }

  // ----- queues -----
  interface Poller {
    fn: Registered;
    queue: QueueClient;
    poison: QueueClient;
    active: number;
    delay: number;
    signal: { wake?: () => void };
    loop?: Promise<void>;
    /** Messages currently leased, for release on a forced stop. */
    leased: Map<string, { popReceipt: string }>;
  }
  const pollers: Poller[] = [];
  for (const fn of functions.values()) {
    if (fn.trigger.type !== 'queueTrigger') continue;
    const queueName = resolveExpression(String(fn.trigger.queueName), `${fn.metadata.name}.queueName`);
    const service = queueService(fn.trigger.connection as string | undefined);
    pollers.push({
      fn,
      queue: service.getQueueClient(queueName),
      poison: service.getQueueClient(`${queueName}-poison`),
      active: 0,
      delay: MIN_POLL_MS,
      signal: {},
      leased: new Map(),
    });
  }

  const wakePollers = (): void => {
    for (const p of pollers) {
      p.delay = MIN_POLL_MS;
      p.signal.wake?.();
    }
  };

  async function processMessage(p: Poller, message: DequeuedMessageItem): Promise<void> {
    const fnName = p.fn.metadata.name;
    let popReceipt = message.popReceipt;
    p.leased.set(message.messageId, { popReceipt });
    const renew = setInterval(async () => {
      try {
        const r = await p.queue.updateMessage(message.messageId, popReceipt, undefined, LEASE_SECONDS);
        if (r.popReceipt) popReceipt = r.popReceipt;
        p.leased.set(message.messageId, { popReceipt });
      } catch (e) {
        log('warn', `could not renew the lease of message ${message.messageId}: ${(e as Error).message}`, { function: fnName });
      }
    }, (LEASE_SECONDS * 1000) / 2);
    renew.unref();
    let ok = false;
    try {
      const text = decodeMessage(message.messageText, queueConfig.messageEncoding);
      await runInvocation({
        fn: p.fn,
        input: queueInput(text),
        reason: `New queue message detected on '${p.queue.name}'`,
        triggerMetadata: {
          id: message.messageId,
          queueTrigger: text,
          dequeueCount: message.dequeueCount,
          insertionTime: message.insertedOn?.toISOString(),
          expirationTime: message.expiresOn?.toISOString(),
          nextVisibleTime: message.nextVisibleOn?.toISOString(),
          popReceipt: message.popReceipt,
        },
      });
      ok = true;
    } catch (e) {
      if (e instanceof HostError) {
        log('error', `message ${message.messageId} on '${p.queue.name}' failed before the function ran: ${e.message}`, { function: fnName });
      }
      // (handler errors were logged by runInvocation)
    } finally {
      clearInterval(renew);
    }
    try {
      if (ok) {
        await p.queue.deleteMessage(message.messageId, popReceipt);
      } else if (message.dequeueCount >= queueConfig.maxDequeueCount) {
        await ensureQueue(p.poison);
        await p.poison.sendMessage(message.messageText);
        await p.queue.deleteMessage(message.messageId, popReceipt);
        log('warn', `Message ${message.messageId} has reached MaxDequeueCount of ${queueConfig.maxDequeueCount}. Moving message to queue '${p.poison.name}'.`, { function: fnName });
      } else {
        await p.queue.updateMessage(message.messageId, popReceipt, undefined, Math.ceil(queueConfig.visibilityTimeoutMs / 1000));
      }
    } catch (e) {
      // Lost the lease (e.g. it expired): the message reappears and is retried; nothing else to do.
      log('warn', `could not complete message ${message.messageId}: ${(e as Error).message}`, { function: fnName });
    } finally {
      p.leased.delete(message.messageId);
    }
  }

  async function pollLoop(p: Poller): Promise<void> {
    try {
      await ensureQueue(p.queue);
    } catch (e) {
      log('error', `cannot create queue '${p.queue.name}': ${(e as Error).message}`, { function: p.fn.metadata.name });
    }
    while (!stopping) {
      // Fetch a new batch only when the running count is down to newBatchThreshold.
      if (p.active > queueConfig.newBatchThreshold) {
        await sleep(MIN_POLL_MS, p.signal);
        continue;
      }
      let messages: DequeuedMessageItem[] = [];
      try {
        messages = (await p.queue.receiveMessages({ numberOfMessages: queueConfig.batchSize, visibilityTimeout: LEASE_SECONDS }))
          .receivedMessageItems;
      } catch (e) {
        log('warn', `polling '${p.queue.name}' failed: ${(e as Error).message}`, { function: p.fn.metadata.name });
        createdQueues.delete(p.queue.url);
        await ensureQueue(p.queue).catch(() => undefined);
      }
      if (stopping && messages.length) {
        // Leave them for the next start.
        await Promise.all(messages.map((m) => p.queue.updateMessage(m.messageId, m.popReceipt, undefined, 0).catch(() => undefined)));
        break;
      }
      if (messages.length) {
        p.delay = MIN_POLL_MS;
        for (const m of messages) {
          p.active++;
          processMessage(p, m)
            .catch((e) => log('error', `message ${m.messageId}: ${errorText(e)}`, { function: p.fn.metadata.name }))
            .finally(() => {
              p.active--;
              p.signal.wake?.();
              notifyActivity();
            });
        }
        continue;
      }
      // Empty: exponential back-off up to maxPollingInterval.
      await sleep(p.delay, p.signal);
      p.delay = Math.min(p.delay * 2, Math.max(queueConfig.maxPollingIntervalMs, MIN_POLL_MS));
    }
  }

  // ----- HTTP -----
  const routes: CompiledRoute[] = [];
  for (const fn of functions.values()) {
    if (fn.trigger.type !== 'httpTrigger') continue;
    const template = typeof fn.trigger.route === 'string' && fn.trigger.route !== '' ? fn.trigger.route : fn.metadata.name;
    routes.push(compileRoute(fn.metadata.name, template, fn.trigger.methods as string[] | undefined));
  }
  routes.sort((a, b) => b.precedence - a.precedence);

  for (const fn of functions.values()) {
    const supported = ['httpTrigger', 'timerTrigger', 'queueTrigger'];
    if (!supported.includes(fn.trigger.type)) {
      log('warn', `function ${fn.metadata.name}: trigger type ${fn.trigger.type} is not supported by the local host; it will only run through invoke()`);
    }
    for (const [name, b] of Object.entries(fn.metadata.bindings)) {
      if (name === fn.trigger.name) continue;
      if (b.direction === 'out' && (b.type === 'http' || b.type === 'queue')) continue;
      log('warn', `function ${fn.metadata.name}: ${b.direction} binding "${name}" of type ${b.type} is not supported by the local host and is ignored`);
    }
  }

  function readBody(req: http.IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_HTTP_BODY) {
          reject(Object.assign(new Error('request body too large'), { status: 413 }));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  async function handleAdmin(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): Promise<void> {
    if (pathname === '/admin/host/status' && req.method === 'GET') {
      return sendJson(res, 200, { state: stopping ? 'Stopping' : 'Running', version: 'local' });
    }
    if (pathname === '/admin/functions' && req.method === 'GET') {
      return sendJson(res, 200, [...functions.values()].map((f) => f.metadata));
    }
    const m = /^\/admin\/functions\/([^/]+)$/.exec(pathname);
    if (m && req.method === 'POST') {
      const name = decodeURIComponent(m[1]);
      const fn = [...functions.values()].find((f) => f.metadata.name.toLowerCase() === name.toLowerCase());
      if (!fn) return sendJson(res, 404, { error: { code: 'function_not_found', message: `no function named "${name}"`, details: [] } });
      if (fn.trigger.type === 'httpTrigger') {
        return sendJson(res, 400, { error: { code: 'http_function', message: `"${fn.metadata.name}" is an HTTP function; call its route instead`, details: [] } });
      }
      const raw = (await readBody(req)).toString('utf8');
      let input: string | undefined;
      if (raw.trim() !== '') {
        try {
          const body = JSON.parse(raw) as { input?: unknown };
          input = body.input === undefined || body.input === null ? undefined : typeof body.input === 'string' ? body.input : JSON.stringify(body.input);
        } catch {
          return sendJson(res, 400, { error: { code: 'invalid_json', message: 'body must be JSON like {"input": "..."}', details: [] } });
        }
      }
      invoke(fn.metadata.name, input).catch(() => undefined);
      res.writeHead(202, { 'content-length': 0 });
      return void res.end();
    }
    return sendJson(res, 404, { error: { code: 'not_found', message: 'no such admin endpoint', details: [] } });
  }

  async function handleHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const base = `http://${req.headers.host ?? `127.0.0.1:${port}`}`;
    const url = new URL(req.url ?? '/', base);
    const pathname = url.pathname;
    if (pathname.startsWith('/admin/')) return handleAdmin(req, res, pathname);
    const prefix = routePrefix ? `/${routePrefix}` : '';
    if (prefix && !(pathname.toLowerCase() === prefix || pathname.toLowerCase().startsWith(prefix + '/'))) {
      return sendJson(res, 404, { error: { code: 'not_found', message: 'no function matches this route', details: [] } });
    }
    const rest = pathname.slice(prefix.length);
    const method = (req.method ?? 'GET').toUpperCase();
    let matched: { route: CompiledRoute; params: Record<string, string> } | undefined;
    const allowed = new Set<string>();
    for (const route of routes) {
      const params = matchRoute(route, rest);
      if (!params) continue;
      if (!route.methods || route.methods.has(method)) {
        matched = { route, params };
        break;
      }
      for (const m of route.methods) allowed.add(m);
    }
    if (!matched) {
      if (allowed.size) {
        return sendJson(res, 405, { error: { code: 'method_not_allowed', message: `${method} is not allowed here`, details: [] } }, { allow: [...allowed].join(', ') });
      }
      return sendJson(res, 404, { error: { code: 'not_found', message: 'no function matches this route', details: [] } });
    }
    const fn = functions.get(matched.route.fn)!;
    const bytes = await readBody(req);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    const request = new lib.HttpRequest({
      method,
      url: url.href,
      headers,
      // No `query`: the library then reads it from the URL, keeping repeated keys.
      params: matched.params,
      body: bytes.length ? { bytes } : undefined,
    });
    let result: unknown;
    try {
      result = await runInvocation({ fn, input: request, reason: `This function was programmatically called via the host APIs (${method} ${pathname})` });
    } catch {
      // Details are in the host log; never in the response.
      return sendJson(res, 500, { error: { code: 'internal_error', message: 'The function failed. See the host log for details.', details: [] } });
    }
    if (result === undefined || result === null) {
      res.writeHead(204);
      return void res.end();
    }
    let response: HttpResponseLike;
    try {
      response = result instanceof lib.HttpResponse ? (result as HttpResponseLike) : new lib.HttpResponse(result);
    } catch (e) {
      log('error', `function ${fn.metadata.name} returned an invalid HTTP response: ${errorText(e)}`, { function: fn.metadata.name });
      return sendJson(res, 500, { error: { code: 'internal_error', message: 'The function failed. See the host log for details.', details: [] } });
    }
    const body = Buffer.from(await response.arrayBuffer());
    const outHeaders: Record<string, string | string[]> = {};
    response.headers.forEach((value, key) => {
      outHeaders[key] = value;
    });
    const cookies = (response.cookies ?? []).map(serializeCookie);
    if (cookies.length) outHeaders['set-cookie'] = cookies;
    outHeaders['content-length'] = String(body.length);
    res.writeHead(response.status || 200, outHeaders);
    res.end(method === 'HEAD' ? undefined : body);
  }

  const server = http.createServer((req, res) => {
    handleHttp(req, res).catch((e) => {
      const status = (e as { status?: number }).status ?? 500;
      if (status === 500) log('error', `request ${req.method} ${req.url} failed in the host: ${errorText(e)}`);
      if (!res.headersSent) sendJson(res, status, { error: { code: status === 413 ? 'body_too_large' : 'internal_error', message: status === 413 ? 'request body too large' : 'The host failed to handle the request.', details: [] } });
      else res.destroy();
    });
  });
  const port = await new Promise<number>((resolve, reject) => {
    const requested = options.port ?? 7071;
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'EADDRINUSE'
          ? new HostError(`port ${requested} on 127.0.0.1 is already in use (is another host running?); choose another port`)
          : e,
      );
    });
    server.listen(requested, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
  const url = `http://127.0.0.1:${port}`;

  // ----- public API -----
  async function invoke(name: string, input?: string): Promise<unknown> {
    const fn = functions.get(name);
    if (!fn) throw new HostError(`no function named "${name}" (registered: ${[...functions.keys()].join(', ')})`);
    try {
      if (fn.trigger.type === 'httpTrigger') throw new HostError(`"${name}" is an HTTP function; call ${url}/${routePrefix}/... instead`);
      if (fn.trigger.type === 'timerTrigger') {
        const t = timers.find((x) => x.fn === fn)!;
        return await fireTimer(t, 'This function was programmatically called via the host APIs.');
      }
      const text = input ?? '';
      return await runInvocation({
        fn,
        input: fn.trigger.type === 'queueTrigger' ? queueInput(text) : input,
        reason: 'This function was programmatically called via the host APIs.',
        triggerMetadata: fn.trigger.type === 'queueTrigger' ? { queueTrigger: text, dequeueCount: 1 } : undefined,
      });
    } finally {
      // A function run by hand may have queued work: poll now rather than after the back-off.
      wakePollers();
    }
  }

  async function whenIdle(opts: WhenIdleOptions = {}): Promise<void> {
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    let quiet = 0;
    wakePollers();
    for (;;) {
      const busy = inFlight + pollers.reduce((n, p) => n + p.active, 0);
      if (busy === 0) {
        const counts = await Promise.all(
          pollers.map((p) =>
            p.queue.getProperties().then(
              (r) => r.approximateMessagesCount ?? 0,
              () => 0,
            ),
          ),
        );
        const stillQuiet = inFlight + pollers.reduce((n, p) => n + p.active, 0) === 0;
        if (stillQuiet && counts.every((c) => c === 0)) {
          // Twice in a row, so a message sent just before a completion is not missed.
          if (++quiet >= 2) return;
        } else {
          quiet = 0;
          if (counts.some((c) => c > 0)) wakePollers();
        }
      } else {
        quiet = 0;
      }
      if (Date.now() > deadline) {
        const detail = pollers.map((p) => `${p.queue.name}: ${p.active} running`).join(', ');
        throw new HostError(`whenIdle: still busy after ${opts.timeoutMs ?? 120_000} ms (${inFlight} invocations in flight; ${detail})`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 50);
        function done(): void {
          clearTimeout(t);
          idleWaiters.delete(done);
          resolve();
        }
        idleWaiters.add(done);
      });
    }
  }

  let stopped: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopped ??= (async () => {
      stopping = true;
      for (const t of timers) if (t.handle) clearTimeout(t.handle);
      for (const p of pollers) p.signal.wake?.();
      await Promise.all(pollers.map((p) => p.loop));
      const graceUntil = Date.now() + (options.shutdownGraceMs ?? 10_000);
      while ((inFlight > 0 || pollers.some((p) => p.active > 0)) && Date.now() < graceUntil) {
        await new Promise((r) => setTimeout(r, 25));
      }
      // Anything still running is abandoned: make its messages visible again for the next start.
      for (const p of pollers) {
        for (const [id, { popReceipt }] of p.leased) {
          await p.queue.updateMessage(id, popReceipt, undefined, 0).catch(() => undefined);
        }
      }
      for (const hook of hooks('appTerminate')) {
        try {
          await hook({ hookData: {}, appHookData });
        } catch (e) {
          log('error', `appTerminate hook failed: ${errorText(e)}`);
        }
      }
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    })();
    return stopped;
  }

  // ----- start -----
  try {
    for (const hook of hooks('appStart')) await hook({ hookData: {}, appHookData });
  } catch (e) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw e;
  }
  if (options.queues !== false) for (const p of pollers) p.loop = pollLoop(p);
  for (const t of timers) {
    if (t.fn.trigger.runOnStartup) fireTimer(t, 'Timer fired on startup (runOnStartup)').catch(() => undefined);
    if (options.timers !== false) armTimer(t);
  }

  return { url, port, functions: [...functions.values()].map((f) => f.metadata), invoke, whenIdle, stop };
}

/** One line per function, like the list `func start` prints. */
export function describeFunctions(host: Pick<Host, 'url' | 'functions'>, routePrefix = 'api'): string {
  return host.functions
    .map((f) => {
      const trigger = Object.values(f.bindings).find((b) => b.direction === 'in' && /Trigger$/.test(b.type));
      if (trigger?.type === 'httpTrigger') {
        const methods = ((trigger.methods as string[] | undefined) ?? []).join(',');
        const route = (trigger.route as string | undefined) || f.name;
        return `  ${f.name}: [${methods}] ${host.url}/${routePrefix}/${route}`;
      }
      if (trigger?.type === 'timerTrigger') return `  ${f.name}: timerTrigger (${String(trigger.schedule)})`;
      if (trigger?.type === 'queueTrigger') return `  ${f.name}: queueTrigger (${String(trigger.queueName)})`;
      return `  ${f.name}: ${trigger?.type ?? 'unknown'}`;
    })
    .join('\n');
}
