// The console web page (GET /api/console and its files): anonymous, since the page holds no secret;
// its data comes from the keyed routes with the key the person gives it.
import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { consoleAsset } from '../lib/api/console.js';

export async function consolePage(request: HttpRequest): Promise<HttpResponseInit> {
  const { status, headers, body } = consoleAsset(request.params.asset, new URL(request.url).pathname);
  return { status, headers, body };
}

app.http('console', { authLevel: 'anonymous', route: 'console/{*asset}', methods: ['GET'], handler: consolePage });
