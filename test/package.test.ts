// The deployment package holds production dependencies only (.ci/package runs npm ci --omit=dev):
// so everything the deployed entry imports must be one, and the dev tools must stay out of it.
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importsOf } from './support/imports.js';

const ROOT = path.resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };

/** Every source file the entry reaches through relative imports, and the packages they import. */
function reach(entry: string): { files: string[]; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
    }
  };
  visit(path.join(ROOT, entry));
  return { files: [...files].map((f) => path.relative(ROOT, f)), packages };
}

describe('the deployment package', () => {
  const { files, packages } = reach('src/index.ts');

  it('the entry reaches src/functions and src/lib only, never the local host or the CLI', () => {
    expect(files.length).toBeGreaterThan(20);
    expect(files.filter((f) => !/^src\/(index\.ts|functions\/|lib\/)/.test(f))).toEqual([]);
  });

  it('every package the entry imports is a production dependency (or a Node built-in)', () => {
    const builtins = new Set(builtinModules);
    const missing = [...packages].filter((p) => !p.startsWith('node:') && !builtins.has(p) && !(p in pkg.dependencies));
    expect(missing).toEqual([]);
  });

  it('the production install has no Azurite, test runner or DuckDB (npm ls --omit=dev)', () => {
    const production = Object.entries(lock.packages).filter(([name, p]) => name && !p.dev).map(([name]) => name.replace(/^.*node_modules\//, ''));
    expect(production.length).toBeGreaterThan(0);
    expect(production.filter((n) => ['azurite', 'vitest', '@duckdb/node-api', 'typescript', 'tsx'].includes(n))).toEqual([]);
    expect(Object.keys(pkg.dependencies).filter((d) => d in pkg.devDependencies)).toEqual([]);
  });
});
