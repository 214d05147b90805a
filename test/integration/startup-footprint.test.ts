/**
 * What a started server holds (issue 10, idle RSS): the dependencies only some installations use
 * are not loaded at start, and password hashing does not leave scrypt's 16 MiB resident in a
 * thread's malloc arena (the native malloc helper, native/malloc.c, which must be built).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnServer } from '../helpers/stowage.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'stowage-footprint-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Preloaded into the server: records every module it loads, ES modules through a loader hook
 * (on its own thread, appending to a file) and CommonJS ones from require's cache on SIGUSR2.
 */
const HOOKS = `import { appendFileSync } from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function load(url, context, next) { appendFileSync(out, url + '\\n'); return next(url, context); }
`;
const PRELOAD = `const { register } = require('node:module');
const { pathToFileURL } = require('node:url');
const fs = require('node:fs');
const out = process.env.FOOTPRINT_OUT;
register(pathToFileURL(process.env.FOOTPRINT_HOOKS).href, { data: { out: out + '.esm' } });
process.on('SIGUSR2', () => fs.writeFileSync(out + '.cjs', Object.keys(require.cache).join('\\n')));
`;

/** The package a loaded file belongs to (`@scope/name` or `name`), or null outside node_modules. */
function packageOf(file: string): string | null {
  const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
  return m ? m[1] : null;
}

describe('start-up footprint', () => {
  it('LDAP, S3, PostgreSQL, XML, zip and BLAKE2b libraries are not loaded by a started SQLite server', async () => {
    const hooks = path.join(dir, 'hooks.mjs');
    const preload = path.join(dir, 'preload.cjs');
    const out = path.join(dir, 'loaded');
    writeFileSync(hooks, HOOKS);
    writeFileSync(preload, PRELOAD);
    const server = await spawnServer({
      db: 'sqlite',
      dataDir: mkdtempSync(path.join(dir, 'data-')),
      env: { NODE_OPTIONS: `--require ${preload}`, FOOTPRINT_OUT: out, FOOTPRINT_HOOKS: hooks },
    });
    try {
      server.proc.kill('SIGUSR2');
      for (let i = 0; i < 100 && !existsSync(out + '.cjs'); i++) await new Promise((r) => setTimeout(r, 50));
      const files = [...readFileSync(out + '.esm', 'utf8').split('\n'), ...readFileSync(out + '.cjs', 'utf8').split('\n')];
      const packages = new Set(files.map(packageOf).filter((p) => p !== null));
      // The capture works: what every start needs is in it, loaded both ways.
      for (const p of ['knex', 'koa', 'zod', 'better-sqlite3']) assert.ok(packages.has(p), `${p} is among the loaded packages (${[...packages].join(', ')})`);
      assert.ok(files.includes(pathToFileURL(path.join(DIST, 'src/main.js')).href), 'main.js is among the loaded ES modules');
      const unwanted = ['ldapts', 'minio', 'pg', 'fast-xml-parser', 'yauzl', 'hash-wasm'].filter((p) => packages.has(p));
      assert.deepEqual(unwanted, [], `loaded at start though only some installations use them: ${unwanted.join(', ')}`);
    } finally {
      await server.stop();
    }
  });

  it('password hashes leave no 16 MiB scrypt buffer resident in a thread arena', async () => {
    assert.ok(existsSync(path.join(DIST, 'native/malloc.node')), 'the native malloc helper is built (node native/build.mjs)');
    // A fresh process, as the server is: main.ts imports malloc-native.js before anything hashes.
    const script = path.join(dir, 'hash.mjs');
    writeFileSync(
      script,
      `import ${JSON.stringify(pathToFileURL(path.join(DIST, 'src/malloc-native.js')).href)};
import { hashPassword } from ${JSON.stringify(pathToFileURL(path.join(DIST, 'src/security/passwords.js')).href)};
import { readFileSync } from 'node:fs';
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
await hashPassword('warm-up');
const before = rss();
// One after another, then as many at once as libuv has threads: each thread has its own arena.
for (let i = 0; i < 3; i++) await hashPassword('pw' + i);
await Promise.all([1, 2, 3, 4].map((i) => hashPassword('p' + i)));
process.stdout.write(String(rss() - before));
`,
    );
    const { PATH } = process.env;
    const grownKiB = await new Promise<number>((resolve, reject) =>
      execFile(process.execPath, [script], { env: { PATH } }, (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(Number(stdout)))),
    );
    // Retained, it is 16 MiB per thread that hashed after the first hash (about 64 MiB here).
    assert.ok(grownKiB < 8 * 1024, `RSS grew ${(grownKiB / 1024).toFixed(1)} MiB over 7 password hashes`);
  });
});
