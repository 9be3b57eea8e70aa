// What the app registered: imports the entry with `@azure/functions-core` provided (functions-core.ts),
// finds each function's trigger, and holds the hooks and the `@azure/functions` classes the host
// builds requests, responses and contexts with (the entry's own copy of the library).
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  loadEntry,
  setSystemLog,
  type BindingMetadata,
  type CoreFunctionMetadata,
  type CoreHandler,
  type CoreHookCallback,
  type CoreHookName,
  type SystemLogSink,
} from '../functions-core.js';
import { HostError } from './errors.js';
import type { HostLog } from './logging.js';

export interface Registered {
  metadata: CoreFunctionMetadata;
  handler: CoreHandler;
  trigger: BindingMetadata & { name: string };
}

export interface Cookie {
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
export interface HttpResponseLike {
  status: number;
  headers: Headers;
  cookies: Cookie[];
  arrayBuffer(): Promise<ArrayBuffer>;
}
export interface InvocationContextLike {
  extraOutputs: { get(name: string): unknown };
}
/** The classes of `@azure/functions` the host constructs. */
export interface FunctionsLib {
  HttpRequest: new (init: unknown) => unknown;
  HttpResponse: new (init?: unknown) => HttpResponseLike;
  InvocationContext: new (init: unknown) => InvocationContextLike;
}

export interface RegisteredApp {
  /** By function name, in registration order. */
  functions: Map<string, Registered>;
  hooks(name: CoreHookName): CoreHookCallback[];
  /** Shared by every hook call of this host (the worker's `appHookData`). */
  appHookData: Record<string, unknown>;
  lib: FunctionsLib;
}

/** Imports the entry (path or file URL) and returns what it registered; throws if it registered nothing. */
export async function loadApp(entry: string, systemLog: SystemLogSink): Promise<RegisteredApp> {
  const entryUrl = /^file:/.test(entry) ? entry : pathToFileURL(path.resolve(entry)).href;
  const registrations = await loadEntry(entryUrl, (url) => import(url), systemLog);
  setSystemLog(systemLog);
  const lib = createRequire(entryUrl)('@azure/functions') as FunctionsLib;

  if (registrations.functions.length === 0) {
    throw new HostError(
      `${entry} registered no functions. If it was imported before startHost, @azure/functions ` +
        'switched to test mode; let the host be the first to import it.',
    );
  }
  const functions = new Map<string, Registered>();
  for (const { metadata, handler } of registrations.functions) {
    const found = Object.entries(metadata.bindings).find(([, b]) => b.direction === 'in' && /Trigger$/.test(b.type));
    if (!found) throw new HostError(`function ${metadata.name} has no trigger binding`);
    const [name, binding] = found;
    functions.set(metadata.name, { metadata, handler, trigger: { ...binding, name } });
  }
  const hooks = (name: CoreHookName): CoreHookCallback[] =>
    registrations.hooks.filter((h) => h.name === name).map((h) => h.callback);
  return { functions, hooks, appHookData: {}, lib };
}

/** Says at start-up which triggers and bindings the local host leaves out. */
export function warnUnsupported(functions: Iterable<Registered>, log: HostLog): void {
  for (const fn of functions) {
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
}
