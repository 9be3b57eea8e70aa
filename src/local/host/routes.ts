// HTTP route templates as the Functions host reads them (`{p}`, `{p?}`, `{p:int}`, `{*rest}`) and
// the choice of one function for a request path and method.
export interface CompiledRoute {
  fn: string;
  methods: Set<string> | undefined;
  regex: RegExp;
  params: { name: string; constraint?: string }[];
  /** Literal segments count more than parameters (ASP.NET-style precedence). */
  precedence: number;
  template: string;
}

export type RouteMatch =
  | { route: CompiledRoute; params: Record<string, string> }
  /** No route takes this method and path; `allowed` lists the methods routes with this path take. */
  | { route: undefined; allowed: Set<string> };

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

/** Route parameters of `pathname` (below the route prefix), or undefined if the route does not match. */
export function matchRoute(route: CompiledRoute, pathname: string): Record<string, string> | undefined {
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

/** Compiles every route, most specific first. */
export function routeTable(routes: { fn: string; template: string; methods?: readonly string[] }[]): CompiledRoute[] {
  return routes.map((r) => compileRoute(r.fn, r.template, r.methods)).sort((a, b) => b.precedence - a.precedence);
}

/** The first route (in table order) that matches the path and takes the method. */
export function findRoute(table: readonly CompiledRoute[], pathname: string, method: string): RouteMatch {
  const allowed = new Set<string>();
  for (const route of table) {
    const params = matchRoute(route, pathname);
    if (!params) continue;
    if (!route.methods || route.methods.has(method)) return { route, params };
    for (const m of route.methods) allowed.add(m);
  }
  return { route: undefined, allowed };
}
