/**
 * yum side by side (issue 14, "Performance"), in one run:
 * 1. A hosted repository of N RPMs (BENCH_YUM_PACKAGES, 300) receives one more: the time from
 *    the PUT until repomd.xml's primary lists it, against `createrepo_c --update` on the same tree.
 *    Target: ≤ max(2 s, 1.5 × createrepo_c --update).
 * 2. dnf installing 40 packages (a chain of dependencies) through Stowage, against nginx serving
 *    createrepo_c's output of the same RPMs. Target: ≤ 1.2 × nginx.
 * Not a test: prints a table and writes JSON to bench/results/. `node dist/bench/yum.js`.
 * The RPMs come from one spec with N+1 subpackages (one rpmbuild run).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { ADMIN, spawnServer } from '../test/helpers/stowage.js';
import { serveStatic } from '../test/helpers/nginx.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RESULTS = path.join(ROOT, 'bench/results');
const N = Number(process.env.BENCH_YUM_PACKAGES ?? 300);
const INSTALL = 40;
const RUNS = Number(process.env.BENCH_YUM_RUNS ?? 3);
const log = (s: string) => process.stderr.write(`  · ${s}\n`);
const name = (i: number) => `bpkg${String(i).padStart(4, '0')}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function buildRpms(dir: string, count: number): Promise<string[]> {
  const parts = ['Name: bpkg', 'Version: 1.0', 'Release: 1', 'Summary: bench', 'License: MIT', 'BuildArch: noarch', 'AutoReq: no', '', '%description', 'bench', ''];
  const install = ['%install'];
  for (let i = 1; i <= count; i++) {
    const n = name(i);
    parts.push(
      `%package -n ${n}`,
      `Summary: bench package ${i}`,
      ...(i > 1 && i <= INSTALL ? [`Requires: ${name(i - 1)} >= 1.0`] : []),
      '',
      `%description -n ${n}`,
      `Bench package ${i}.`,
      '',
    );
    parts.push(`%files -n ${n}`, `/usr/share/bpkg/${n}.txt`, '');
    install.push(`mkdir -p %{buildroot}/usr/share/bpkg && echo ${n} > %{buildroot}/usr/share/bpkg/${n}.txt`);
  }
  await mkdir(dir, { recursive: true });
  const spec = path.join(dir, 'bpkg.spec');
  await writeFile(spec, [...parts, ...install, ''].join('\n'));
  await run('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${dir}`, '--define', 'debug_package %{nil}', spec], { maxBuffer: 1 << 26 });
  return Array.from({ length: count }, (_, i) => path.join(dir, 'RPMS', 'noarch', `${name(i + 1)}-1.0-1.noarch.rpm`));
}

async function timed<T>(f: () => Promise<T>): Promise<number> {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
}

async function primaryLists(base: string, pkg: string): Promise<boolean> {
  const md = await (await fetch(`${base}/repodata/repomd.xml`, { headers: { Authorization: ADMIN } })).text();
  const href = /<data type="primary">[\s\S]*?<location href="([^"]+)"/.exec(md)?.[1];
  if (!href) return false;
  const gz = Buffer.from(await (await fetch(`${base}/${href}`, { headers: { Authorization: ADMIN } })).arrayBuffer());
  return gunzipSync(gz).toString().includes(`<name>${pkg}</name>`);
}

async function dnfInstall(url: string, root: string): Promise<number> {
  const pkgs = Array.from({ length: INSTALL }, (_, i) => name(i + 1));
  return timed(() =>
    run(
      'dnf',
      [
        '-y',
        '-q',
        `--installroot=${root}`,
        '--setopt=reposdir=/dev/null',
        `--setopt=cachedir=${root}/cache`,
        '--disableplugin=*',
        `--repofrompath=r,${url}`,
        '--repo=r',
        '--releasever=1',
        '--nogpgcheck',
        'install',
        ...pkgs,
      ],
      {
        maxBuffer: 1 << 24,
      },
    ),
  );
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), 'stowage-bench-yum-'));
  const stowage = await spawnServer({ nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean) });
  let nginx: { url: string; stop(): void } | null = null;
  try {
    log(`building ${N + 1} RPMs`);
    const rpms = await buildRpms(path.join(work, 'build'), N + 1);
    const s = stowage.url;
    const created = await fetch(`${s}/service/rest/v1/repositories/yum/hosted`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: ADMIN },
      body: JSON.stringify({ name: 'yum-bench', storage: { writePolicy: 'ALLOW' } }),
    });
    if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`);
    const base = `${s}/repository/yum-bench`;
    log(`uploading ${N} RPMs to Stowage`);
    const put = async (f: string) => {
      const r = await fetch(`${base}/${path.basename(f)}`, { method: 'PUT', body: await readFile(f), headers: { Authorization: ADMIN } });
      if (r.status !== 201) throw new Error(`PUT ${f}: ${r.status} ${await r.text()}`);
    };
    for (let i = 0; i < N; i += 8) await Promise.all(rpms.slice(i, Math.min(i + 8, N)).map(put));
    const tree = path.join(work, 'tree');
    await mkdir(tree);
    for (const f of rpms.slice(0, N)) await copyFile(f, path.join(tree, path.basename(f)));
    await run('createrepo_c', ['-q', tree]);

    const last = rpms[N];
    const lastName = name(N + 1);
    const stowageAdd = await timed(async () => {
      await put(last);
      while (!(await primaryLists(base, lastName))) await new Promise((r) => setTimeout(r, 20));
    });
    await copyFile(last, path.join(tree, path.basename(last)));
    const createrepoUpdate = await timed(() => run('createrepo_c', ['-q', '--update', tree]));
    const addTarget = Math.max(2, 1.5 * createrepoUpdate);
    log(`one more RPM: Stowage ${stowageAdd.toFixed(2)} s, createrepo_c --update ${createrepoUpdate.toFixed(2)} s`);

    nginx = await serveStatic(tree);
    const viaStowage: number[] = [];
    const viaNginx: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      viaNginx.push(await dnfInstall(`${nginx.url}/`, path.join(work, `n${i}`)));
      viaStowage.push(await dnfInstall(`${base}/`, path.join(work, `s${i}`)));
      log(`dnf install of ${INSTALL}: nginx ${viaNginx[i].toFixed(2)} s, Stowage ${viaStowage[i].toFixed(2)} s`);
    }
    const dnfRatio = median(viaStowage) / median(viaNginx);
    const rows = [
      [
        'new RPM listed in repodata',
        `${stowageAdd.toFixed(2)} s`,
        `createrepo_c --update ${createrepoUpdate.toFixed(2)} s`,
        `≤ ${addTarget.toFixed(2)} s`,
        stowageAdd <= addTarget ? 'PASS' : 'MISS',
      ],
      [
        `dnf install ${INSTALL} (median of ${RUNS})`,
        `${median(viaStowage).toFixed(2)} s`,
        `nginx ${median(viaNginx).toFixed(2)} s`,
        '≤ 1.2 × nginx',
        `${dnfRatio.toFixed(2)}× ${dnfRatio <= 1.2 ? 'PASS' : 'MISS'}`,
      ],
    ];
    console.log(`\nyum (${N} packages in the repository)\n`);
    for (const r of rows) console.log(`  ${r[0].padEnd(34)} ${r[1].padEnd(10)} ${r[2].padEnd(34)} ${r[3].padEnd(16)} ${r[4]}`);
    await mkdir(RESULTS, { recursive: true });
    await writeFile(
      path.join(RESULTS, `yum-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
      JSON.stringify({ packages: N, stowageAdd, createrepoUpdate, addTarget, dnf: { stowage: viaStowage, nginx: viaNginx, ratio: dnfRatio } }, null, 2),
    );
  } finally {
    nginx?.stop();
    await stowage.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
