// The module specifiers a TypeScript source imports, read from its text (layering and package tests).

/** Every module specifier a file imports or re-exports, static or dynamic. */
export function importsOf(text: string): string[] {
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) {
    specs.push(m[1] ?? m[2] ?? m[3]);
  }
  return specs;
}
