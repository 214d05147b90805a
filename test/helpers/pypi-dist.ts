/**
 * Python distributions for tests, built the way the real tools lay them out: wheels with
 * python3's zipfile (no `wheel` package here), sdists with `python3 setup.py sdist`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface WheelSpec {
  name: string;
  version: string;
  requiresPython?: string;
  requiresDist?: string[];
  /** METADATA's Name/Version when they should differ from the file name's (a mismatch test). */
  metadataName?: string;
  metadataVersion?: string;
  /** Leave out the METADATA file. */
  noMetadata?: boolean;
  /** Module source. */
  code?: string;
}

const BUILD_WHEEL = `
import json, re, sys, zipfile, hashlib, base64
spec = json.loads(sys.stdin.read()); out = sys.argv[1]
dist = spec['name'].replace('-', '_')
pkg = re.sub(r'[-.]', '_', spec['name']).lower()
di = f"{dist}-{spec['version']}.dist-info"
meta = ["Metadata-Version: 2.1", f"Name: {spec.get('metadataName') or spec['name']}", f"Version: {spec.get('metadataVersion') or spec['version']}", "Summary: test package"]
if spec.get('requiresPython'): meta.append(f"Requires-Python: {spec['requiresPython']}")
for r in spec.get('requiresDist') or []: meta.append(f"Requires-Dist: {r}")
files = {f"{pkg}/__init__.py": spec.get('code') or f"VERSION = {spec['version']!r}\\n"}
if not spec.get('noMetadata'): files[f"{di}/METADATA"] = "\\n".join(meta) + "\\n\\nLong description.\\n"
files[f"{di}/WHEEL"] = "Wheel-Version: 1.0\\nGenerator: stowage-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
record = []
for n, c in files.items():
    d = base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b'=').decode()
    record.append(f"{n},sha256={d},{len(c.encode())}")
record.append(f"{di}/RECORD,,")
files[f"{di}/RECORD"] = "\\n".join(record) + "\\n"
with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
    for n, c in files.items(): z.writestr(n, c)
`;

/** Writes `<dir>/<name>-<version>-py3-none-any.whl` and returns its path. */
export function buildWheel(dir: string, spec: WheelSpec): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${spec.name.replace(/-/g, '_')}-${spec.version}-py3-none-any.whl`);
  execFileSync('python3', ['-c', BUILD_WHEEL, file], { input: JSON.stringify(spec) });
  return file;
}

/** Runs `python3 setup.py sdist` for a one-module project; returns the `.tar.gz` path. */
export function buildSdist(dir: string, spec: { name: string; version: string; requiresPython?: string }): string {
  const src = path.join(dir, `src-${spec.name}-${spec.version}`);
  mkdirSync(src, { recursive: true });
  const mod = spec.name.replace(/[-.]/g, '_').toLowerCase();
  writeFileSync(path.join(src, `${mod}.py`), `VERSION = ${JSON.stringify(spec.version)}\n`);
  writeFileSync(
    path.join(src, 'setup.py'),
    `from setuptools import setup\nsetup(name=${JSON.stringify(spec.name)}, version=${JSON.stringify(spec.version)}, py_modules=[${JSON.stringify(mod)}]${
      spec.requiresPython ? `, python_requires=${JSON.stringify(spec.requiresPython)}` : ''
    })\n`,
  );
  const out = path.join(dir, 'sdist');
  execFileSync('python3', ['setup.py', '-q', 'sdist', '-d', out], { cwd: src, stdio: 'pipe' });
  // setuptools before 69.3 keeps '-' in the file name, newer ones write '_'.
  const file = readdirSync(out).find(
    (f) =>
      f.endsWith(`-${spec.version}.tar.gz`) &&
      f
        .replace(/[-_.]+/g, '-')
        .toLowerCase()
        .startsWith(spec.name.replace(/[-_.]+/g, '-').toLowerCase()),
  );
  if (!file) throw new Error(`setup.py sdist wrote no sdist of ${spec.name} ${spec.version} in ${out}`);
  return path.join(out, file);
}
