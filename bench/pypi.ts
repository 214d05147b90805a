/**
 * PyPI benchmark (issue 12, "Performance"), side by side with nginx serving the same documents as
 * a static PEP 503 tree (the ceiling: no auth, no lookup, no rendering), in one run on loopback:
 *
 *  1. simple-page GETs per second for a project with 400 files (wrk, 32 connections), as pip asks
 *     for them (JSON preferred) and as HTML: from a hosted repository, and through a group of three
 *     (that hosted, an empty hosted, a proxy of the nginx tree that has the project too, so the
 *     group really merges two pages); nginx serves Stowage's own HTML page as a static file.
 *     Server memory (VmRSS) is sampled during the runs. Target: ≥ 0.3× nginx.
 *  2. `pip install` of 30 packages (requests, flask and 18 more with their dependencies) with an
 *     empty cache, through the group (its proxy of the machine's static tree served by nginx) vs
 *     pip straight from nginx. The group's cache is emptied between runs. Target: ≤ 1.1× nginx.
 *
 * Not a test: prints a table and writes JSON to bench/results/. `npx tsc -p tsconfig.json && node
 * dist/bench/pypi.js`. Environment: BENCH_PYPI_FILES (400), BENCH_PYPI_SECONDS (10),
 * BENCH_PYPI_CONNECTIONS (32), BENCH_PYPI_RUNS (3 pip runs each).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN, ADMIN_PASSWORD, spawnServer } from '../test/helpers/stowage.js';
import { startNginx } from '../test/helpers/nginx.js';
import { wrk } from './wrk.js';
import { pipInstall } from '../test/helpers/pip-cli.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS = path.join(ROOT, 'bench/results');
const FILES = Number(process.env.BENCH_PYPI_FILES ?? 400);
const SECONDS = Number(process.env.BENCH_PYPI_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_PYPI_CONNECTIONS ?? 32);
const RUNS = Number(process.env.BENCH_PYPI_RUNS ?? 3);
const TREE = '/opt/pypi';
const PIP_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';
const PROJECT = 'bench-pkg';
const PACKAGES = [
  'requests',
  'flask',
  'attrs',
  'packaging',
  'python-dateutil',
  'pytz',
  'tomli',
  'typing-extensions',
  'pyparsing',
  'wrapt',
  'decorator',
  'more-itertools',
  'zipp',
  'platformdirs',
  'filelock',
  'colorama',
  'pygments',
  'tabulate',
  'docutils',
];

const log = (s: string) => process.stderr.write(`  · ${s}\n`);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Writes `count` small wheels of one project (one python process). */
function buildWheels(dir: string, count: number): string[] {
  mkdirSync(dir, { recursive: true });
  const script = `
import sys, zipfile
out, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(1, n + 1):
    v = f"1.{i}"
    di = f"{name.replace('-', '_')}-{v}.dist-info"
    with zipfile.ZipFile(f"{out}/{name.replace('-', '_')}-{v}-py3-none-any.whl", 'w', zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name.replace('-', '_')}/__init__.py", f"V = {v!r}\\n")
        z.writestr(f"{di}/METADATA", f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {v}\\nRequires-Python: >=3.8\\n\\n")
        z.writestr(f"{di}/WHEEL", "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
        z.writestr(f"{di}/RECORD", "")
`;
  execFileSync('python3', ['-c', script, dir, PROJECT, String(count)]);
  return readdirSync(dir).map((f) => path.join(dir, f));
}

async function upload(base: string, file: string): Promise<void> {
  const name = path.basename(file);
  const version = name.split('-')[1];
  const f = new FormData();
  for (const [k, v] of Object.entries({
    ':action': 'file_upload',
    protocol_version: '1',
    name: PROJECT,
    version,
    filetype: 'bdist_wheel',
    pyversion: 'py3',
    metadata_version: '2.1',
  }))
    f.append(k, v);
  f.append('content', new Blob([new Uint8Array(readFileSync(file))]), name);
  const r = await fetch(`${base}/repository/py-hosted/`, { method: 'POST', body: f, headers: { Authorization: ADMIN } });
  if (r.status !== 200) throw new Error(`upload ${name}: ${r.status} ${await r.text()}`);
}

async function createRepo(base: string, type: string, body: Record<string, unknown>): Promise<void> {
  const r = await fetch(`${base}/service/rest/v1/repositories/pypi/${type}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: ADMIN },
    body: JSON.stringify({ online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' }, ...body }),
  });
  if (r.status !== 201) throw new Error(`create ${type} ${String(body.name)}: ${r.status} ${await r.text()}`);
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'stowage-bench-pypi-'));
  // The static tree for nginx: the machine's PEP 503 tree, plus the bench project.
  const tree = path.join(work, 'tree');
  mkdirSync(path.join(tree, 'simple', PROJECT), { recursive: true });
  mkdirSync(path.join(tree, 'files'), { recursive: true });
  log(`building ${FILES} wheels of ${PROJECT}`);
  const wheels = buildWheels(path.join(tree, 'files'), FILES);
  for (const p of readdirSync(path.join(TREE, 'simple'))) {
    if (p === 'index.html') continue;
    mkdirSync(path.join(tree, 'simple', p), { recursive: true });
    writeFileSync(path.join(tree, 'simple', p, 'index.html'), readFileSync(path.join(TREE, 'simple', p, 'index.html')));
  }
  writeFileSync(path.join(tree, 'simple', 'index.html'), readFileSync(path.join(TREE, 'simple', 'index.html')));
  execFileSync('sh', ['-c', `for f in ${TREE}/files/*; do ln -sf "$f" ${tree}/files/; done`]);
  const nginx = await startNginx([tree]);
  const stowage = await spawnServer({ nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean) });
  const rows: Array<Record<string, unknown>> = [];
  try {
    const s = stowage.url;
    await createRepo(s, 'hosted', { name: 'py-hosted' });
    await createRepo(s, 'hosted', { name: 'py-empty' });
    await createRepo(s, 'proxy', {
      name: 'py-proxy',
      proxy: { remoteUrl: nginx.urls[0] + '/', contentMaxAge: 1440, metadataMaxAge: 1440 },
      negativeCache: { enabled: true, timeToLive: 1440 },
      httpClient: { blocked: false, autoBlock: true },
    });
    await createRepo(s, 'group', { name: 'py-group', group: { memberNames: ['py-hosted', 'py-empty', 'py-proxy'] } });
    log(`uploading ${FILES} wheels to py-hosted`);
    for (const w of wheels) await upload(s, w);
    // nginx's copy of the page is Stowage's own HTML page (links pointed at nginx's files/).
    const html = await (await fetch(`${s}/repository/py-hosted/simple/${PROJECT}/`, { headers: { Accept: 'text/html', Authorization: ADMIN } })).text();
    writeFileSync(path.join(tree, 'simple', PROJECT, 'index.html'), html.replace(/\.\.\/\.\.\/packages\/[^/]+\//g, '../../files/'));

    const targets = [
      { what: 'stowage hosted', url: `${s}/repository/py-hosted/simple/${PROJECT}/` },
      { what: 'stowage group of 3', url: `${s}/repository/py-group/simple/${PROJECT}/` },
      { what: 'nginx (static page)', url: `${nginx.urls[0]}/simple/${PROJECT}/` },
    ];
    for (const [kind, accept] of [
      ['json (pip)', PIP_ACCEPT],
      ['html', 'text/html'],
    ] as const) {
      for (const t of targets) {
        if (t.what.startsWith('nginx') && kind !== 'html') continue;
        const check = await fetch(t.url, { headers: { Accept: accept, Authorization: ADMIN } });
        const body = await check.text();
        const files = kind.startsWith('json') && !t.what.startsWith('nginx') ? (JSON.parse(body) as { files: unknown[] }).files.length : (body.match(/<a /g) ?? []).length;
        if (check.status !== 200 || files !== FILES + (t.what.includes('group') ? 0 : 0)) log(`warning: ${t.url} answered ${check.status} with ${files} files`);
        log(`${t.what} ${kind}: ${body.length} bytes; wrk ${SECONDS}s × ${CONNECTIONS}`);
        const before = rssMb(stowage.proc.pid!);
        let peak = before;
        const timer = setInterval(() => (peak = Math.max(peak, rssMb(stowage.proc.pid!))), 100);
        const r = await wrk(t.url, { seconds: SECONDS, connections: CONNECTIONS, headers: { Accept: accept, Authorization: ADMIN } });
        clearInterval(timer);
        rows.push({ measure: 'page GETs', what: t.what, kind, bytes: body.length, ...r, rssBeforeMb: before, rssPeakMb: peak });
      }
    }

    // pip install of 30 packages: through the group (cache emptied each run) vs nginx directly.
    const groupIndex = `${s.replace('://', `://admin:${ADMIN_PASSWORD}@`)}/repository/py-group/simple/`;
    for (let run = 1; run <= RUNS; run++) {
      for (const [what, index] of [
        ['nginx (static tree)', `${nginx.urls[0]}/simple/`],
        ['stowage group of 3 (cold proxy cache)', groupIndex],
      ] as const) {
        if (what.startsWith('stowage')) {
          // An empty proxy cache: drop every asset of the proxy and the group (REST), so each run fetches upstream.
          for (const repo of ['py-proxy', 'py-group']) await emptyRepository(s, repo);
        }
        const target = mkdtempSync(path.join(work, 'site-'));
        const t0 = performance.now();
        const r = await pipInstall(index, target, PACKAGES);
        const seconds = (performance.now() - t0) / 1000;
        const installed = (/Successfully installed (.*)/.exec(r.stdout)?.[1] ?? '').split(' ').filter(Boolean).length;
        if (r.code !== 0) throw new Error(`pip through ${what} failed:\n${r.all}`);
        log(`pip install via ${what}, run ${run}: ${seconds.toFixed(2)} s, ${installed} packages`);
        rows.push({ measure: 'pip install', what, run, seconds, installed });
        rmSync(target, { recursive: true, force: true });
      }
    }
  } finally {
    await stowage.stop();
    await nginx.stop();
    rmSync(work, { recursive: true, force: true });
  }

  const lines = ['', `PyPI simple-page GETs, ${FILES} files, ${CONNECTIONS} connections, ${SECONDS}s each (target ≥ 0.3× nginx)`, ''];
  const nginxRps = rows.find((r) => r.measure === 'page GETs' && String(r.what).startsWith('nginx'))!.rps as number;
  lines.push('| server | representation | bytes | req/s | × nginx | target | RSS before → peak (MB) | non-2xx |', '|---|---|---:|---:|---:|---|---|---:|');
  for (const r of rows.filter((x) => x.measure === 'page GETs')) {
    const ratio = (r.rps as number) / nginxRps;
    const peer = String(r.what).startsWith('nginx');
    lines.push(
      `| ${String(r.what)} | ${String(r.kind)} | ${String(r.bytes)} | ${(r.rps as number).toFixed(0)} | ${ratio.toFixed(2)} | ${peer ? '' : ratio >= 0.3 ? 'PASS' : 'MISS'} | ${(r.rssBeforeMb as number).toFixed(0)} → ${(r.rssPeakMb as number).toFixed(0)} | ${String(r.non2xx)} ${String(r.errors)} |`,
    );
  }
  const pip = rows.filter((r) => r.measure === 'pip install');
  const median = (what: string) => {
    const xs = pip
      .filter((r) => r.what === what)
      .map((r) => r.seconds as number)
      .sort((a, b) => a - b);
    return xs[Math.floor(xs.length / 2)];
  };
  const n = median('nginx (static tree)');
  const g = median('stowage group of 3 (cold proxy cache)');
  lines.push('', `pip install of ${String(pip[0]?.installed)} packages, empty pip cache, median of ${RUNS} (target ≤ 1.1× nginx)`, '');
  lines.push(
    '| index | seconds | × nginx | target |',
    '|---|---:|---:|---|',
    `| nginx (static tree) | ${n.toFixed(2)} | 1.00 | |`,
    `| stowage group of 3 (cold proxy cache) | ${g.toFixed(2)} | ${(g / n).toFixed(2)} | ${g / n <= 1.1 ? 'PASS' : 'MISS'} |`,
  );
  process.stdout.write(lines.join('\n') + '\n');
  mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `bench-pypi-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ files: FILES, connections: CONNECTIONS, seconds: SECONDS, rows }, null, 2));
  log(`results written to ${path.relative(ROOT, file)}`);
}

/** Deletes every component and asset of a repository through the REST API. */
async function emptyRepository(base: string, repo: string): Promise<void> {
  for (;;) {
    const r = await fetch(`${base}/service/rest/v1/assets?repository=${repo}`, { headers: { Authorization: ADMIN } });
    const page = (await r.json()) as { items: Array<{ id: string }> };
    if (page.items.length === 0) return;
    for (const a of page.items) await fetch(`${base}/service/rest/v1/assets/${a.id}`, { method: 'DELETE', headers: { Authorization: ADMIN } });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
