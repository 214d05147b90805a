/** Test RPMs built with the real rpmbuild, and createrepo_c/dnf runners. */
import { execFile } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export interface RpmSpec {
  name: string;
  version: string;
  release?: string;
  epoch?: number;
  arch?: 'noarch';
  requires?: string[];
  requiresPre?: string[];
  provides?: string[];
  conflicts?: string[];
  obsoletes?: string[];
  recommends?: string[];
  suggests?: string[];
  supplements?: string[];
  enhances?: string[];
  changelog?: Array<{ date: string; author: string; text: string }>;
  summary?: string;
}

function specText(s: RpmSpec): string {
  const lines = [
    `Name: ${s.name}`,
    `Version: ${s.version}`,
    `Release: ${s.release ?? '1'}`,
    ...(s.epoch !== undefined ? [`Epoch: ${s.epoch}`] : []),
    `Summary: ${s.summary ?? `The ${s.name} test package & <friends>`}`,
    'License: MIT',
    'URL: https://example.test/' + s.name,
    'Group: Development/Tools',
    'Vendor: Stowage tests',
    'Packager: Tester <tester@example.test>',
    `BuildArch: ${s.arch ?? 'noarch'}`,
    // No automatic /bin/sh requirement: dnf installs into an empty root, where nothing provides it.
    'AutoReq: no',
    ...(s.requires ?? []).map((r) => `Requires: ${r}`),
    ...(s.requiresPre ?? []).map((r) => `Requires(pre): ${r}`),
    ...(s.provides ?? []).map((r) => `Provides: ${r}`),
    ...(s.conflicts ?? []).map((r) => `Conflicts: ${r}`),
    ...(s.obsoletes ?? []).map((r) => `Obsoletes: ${r}`),
    ...(s.recommends ?? []).map((r) => `Recommends: ${r}`),
    ...(s.suggests ?? []).map((r) => `Suggests: ${r}`),
    ...(s.supplements ?? []).map((r) => `Supplements: ${r}`),
    ...(s.enhances ?? []).map((r) => `Enhances: ${r}`),
    '',
    '%description',
    `${s.name} is a package built by the Stowage tests.`,
    'It has two lines of description.',
    '',
    '%install',
    'mkdir -p %{buildroot}/usr/bin %{buildroot}/etc %{buildroot}/usr/share/%{name}/data',
    `printf '#!/bin/sh\\necho ${s.name} ${s.version}\\n' > %{buildroot}/usr/bin/%{name}`,
    'chmod 755 %{buildroot}/usr/bin/%{name}',
    `echo 'setting=1' > %{buildroot}/etc/%{name}.conf`,
    `echo 'data of ${s.name}' > %{buildroot}/usr/share/%{name}/data/readme.txt`,
    '',
    '%files',
    '/usr/bin/%{name}',
    '%config(noreplace) /etc/%{name}.conf',
    '%dir /usr/share/%{name}',
    '/usr/share/%{name}/data',
    '%ghost /var/log/%{name}.log',
    '',
    '%changelog',
    ...(s.changelog ?? [{ date: 'Mon Jan 01 2024', author: 'Tester <tester@example.test> - 1.0-1', text: '- First build' }]).flatMap((c) => [
      `* ${c.date} ${c.author}`,
      c.text,
      '',
    ]),
  ];
  return lines.join('\n') + '\n';
}

/** Builds each spec with rpmbuild into `dir/RPMS/noarch/`; returns the file paths in spec order. */
export async function buildRpms(dir: string, specs: RpmSpec[]): Promise<string[]> {
  // rpmbuild creates its directories unless they exist, and two builds at once race on that
  // ("failed to create directory %{_builddir}: File exists"): make them first.
  for (const d of ['SPECS', 'SOURCES', 'BUILD', 'BUILDROOT', 'SRPMS', 'RPMS/noarch']) await mkdir(path.join(dir, d), { recursive: true });
  const out: string[] = [];
  // Two at a time: rpmbuild is mostly process start-up; the machine has 2 cores.
  for (let i = 0; i < specs.length; i += 2) {
    const batch = specs.slice(i, i + 2);
    const built = await Promise.all(
      batch.map(async (s) => {
        const spec = path.join(dir, 'SPECS', `${s.name}-${s.version}.spec`);
        await writeFile(spec, specText(s));
        await run('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${dir}`, '--define', '_binary_payload w2.xzdio', '--define', 'debug_package %{nil}', spec], {
          maxBuffer: 1 << 24,
        });
        const rel = s.release ?? '1';
        return path.join(dir, 'RPMS', 'noarch', `${s.name}-${s.version}-${rel}.noarch.rpm`);
      }),
    );
    out.push(...built);
  }
  const have = new Set(await readdir(path.join(dir, 'RPMS', 'noarch')));
  for (const f of out) if (!have.has(path.basename(f))) throw new Error(`rpmbuild did not produce ${f}`);
  return out;
}

/** `dnf` against one repository URL, in its own install root and cache. */
export async function dnf(root: string, url: string, args: string[], extra: string[] = []): Promise<{ stdout: string; stderr: string }> {
  return run(
    'dnf',
    [
      '-y',
      `--installroot=${root}`,
      '--setopt=reposdir=/dev/null',
      `--setopt=cachedir=${root}/cache`,
      '--setopt=metadata_expire=0',
      '--disableplugin=*',
      `--repofrompath=r,${url}`,
      '--repo=r',
      '--releasever=1',
      ...extra,
      ...args,
    ],
    { maxBuffer: 1 << 24, timeout: 120_000 },
  );
}
