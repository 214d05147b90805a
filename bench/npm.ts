/**
 * npm benchmark (issue 5, "Performance"), side by side with verdaccio in one run on loopback:
 * packument GETs per second, full and abbreviated (`Accept: application/vnd.npm.install-v1+json`),
 * for a package with 300 versions, with 32 concurrent connections (wrk, same for every server):
 *
 *  - verdaccio serving the package from its own storage (the peer);
 *  - Stowage (child process, SQLite, file blob store) from a hosted repository;
 *  - Stowage through a group of three members: a hosted with the package, an empty hosted and a
 *    proxy of verdaccio that has the package too (so the group really merges two packuments).
 *
 * A second peer, nginx, serves the very documents Stowage answered as static files (the ceiling:
 * no auth, no lookup, no rendering); issue 10 asks the abbreviated document at ≥ 0.3× nginx.
 *
 * Target: Stowage ≥ 5× verdaccio for each document kind. Not a test: prints a table and writes
 * JSON to bench/results/. `npm run bench:npm`. Environment: BENCH_NPM_VERSIONS (300),
 * BENCH_NPM_SECONDS (10 per measurement), BENCH_NPM_CONNECTIONS (32).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startVerdaccio } from '../test/helpers/verdaccio.js';
import { publishMany } from '../test/helpers/npm-gen.js';
import { ADMIN, spawnServer } from '../test/helpers/stowage.js';
import { runNginx } from '../test/helpers/nginx.js';
import { wrk } from './wrk.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS = path.join(ROOT, 'bench/results');
const VERSIONS = Number(process.env.BENCH_NPM_VERSIONS ?? 300);
const SECONDS = Number(process.env.BENCH_NPM_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_NPM_CONNECTIONS ?? 32);
const TARGET = 5;
const PKG = 'bench-pkg';
const ABBREVIATED = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*';

const log = (s: string) => process.stderr.write(`  · ${s}\n`);

/** One GET checked before measuring: right status, and the number of versions expected. */
async function check(url: string, accept: string | null, versions: number): Promise<number> {
  const r = await fetch(url, { headers: accept ? { Accept: accept } : {} });
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  const body = await r.text();
  const doc = JSON.parse(body) as { versions: Record<string, unknown> };
  const n = Object.keys(doc.versions).length;
  if (n !== versions) throw new Error(`${url}: ${n} versions, expected ${versions}`);
  return body.length;
}

async function createRepo(base: string, type: string, body: Record<string, unknown>): Promise<void> {
  const r = await fetch(`${base}/service/rest/v1/repositories/npm/${type}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: ADMIN },
    body: JSON.stringify({ online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' }, ...body }),
  });
  if (r.status !== 201) throw new Error(`create ${type} ${String(body.name)}: ${r.status} ${await r.text()}`);
}

/** nginx (1 worker, sendfile, no access log) serving `root`; for the static-document peer. */
async function startNginx(root: string): Promise<{ url: string; stop(): void }> {
  const nginx = await runNginx({ http: () => 'access_log off; sendfile on; tcp_nopush on; default_type application/json;', servers: [() => `root ${root};`] });
  return { url: nginx.urls[0], stop: () => void nginx.stop() };
}

async function main(): Promise<void> {
  log(`starting verdaccio and Stowage; publishing ${VERSIONS} versions of ${PKG} to each`);
  const verdaccio = await startVerdaccio();
  const stowage = await spawnServer({ nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean) });
  const rows: Array<{ what: string; kind: string; rps: number; bytes: number; non2xx: number; errors: string }> = [];
  try {
    const s = stowage.url;
    await createRepo(s, 'hosted', { name: 'npm-hosted' });
    await createRepo(s, 'hosted', { name: 'npm-empty' });
    await createRepo(s, 'proxy', {
      name: 'npm-verdaccio',
      proxy: { remoteUrl: verdaccio.url + '/', contentMaxAge: 1440, metadataMaxAge: 1440 },
      negativeCache: { enabled: true, timeToLive: 1440 },
      httpClient: { blocked: false, autoBlock: true },
    });
    await createRepo(s, 'group', { name: 'npm-group', group: { memberNames: ['npm-hosted', 'npm-empty', 'npm-verdaccio'] } });
    await Promise.all([publishMany(verdaccio.url, PKG, VERSIONS), publishMany(`${s}/repository/npm-hosted`, PKG, VERSIONS, ADMIN)]);

    const targets = [
      { what: 'verdaccio', url: `${verdaccio.url}/${PKG}` },
      { what: 'stowage hosted', url: `${s}/repository/npm-hosted/${PKG}` },
      { what: 'stowage group of 3', url: `${s}/repository/npm-group/${PKG}` },
    ];
    // The documents Stowage's hosted repository answers, as static files for nginx.
    const docs = mkdtempSync(path.join(tmpdir(), 'stowage-bench-docs-'));
    for (const kind of ['full', 'abbreviated'] as const) {
      const r = await fetch(`${s}/repository/npm-hosted/${PKG}`, { headers: { Accept: kind === 'full' ? 'application/json' : ABBREVIATED } });
      writeFileSync(path.join(docs, `${kind}.json`), Buffer.from(await r.arrayBuffer()));
    }
    const nginx = await startNginx(docs);
    try {
      for (const kind of ['full', 'abbreviated'] as const) {
        const accept = kind === 'full' ? 'application/json' : ABBREVIATED;
        for (const t of [...targets, { what: 'nginx (static file)', url: `${nginx.url}/${kind}.json` }]) {
          const bytes = await check(t.url, accept, VERSIONS);
          log(`${t.what} ${kind}: ${bytes} bytes per document; wrk ${SECONDS}s × ${CONNECTIONS} connections`);
          const r = await wrk(t.url, { seconds: SECONDS, connections: CONNECTIONS, headers: accept ? { Accept: accept } : {} });
          rows.push({ what: t.what, kind, bytes, ...r });
        }
      }
    } finally {
      nginx.stop();
      rmSync(docs, { recursive: true, force: true });
    }
  } finally {
    await stowage.stop();
    await verdaccio.stop();
  }

  const peer = (kind: string) => rows.find((r) => r.what === 'verdaccio' && r.kind === kind)!.rps;
  const ceiling = (kind: string) => rows.find((r) => r.what.startsWith('nginx') && r.kind === kind)!.rps;
  const lines = ['', `npm packument GETs, ${VERSIONS} versions, ${CONNECTIONS} connections, ${SECONDS}s each (target ≥ ${TARGET}× verdaccio; abbreviated ≥ 0.3× nginx)`, ''];
  lines.push('| server | document | bytes | req/s | × verdaccio | target | × nginx | non-2xx |', '|---|---|---:|---:|---:|---|---:|---:|');
  const results = rows.map((r) => {
    const ratio = r.rps / peer(r.kind);
    const ofNginx = r.rps / ceiling(r.kind);
    const peerRow = r.what === 'verdaccio' || r.what.startsWith('nginx');
    const verdict = peerRow ? '' : ratio >= TARGET ? 'PASS' : 'MISS';
    lines.push(
      `| ${r.what} | ${r.kind} | ${r.bytes} | ${r.rps.toFixed(0)} | ${ratio.toFixed(2)} | ${verdict} | ${ofNginx.toFixed(2)} | ${r.non2xx}${r.errors ? ' ' + r.errors : ''} |`,
    );
    return { ...r, ratio, ofNginx, verdict };
  });
  process.stdout.write(lines.join('\n') + '\n');
  mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `bench-npm-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ versions: VERSIONS, connections: CONNECTIONS, seconds: SECONDS, results }, null, 2));
  writeFileSync(path.join(RESULTS, 'latest-npm.json'), JSON.stringify({ versions: VERSIONS, results }, null, 2));
  log(`results written to ${path.relative(ROOT, file)}`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
