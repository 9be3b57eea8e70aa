// Dev tool (tests and benchmarks; not deployed): counts the storage requests a piece of code makes,
// as they leave the process (every SDK call goes through node:http here: Azurite is plain HTTP).
// By default each request is named by its method and resource: the table, or the container of a
// blob ("GET cursors", "PUT <container>").
import http from 'node:http';
import { syncBuiltinESMExports } from 'node:module';

export interface RequestLog {
  /** The name of each request counted, in the order they were sent. */
  readonly requests: string[];
  stop(): void;
}

/** "METHOD resource": /<account>/<table>(keys) or /<account>/<container>/<blob>. */
export function methodAndResource(options: http.RequestOptions): string {
  const path = String(options.path ?? '').split('?')[0];
  const resource = decodeURIComponent(path).split('/')[2]?.replace(/\(.*$/, '') ?? path;
  return `${options.method ?? 'GET'} ${resource}`;
}

/** Counts requests until stop(); `name` says what a request is called (undefined: not counted). */
export function countRequests(name: (options: http.RequestOptions) => string | undefined = methodAndResource): RequestLog {
  const original = http.request;
  const requests: string[] = [];
  const counting = function (this: unknown, ...args: unknown[]) {
    const options = (typeof args[0] === 'object' && !(args[0] instanceof URL) ? args[0] : args[1]) as http.RequestOptions | undefined;
    const named = name(options ?? (args[0] instanceof URL ? { path: args[0].pathname } : {}));
    if (named !== undefined) requests.push(named);
    return (original as (...a: unknown[]) => http.ClientRequest).apply(this, args);
  } as typeof http.request;
  Reflect.set(http, 'request', counting);
  syncBuiltinESMExports();
  return {
    requests,
    stop() {
      Reflect.set(http, 'request', original);
      syncBuiltinESMExports();
    },
  };
}
