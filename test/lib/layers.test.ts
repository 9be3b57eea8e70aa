// The layering of src/lib (STYLE.md, docs/ARCHITECTURE.md) checked on the import statements
// themselves, so an upward import fails the suite instead of waiting for a review to notice it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importsOf } from '../support/imports.js';

const LIB = path.resolve(__dirname, '../../src/lib');

/** Lower rank = lower layer; a module may import only its own layer or lower ones. */
const RANK: Record<string, number> = {
  platform: 0,
  contract: 1,
  parquet: 1,
  source: 2,
  integration: 3,
  export: 4,
  'services.ts': 5,
  api: 6,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = path.join(dir, e);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const layerOf = (file: string) => path.relative(LIB, file).split(path.sep)[0];

const all = files(LIB).map((file) => ({ file, rel: path.relative(LIB, file), imports: importsOf(readFileSync(file, 'utf8')) }));

describe('src/lib layering', () => {
  it('knows every folder of src/lib', () => {
    expect([...new Set(all.map((f) => layerOf(f.file)))].filter((l) => !(l in RANK))).toEqual([]);
  });

  it('the import parser sees static, type-only, re-exported and dynamic imports', () => {
    expect(importsOf("import { a } from './a.js';\nimport type { B } from '../b.js';\nexport { c } from './c.js';\nconst d = await import('./d.js');\nimport './e.js';")).toEqual(['./a.js', '../b.js', './c.js', './d.js', './e.js']);
  });

  it('no module imports a higher layer, src/functions, src/local or src/cli', () => {
    const upward: string[] = [];
    for (const f of all) {
      for (const spec of f.imports.filter((s) => s.startsWith('.'))) {
        const target = path.resolve(path.dirname(f.file), spec);
        const rel = path.relative(LIB, target);
        if (rel.startsWith('..')) {
          upward.push(`${f.rel} → ${spec} (outside src/lib)`);
          continue;
        }
        if (RANK[layerOf(target)] > RANK[layerOf(f.file)]) upward.push(`${f.rel} → ${rel}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('parquet/ imports nothing but its own files, hyparquet-writer and node built-ins', () => {
    const foreign = all
      .filter((f) => layerOf(f.file) === 'parquet')
      .flatMap((f) => f.imports.filter((s) => !(s.startsWith('./') || s.startsWith('node:') || s === 'hyparquet-writer' || s.startsWith('hyparquet-writer/'))).map((s) => `${f.rel} → ${s}`));
    expect(foreign).toEqual([]);
  });
});
