// The `@azure/functions-core` module that the real Node worker provides, in-process (dev tool only).
//
// `@azure/functions` looks for it with a lazy `require('@azure/functions-core')`; if found, every
// `app.http/timer/storageQueue(...)` call lands in `registerFunction(metadata, handler)`. We serve it
// from the require cache under a synthetic file name, so no file has to ship next to the build.
import Module from 'node:module';

export interface BindingMetadata {
  type: string;
  direction?: 'in' | 'out' | 'inout';
  name?: string;
  [key: string]: unknown;
}

export interface CoreFunctionMetadata {
  name: string;
  bindings: Record<string, BindingMetadata>;
  retryOptions?: unknown;
}

export type CoreHandler = (triggerInput: unknown, context: unknown) => unknown;
export type CoreHookName = 'appStart' | 'appTerminate' | 'preInvocation' | 'postInvocation' | 'log';
export type CoreHookCallback = (coreContext: Record<string, unknown>) => unknown;
export type CoreLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';

export interface Registrations {
  functions: { metadata: CoreFunctionMetadata; handler: CoreHandler }[];
  hooks: { name: CoreHookName; callback: CoreHookCallback }[];
}

/** Receives the worker-level ("system") logs of `@azure/functions` for the host being started. */
export type SystemLogSink = (level: CoreLogLevel, message: string) => void;

const SHIM_FILENAME = '\0local-host:@azure/functions-core';

interface State {
  capture?: Registrations;
  systemLog?: SystemLogSink;
  programmingModel?: unknown;
  /** Registrations made while each entry module was first imported, by resolved entry URL. */
  byEntry: Map<string, Registrations>;
}

// One state per process, shared even if this module were loaded twice (tsx + dist, vitest).
const STATE_KEY = Symbol.for('warehouse-export.local-host.functions-core');
const state: State = ((globalThis as Record<symbol, unknown>)[STATE_KEY] ??= { byEntry: new Map() }) as State;

class Disposable {
  #onDispose?: () => void;
  constructor(onDispose: () => void) {
    this.#onDispose = onDispose;
  }
  dispose(): void {
    this.#onDispose?.();
    this.#onDispose = undefined;
  }
}

function registrations(what: string): Registrations {
  if (!state.capture) {
    throw new Error(
      `local host: ${what} was called outside an entry import; register functions at the top level of the entry module`,
    );
  }
  return state.capture;
}

const coreApi = {
  version: '3.10.1-local',
  Disposable,
  setProgrammingModel(model: unknown): void {
    state.programmingModel = model;
  },
  getProgrammingModel(): unknown {
    return state.programmingModel;
  },
  registerFunction(metadata: CoreFunctionMetadata, handler: CoreHandler): Disposable {
    const target = registrations(`registerFunction("${metadata.name}")`);
    if (target.functions.some((f) => f.metadata.name === metadata.name)) {
      throw new Error(`local host: a function named "${metadata.name}" is already registered`);
    }
    const entry = { metadata, handler };
    target.functions.push(entry);
    return new Disposable(() => {
      const i = target.functions.indexOf(entry);
      if (i >= 0) target.functions.splice(i, 1);
    });
  },
  registerHook(name: CoreHookName, callback: CoreHookCallback): Disposable {
    const target = registrations(`registerHook("${name}")`);
    const entry = { name, callback };
    target.hooks.push(entry);
    return new Disposable(() => {
      const i = target.hooks.indexOf(entry);
      if (i >= 0) target.hooks.splice(i, 1);
    });
  },
  log(level: CoreLogLevel, _category: string, message: string): void {
    if (state.systemLog) state.systemLog(level, message);
    else process.stderr.write(`[functions-core] ${level}: ${message}\n`);
  },
};

let installed = false;

/** Makes `require('@azure/functions-core')` resolve to the in-process core API. Idempotent. */
export function installFunctionsCore(): void {
  if (installed) return;
  installed = true;
  const M = Module as unknown as {
    _resolveFilename: (request: string, ...rest: unknown[]) => string;
    _cache: Record<string, unknown>;
  };
  const cached = new Module(SHIM_FILENAME);
  cached.filename = SHIM_FILENAME;
  cached.loaded = true;
  cached.exports = coreApi;
  M._cache[SHIM_FILENAME] = cached;
  const original = M._resolveFilename;
  M._resolveFilename = function resolveFilename(this: unknown, request: string, ...rest: unknown[]): string {
    if (request === '@azure/functions-core') return SHIM_FILENAME;
    return original.call(this, request, ...rest);
  };
}

/**
 * Imports `entryUrl` once per process and returns what it registered. A second host on the same
 * entry gets the same registrations (ES modules run once); concurrent calls are serialized.
 */
let importChain: Promise<unknown> = Promise.resolve();
export function loadEntry(
  entryUrl: string,
  importer: (url: string) => Promise<unknown>,
  systemLog: SystemLogSink,
): Promise<Registrations> {
  installFunctionsCore();
  const run = async (): Promise<Registrations> => {
    state.systemLog = systemLog;
    const known = state.byEntry.get(entryUrl);
    if (known) return known;
    const captured: Registrations = { functions: [], hooks: [] };
    state.capture = captured;
    try {
      await importer(entryUrl);
    } finally {
      state.capture = undefined;
    }
    state.byEntry.set(entryUrl, captured);
    return captured;
  };
  const result = importChain.then(run, run);
  importChain = result.catch(() => undefined);
  return result;
}

/** Routes worker-level logs to the most recently started host. */
export function setSystemLog(sink: SystemLogSink | undefined): void {
  state.systemLog = sink;
}
