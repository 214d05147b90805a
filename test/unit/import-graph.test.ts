/**
 * The shape of the import graph (DESIGN.md §1): `src/` never imports `formats/` — `main.ts`, the
 * composition root, is the one exception — so no cycle, even through type-only imports, ties the
 * core and the formats together (one such cycle held 54 files), and the core's modules load in an
 * order without cycles (the emitted JavaScript, where type-only imports are gone).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROOT = path.resolve(DIST, '..');
const COMPOSITION_ROOT = 'src/main.ts';

function sources(base: string, dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(base, dir))) {
    const rel = path.join(dir, name);
    if (statSync(path.join(base, rel)).isDirectory()) out.push(...sources(base, rel, ext));
    else if (name.endsWith(ext) && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

const IMPORT = /^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Relative imports of a file under `base`, as paths relative to it. */
function imports(base: string, file: string, ext: string): string[] {
  const text = readFileSync(path.join(base, file), 'utf8');
  const out: string[] = [];
  for (const m of [...text.matchAll(IMPORT), ...text.matchAll(DYNAMIC)]) {
    const target = path.normalize(path.join(path.dirname(file), m[1].replace(/\.js$/, ext)));
    if (existsSync(path.join(base, target))) out.push(target);
  }
  return out;
}

type Graph = Map<string, string[]>;
function graphOf(base: string, ext: string): Graph {
  const files = [...sources(base, 'src', ext), ...sources(base, 'formats', ext)];
  return new Map(files.map((f) => [f, imports(base, f, ext)]));
}
/** Every import, type-only ones included. */
const graph = graphOf(ROOT, '.ts');
/** What node loads. */
const runtime = graphOf(DIST, '.js');
const inCore = (f: string) => f.startsWith('src' + path.sep);
const inFormats = (f: string) => f.startsWith('formats' + path.sep);

/** Tarjan's strongly connected components of more than one file. */
function cycles(g: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) found.push(component.sort());
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return found;
}
const show = (cs: string[][]) => cs.map((c) => `${c.length} files: ${c.join(' ')}`);

test('no file of src/ but the composition root imports formats/', () => {
  const offenders = [...graph].filter(([f, deps]) => inCore(f) && f !== COMPOSITION_ROOT && deps.some(inFormats)).map(([f]) => f);
  assert.deepEqual(offenders, []);
  // Without this the check above would pass on a graph that failed to read.
  assert.ok(graph.get(COMPOSITION_ROOT)!.some(inFormats), 'main.ts builds the format list');
});

test('no import cycle, type-only imports included, joins src/ and formats/', () => {
  assert.ok(graph.size > 50, `the sources were read (${graph.size} files)`);
  assert.deepEqual(show(cycles(graph).filter((c) => c.some(inCore) && c.some(inFormats))), []);
});

test('the core loads without an import cycle', () => {
  assert.ok(runtime.size > 50, `the built files were read (${runtime.size} files)`);
  assert.deepEqual(show(cycles(runtime).filter((c) => c.some(inCore))), []);
});
