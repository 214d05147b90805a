// Builds the native helpers in native/ into dist/native/ with the system C compiler, against the
// headers of the Node that runs this script (nothing downloaded). Run by `npm run build`.
//
// The helpers are optional at run time: without a compiler the build says so and Stowage uses
// its JavaScript paths (src/http/sendfile-native.ts reports which one is in use at start). Set
// STOWAGE_NATIVE_REQUIRED=1 to make a failed build an error instead (.ci/run does).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, '..', 'dist', 'native');
const required = process.env.STOWAGE_NATIVE_REQUIRED === '1';

function fail(msg) {
  if (required) {
    console.error(`native build: ${msg}`);
    process.exit(1);
  }
  console.warn(`native build skipped (Stowage falls back to JavaScript): ${msg}`);
  process.exit(0);
}

if (process.platform !== 'linux') fail(`sendfile helper is Linux-only (platform ${process.platform})`);

// Node's headers: npm's nodedir when set, else beside the node binary (/usr/include/node for /usr/bin/node).
const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..')].filter(Boolean).map((d) => path.join(d, 'include', 'node'));
const include = candidates.find((d) => existsSync(path.join(d, 'node_api.h')));
if (!include) fail(`node_api.h not found in ${candidates.join(', ')}`);

const cc = process.env.CC || 'cc';
mkdirSync(out, { recursive: true });
// sendfile.c: files to sockets inside the kernel; malloc.c: glibc malloc settings (idle RSS).
for (const [name, libs] of [
  ['sendfile', ['-lpthread']],
  ['malloc', []],
]) {
  const target = path.join(out, `${name}.node`);
  try {
    execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-shared', '-fPIC', '-I', include, path.join(here, `${name}.c`), '-o', target, ...libs], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  } catch (e) {
    fail(`${cc} failed: ${e.message}`);
  }
}
