// The admin endpoints Core Tools serves: POST /admin/functions/{name} {"input": "..."} → 202 (runs a
// non-HTTP function in the background), GET /admin/functions (metadata), GET /admin/host/status.
import type http from 'node:http';
import { readBody, sendJson } from './http.js';
import type { RegisteredApp } from './registration.js';

export interface AdminDeps {
  app: RegisteredApp;
  isStopping(): boolean;
  /** The host's invoke(): runs a non-HTTP function with `input` as its trigger text. */
  invoke(name: string, input?: string): Promise<unknown>;
}

export async function handleAdmin(req: http.IncomingMessage, res: http.ServerResponse, pathname: string, deps: AdminDeps): Promise<void> {
  const functions = deps.app.functions;
  if (pathname === '/admin/host/status' && req.method === 'GET') {
    return sendJson(res, 200, { state: deps.isStopping() ? 'Stopping' : 'Running', version: 'local' });
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
    deps.invoke(fn.metadata.name, input).catch(() => undefined);
    res.writeHead(202, { 'content-length': 0 });
    return void res.end();
  }
  return sendJson(res, 404, { error: { code: 'not_found', message: 'no such admin endpoint', details: [] } });
}
