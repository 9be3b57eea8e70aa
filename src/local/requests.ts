// Dev tool (tests and benchmarks; not deployed): counts the storage requests a piece of code makes,
// as they leave the process (every SDK call goes through node:http here: Azurite is plain HTTP).
// Each request is named by its method and resource: the table, or the container of a blob
// ("GET cursors", "PUT <container>").
import http from 'node:http';
import { syncBuiltinESMExports } from 'node:module';

export interface RequestLog {
  /** "METHOD resource" of each request, in the order they were sent. */
  readonly requests: string[];
  stop(): void;
}

export function countRequests(): RequestLog {
  const original = http.request;
  const requests: string[] = [];
  const counting = function (this: unknown, ...args: unknown[]) {
    const options = (typeof args[0] === 'object' && !(args[0] instanceof URL) ? args[0] : args[1]) as http.RequestOptions | undefined;
    const path = String(options?.path ?? (args[0] instanceof URL ? args[0].pathname : '')).split('?')[0];
    // /<account>/<table>(keys) or /<account>/<container>/<blob>
    const resource = decodeURIComponent(path).split('/')[2]?.replace(/\(.*$/, '') ?? path;
    requests.push(`${options?.method ?? 'GET'} ${resource}`);
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
