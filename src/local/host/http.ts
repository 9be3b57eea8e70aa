// The HTTP server of HTTP triggers: `/<routePrefix>/<route>` → the function's route, an
// @azure/functions HttpRequest in, its HttpResponse (headers, cookies, body) out. Failures of the
// function become a 500 without details (those are in the host log). /admin/* goes to admin.ts.
import http from 'node:http';
import { HostError } from './errors.js';
import type { InvocationRequest } from './invocation.js';
import { errorText, type HostLog } from './logging.js';
import type { Cookie, HttpResponseLike, RegisteredApp } from './registration.js';
import { findRoute, routeTable, type CompiledRoute } from './routes.js';

const MAX_HTTP_BODY = 100 * 1024 * 1024;

export interface HttpDeps {
  app: RegisteredApp;
  routePrefix: string;
  log: HostLog;
  run(request: InvocationRequest): Promise<unknown>;
  admin(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): Promise<void>;
}

/** The route table of the app's HTTP functions (the route defaults to the function name). */
export function httpRoutes(app: RegisteredApp): CompiledRoute[] {
  return routeTable(
    [...app.functions.values()]
      .filter((fn) => fn.trigger.type === 'httpTrigger')
      .map((fn) => ({
        fn: fn.metadata.name,
        template: typeof fn.trigger.route === 'string' && fn.trigger.route !== '' ? fn.trigger.route : fn.metadata.name,
        methods: fn.trigger.methods as string[] | undefined,
      })),
  );
}

export function readBody(req: http.IncomingMessage): Promise<Buffer> {
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

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
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

const FUNCTION_FAILED = { error: { code: 'internal_error', message: 'The function failed. See the host log for details.', details: [] } };
const NO_ROUTE = { error: { code: 'not_found', message: 'no function matches this route', details: [] } };

/** Listens on 127.0.0.1 (`port` 0 picks a free one) and serves the app's HTTP functions. */
export async function startHttpServer(
  port: number,
  routes: readonly CompiledRoute[],
  deps: HttpDeps,
): Promise<{ server: http.Server; port: number }> {
  const { app, routePrefix, log, run } = deps;

  async function handleHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const base = `http://${req.headers.host ?? `127.0.0.1:${listening}`}`;
    const url = new URL(req.url ?? '/', base);
    const pathname = url.pathname;
    if (pathname.startsWith('/admin/')) return deps.admin(req, res, pathname);
    const prefix = routePrefix ? `/${routePrefix}` : '';
    if (prefix && !(pathname.toLowerCase() === prefix || pathname.toLowerCase().startsWith(prefix + '/'))) {
      return sendJson(res, 404, NO_ROUTE);
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const matched = findRoute(routes, pathname.slice(prefix.length), method);
    if (!matched.route) {
      if (matched.allowed.size) {
        return sendJson(res, 405, { error: { code: 'method_not_allowed', message: `${method} is not allowed here`, details: [] } }, { allow: [...matched.allowed].join(', ') });
      }
      return sendJson(res, 404, NO_ROUTE);
    }
    const fn = app.functions.get(matched.route.fn)!;
    const bytes = await readBody(req);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    const request = new app.lib.HttpRequest({
      method,
      url: url.href,
      headers,
      // No `query`: the library then reads it from the URL, keeping repeated keys.
      params: matched.params,
      body: bytes.length ? { bytes } : undefined,
    });
    let result: unknown;
    try {
      result = await run({ fn, input: request, reason: `This function was programmatically called via the host APIs (${method} ${pathname})` });
    } catch {
      // Details are in the host log; never in the response.
      return sendJson(res, 500, FUNCTION_FAILED);
    }
    if (result === undefined || result === null) {
      res.writeHead(204);
      return void res.end();
    }
    let response: HttpResponseLike;
    try {
      response = result instanceof app.lib.HttpResponse ? (result as HttpResponseLike) : new app.lib.HttpResponse(result);
    } catch (e) {
      log('error', `function ${fn.metadata.name} returned an invalid HTTP response: ${errorText(e)}`, { function: fn.metadata.name });
      return sendJson(res, 500, FUNCTION_FAILED);
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
  const listening = await new Promise<number>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'EADDRINUSE'
          ? new HostError(`port ${port} on 127.0.0.1 is already in use (is another host running?); choose another port`)
          : e,
      );
    });
    server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
  return { server, port: listening };
}
