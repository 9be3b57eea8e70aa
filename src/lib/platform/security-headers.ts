// Response headers of the API (and, later, the console page): no sniffing, no referrer, no caching of
// answers that describe a customer's integration.
export const API_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

/**
 * Content-Security-Policy of an HTML page served by the app (the console): its own origin only, no
 * inline script or style, no plugins, never framed (clickjacking). `connectSrc` adds API origins.
 */
export function contentSecurityPolicy(options: { connectSrc?: string[] } = {}): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${["'self'", ...(options.connectSrc ?? [])].join(' ')}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Headers of an HTML page: the API's, its CSP, and no framing for browsers without CSP 2. */
export function htmlSecurityHeaders(options: { connectSrc?: string[] } = {}): Record<string, string> {
  return { ...API_SECURITY_HEADERS, 'Content-Security-Policy': contentSecurityPolicy(options), 'X-Frame-Options': 'DENY' };
}
