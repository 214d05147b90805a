/**
 * Maven side by side (issue 13, "Performance"). No Maven server peer installs here, so the peer
 * is the limit: nginx serving the same static Maven tree (Debian's plugin repository overlaid
 * with the machine's local repository of real artifacts).
 *
 *  1. `mvn dependency:resolve` of a project with BENCH_MAVEN_DEPS (60) real dependencies and an
 *     empty local repository, through a Stowage group (two hosted repositories and a proxy of
 *     that nginx, its cache warmed by one run first) vs mirrored straight at nginx. Target: ≤ 1.15×.
 *     Stowage answers every file's `.sha1` (so mvn checks it and writes it to the local
 *     repository); the two trees have no checksum files, so nginx answers 404s and mvn skips
 *     that work. The peer measured is therefore nginx serving the trees with a `.sha1` beside each
 *     file the build fetches, as a real Maven repository (Central) has them: both runs then do
 *     the same work in mvn. nginx without them is measured too and reported beside it.
 *     Runs alternate (nginx, Stowage, nginx, …); the median of BENCH_MAVEN_RUNS (5) is compared.
 *  2. maven-metadata.xml GETs per second through the group (a document merged from two hosted
 *     members) vs nginx serving the merged bytes as a static file. Target: ≥ 0.3× nginx.
 *
 * Not a test: prints a table and writes JSON to bench/results/. `npm run build && node
 * dist/bench/maven.js`. Environment: BENCH_MAVEN_DEPS (60), BENCH_MAVEN_RUNS (5),
 * BENCH_MAVEN_SECONDS (10), BENCH_MAVEN_CONNECTIONS (32), BENCH_NODE_ARGS (extra node options for
 * Stowage, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN, ADMIN_PASSWORD, spawnServer } from '../test/helpers/stowage.js';
import { runNginx } from '../test/helpers/nginx.js';
import { wrk } from './wrk.js';
import { DEBIAN_MAVEN_REPO, LOCAL_MAVEN_REPO, PLUGINS, jar, mvn, writeSettings } from '../test/helpers/maven.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS = path.join(ROOT, 'bench/results');
const DEPS = Number(process.env.BENCH_MAVEN_DEPS ?? 60);
const RUNS = Number(process.env.BENCH_MAVEN_RUNS ?? 5);
const SECONDS = Number(process.env.BENCH_MAVEN_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_MAVEN_CONNECTIONS ?? 32);

const log = (s: string) => process.stderr.write(`  · ${s}\n`);

/** nginx (1 worker, sendfile, no access log): `roots` tried in order for every path (a merged tree). */
async function startNginx(roots: string[]): Promise<{ url: string; stop(): void }> {
  const chain = roots.map((r, i) => `location ${i === 0 ? '/' : `@r${i}`} { root ${r}; ${i + 1 < roots.length ? `try_files $uri @r${i + 1};` : ''} }`).join('\n    ');
  const nginx = await runNginx({ http: () => 'access_log off; sendfile on; tcp_nopush on; default_type application/octet-stream;', servers: [() => chain], connections: 1024 });
  return { url: nginx.urls[0], stop: () => void nginx.stop() };
}

/** The parent a POM names, if any; null when it imports a BOM (resolving it would need more than the chain). */
function parentOf(pomFile: string): { ok: boolean; parent: string | null } {
  const xml = readFileSync(pomFile, 'utf8');
  if (/<scope>\s*import\s*<\/scope>/.test(xml)) return { ok: false, parent: null };
  const m = /<parent>([\s\S]*?)<\/parent>/.exec(xml);
  if (!m) return { ok: true, parent: null };
  const g = /<groupId>\s*([^<\s]+)\s*<\/groupId>/.exec(m[1])?.[1];
  const a = /<artifactId>\s*([^<\s]+)\s*<\/artifactId>/.exec(m[1])?.[1];
  const v = /<version>\s*([^<\s]+)\s*<\/version>/.exec(m[1])?.[1];
  if (!g || !a || !v || v.includes('$')) return { ok: false, parent: null };
  return { ok: true, parent: `${g.replace(/\./g, '/')}/${a}/${v}/${a}-${v}.pom` };
}

/** Real artifacts of the local repository whose jar, POM and whole parent chain are there: `g:a:v`. */
function pickDependencies(n: number): string[] {
  const out: string[] = [];
  const usable = (rel: string, depth = 0): boolean => {
    const f = path.join(LOCAL_MAVEN_REPO, rel);
    if (depth > 10 || !existsSync(f)) return false;
    const { ok, parent } = parentOf(f);
    return ok && (parent === null || usable(parent, depth + 1));
  };
  const walk = (dir: string, segs: string[]): void => {
    if (out.length >= n) return;
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    const files = entries.filter((e) => e.isFile()).map((e) => e.name);
    if (segs.length >= 3) {
      const [version, artifactId] = [segs[segs.length - 1], segs[segs.length - 2]];
      const base = `${artifactId}-${version}`;
      if (files.includes(`${base}.jar`) && files.includes(`${base}.pom`) && !version.endsWith('SNAPSHOT') && usable(`${segs.join('/')}/${base}.pom`)) {
        const ga = `${segs.slice(0, -2).join('.')}:${artifactId}`;
        if (!out.some((d) => d.startsWith(ga + ':'))) out.push(`${ga}:${version}`);
        return;
      }
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name), [...segs, e.name]);
  };
  walk(LOCAL_MAVEN_REPO, []);
  if (out.length < n) throw new Error(`only ${out.length} usable artifacts in ${LOCAL_MAVEN_REPO}`);
  return out;
}

/**
 * A tree of `.sha1` files for every jar and pom under `localRepo` (what one resolve fetched),
 * computed from the file the trees serve: nginx's root tried first, so nginx answers checksums
 * as a Maven repository does.
 */
function checksumOverlay(localRepo: string, roots: string[], out: string): number {
  let n = 0;
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(localRepo, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (/\.(jar|pom)$/.test(e.name)) {
        const src = roots.map((root) => path.join(root, r)).find((f) => existsSync(f));
        if (!src) continue;
        mkdirSync(path.join(out, rel), { recursive: true });
        writeFileSync(path.join(out, `${r}.sha1`), createHash('sha1').update(readFileSync(src)).digest('hex'));
        n++;
      }
    }
  };
  walk('');
  return n;
}

function projectPom(deps: string[]): string {
  const dependencies = deps
    .map((d) => {
      const [g, a, v] = d.split(':');
      // No transitive dependencies: the tree need not hold them (their parents it must).
      return `<dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version><exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>`;
    })
    .join('\n');
  const plugins = PLUGINS.replace(
    '</plugins>',
    '<plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>3.5.0</version></plugin></plugins>',
  );
  return `<?xml version="1.0"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>bench</groupId><artifactId>bench</artifactId><version>1.0</version>
<dependencies>${dependencies}</dependencies>${plugins}</project>\n`;
}

async function api(base: string, method: string, p: string, body?: unknown): Promise<void> {
  const r = await fetch(base + p, {
    method,
    headers: { Authorization: ADMIN, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? (body as BodyInit) : JSON.stringify(body),
  });
  if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const deps = pickDependencies(DEPS);
  log(`${deps.length} dependencies picked from ${LOCAL_MAVEN_REPO}`);
  const tree = await startNginx([DEBIAN_MAVEN_REPO, LOCAL_MAVEN_REPO]);
  const stowage = await spawnServer({ nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean) });
  const work = mkdtempSync(path.join(tmpdir(), 'stowage-bench-maven-'));
  let staticPeer: { url: string; stop(): void } | null = null;
  let checksumPeer: { url: string; stop(): void } | null = null;
  try {
    const s = stowage.url;
    const hosted = (name: string) => ({
      name,
      online: true,
      storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' },
      maven: { versionPolicy: 'MIXED' },
    });
    await api(s, 'POST', '/service/rest/v1/repositories/maven/hosted', hosted('releases'));
    await api(s, 'POST', '/service/rest/v1/repositories/maven/hosted', hosted('releases2'));
    await api(s, 'POST', '/service/rest/v1/repositories/maven/proxy', {
      name: 'central',
      online: true,
      proxy: { remoteUrl: tree.url + '/', contentMaxAge: -1, metadataMaxAge: 1440 },
      negativeCache: { enabled: true, timeToLive: 1440 },
      httpClient: { blocked: false, autoBlock: true },
      maven: { versionPolicy: 'MIXED', checksumPolicy: 'IGNORE' },
    });
    await api(s, 'POST', '/service/rest/v1/repositories/maven/group', { name: 'public', online: true, group: { memberNames: ['releases', 'releases2', 'central'] } });
    // The metadata measured: merged from two hosted members (10 versions each).
    for (let i = 0; i < 20; i++) await api(s, 'PUT', `/repository/${i % 2 ? 'releases2' : 'releases'}/bench/lib/lib/1.${i}/lib-1.${i}.jar`, new Uint8Array(jar()));

    const project = path.join(work, 'project');
    mkdirSync(project);
    writeFileSync(path.join(project, 'pom.xml'), projectPom(deps));
    const viaStowage = path.join(work, 'settings-stowage.xml');
    const viaNginx = path.join(work, 'settings-nginx.xml');
    writeSettings(viaStowage, `${s}/repository/public/`, 'admin', ADMIN_PASSWORD, 'warn');
    writeSettings(viaNginx, `${tree.url}/`, 'x', 'x', 'warn');

    let n = 0;
    const resolve = async (settings: string, keep = false) => {
      const local = path.join(work, `m2-${n++}`);
      const r = await mvn(project, settings, local, ['dependency:resolve']);
      if (!keep) rmSync(local, { recursive: true, force: true });
      if (r.code !== 0) throw new Error(`mvn failed:\n${r.out.slice(-4000)}`);
      return local;
    };
    log('warming Stowage’s proxy cache (one resolve)');
    const fetched = await resolve(viaStowage, true);
    const overlay = path.join(work, 'checksums');
    log(`${checksumOverlay(fetched, [DEBIAN_MAVEN_REPO, LOCAL_MAVEN_REPO], overlay)} .sha1 files for nginx`);
    rmSync(fetched, { recursive: true, force: true });
    checksumPeer = await startNginx([overlay, DEBIAN_MAVEN_REPO, LOCAL_MAVEN_REPO]);
    const viaChecksumPeer = path.join(work, 'settings-nginx-sha1.xml');
    writeSettings(viaChecksumPeer, `${checksumPeer.url}/`, 'x', 'x', 'warn');
    const times: Record<'stowage' | 'nginx' | 'nginxNoChecksums', number[]> = { stowage: [], nginx: [], nginxNoChecksums: [] };
    for (let i = 0; i < RUNS; i++) {
      times.nginx.push(await timed(() => resolve(viaChecksumPeer)));
      times.stowage.push(await timed(() => resolve(viaStowage)));
      times.nginxNoChecksums.push(await timed(() => resolve(viaNginx)));
      log(
        `run ${i + 1}: nginx ${times.nginx.at(-1)!.toFixed(2)} s, stowage ${times.stowage.at(-1)!.toFixed(2)} s, nginx without checksums ${times.nginxNoChecksums.at(-1)!.toFixed(2)} s`,
      );
    }

    const mdUrl = `${s}/repository/public/bench/lib/lib/maven-metadata.xml`;
    const md = Buffer.from(await (await fetch(mdUrl, { headers: { Authorization: ADMIN } })).arrayBuffer());
    if (!md.toString().includes('<version>1.19</version>')) throw new Error(`merged metadata lacks versions:\n${md}`);
    const docs = path.join(work, 'docs');
    mkdirSync(docs);
    writeFileSync(path.join(docs, 'maven-metadata.xml'), md);
    staticPeer = await startNginx([docs]);
    log(`metadata GETs: wrk ${SECONDS}s × ${CONNECTIONS} connections each`);
    // Anonymous GETs, as the npm bench measures them.
    const group = await wrk(mdUrl, { seconds: SECONDS, connections: CONNECTIONS });
    const nginx = await wrk(`${staticPeer.url}/maven-metadata.xml`, { seconds: SECONDS, connections: CONNECTIONS });

    const mvnRatio = median(times.stowage) / median(times.nginx);
    const bareRatio = median(times.stowage) / median(times.nginxNoChecksums);
    const mdRatio = group.rps / nginx.rps;
    const lines = [
      '',
      `Maven, ${deps.length} dependencies, median of ${RUNS} runs; metadata ${md.length} bytes, ${CONNECTIONS} connections, ${SECONDS}s`,
      '',
      '| measure | Stowage (group) | nginx (static) | ratio | target | verdict |',
      '|---|---:|---:|---:|---|---|',
      `| mvn dependency:resolve, empty local repository | ${median(times.stowage).toFixed(2)} s | ${median(times.nginx).toFixed(2)} s | ${mvnRatio.toFixed(2)}× | ≤ 1.15× | ${mvnRatio <= 1.15 ? 'PASS' : 'MISS'} |`,
      `| the same, nginx without checksum files (mvn skips checking them) | ${median(times.stowage).toFixed(2)} s | ${median(times.nginxNoChecksums).toFixed(2)} s | ${bareRatio.toFixed(2)}× | | |`,
      `| maven-metadata.xml GET | ${group.rps.toFixed(0)} req/s | ${nginx.rps.toFixed(0)} req/s | ${mdRatio.toFixed(2)}× | ≥ 0.3× | ${mdRatio >= 0.3 ? 'PASS' : 'MISS'} |`,
    ];
    if (group.non2xx || nginx.non2xx) lines.push('', `non-2xx: stowage ${group.non2xx}, nginx ${nginx.non2xx}`);
    process.stdout.write(lines.join('\n') + '\n');
    mkdirSync(RESULTS, { recursive: true });
    const result = { deps: deps.length, runs: RUNS, times, mvnRatio, bareRatio, metadata: { bytes: md.length, group, nginx, ratio: mdRatio } };
    const file = path.join(RESULTS, `bench-maven-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2));
    writeFileSync(path.join(RESULTS, 'latest-maven.json'), JSON.stringify(result, null, 2));
    log(`results written to ${path.relative(ROOT, file)}`);
  } finally {
    staticPeer?.stop();
    checksumPeer?.stop();
    tree.stop();
    await stowage.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
