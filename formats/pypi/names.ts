/**
 * Project names and distribution file names (PEP 503 normalisation, the wheel and sdist file
 * name rules). Pure: strings in, typed values out.
 */
import { compareParsed, parseVersion } from './pep440.js';

/** PEP 503: runs of `-`, `_`, `.` become one `-`, lower case. */
export function normalizeName(name: string): string {
  return name.replace(/[-_.]+/g, '-').toLowerCase();
}

/** PEP 508 names: ASCII letters and digits, `.`, `_`, `-` inside. */
const VALID_NAME = /^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$/i;

export function isValidName(name: string): boolean {
  return name.length <= 200 && VALID_NAME.test(name);
}

/** Characters a distribution file name may hold (no separators, no traversal, no controls). */
const SAFE_FILENAME = /^[A-Za-z0-9][A-Za-z0-9._+!~-]*$/;

export type DistKind = 'bdist_wheel' | 'sdist';

export interface DistFile {
  kind: DistKind;
  /** The name as written in the file name (wheel: `_` for `-`). */
  name: string;
  version: string;
  /** Wheels: build tag, python, abi and platform tags. */
  build?: string;
  tags?: { python: string; abi: string; platform: string };
}

const SDIST_SUFFIXES = ['.tar.gz', '.zip', '.tar.bz2', '.tgz', '.tar.xz'];

export function isSafeFilename(filename: string): boolean {
  return filename.length <= 255 && SAFE_FILENAME.test(filename) && !filename.includes('..');
}

/**
 * A wheel (`{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`) or an sdist
 * (`{name}-{version}.tar.gz`, legacy `.zip`…) file name; null when it is neither. With `expect`,
 * an sdist's name/version split is the one matching it (legacy names hold `-`).
 */
export function parseDistFilename(filename: string, expect?: { name: string; version: string }): DistFile | null {
  if (!isSafeFilename(filename)) return null;
  if (filename.endsWith('.whl')) {
    const parts = filename.slice(0, -4).split('-');
    if (parts.length !== 5 && parts.length !== 6) return null;
    const [name, version] = parts;
    if (!isValidName(name) || !parseVersion(version)) return null;
    const build = parts.length === 6 ? parts[2] : undefined;
    if (build !== undefined && !/^\d[A-Za-z0-9_.]*$/.test(build)) return null;
    const [python, abi, platform] = parts.slice(-3);
    if (!python || !abi || !platform) return null;
    return { kind: 'bdist_wheel', name, version, ...(build ? { build } : {}), tags: { python, abi, platform } };
  }
  const suffix = SDIST_SUFFIXES.find((s) => filename.endsWith(s));
  if (!suffix) return null;
  const stem = filename.slice(0, -suffix.length);
  // Split at every '-': the first split whose right side is a version (and, with `expect`, the
  // split naming the expected project and version).
  for (let i = stem.indexOf('-'); i > 0; i = stem.indexOf('-', i + 1)) {
    const name = stem.slice(0, i);
    const version = stem.slice(i + 1);
    if (!isValidName(name) || !parseVersion(version)) continue;
    if (expect && !(normalizeName(name) === normalizeName(expect.name) && sameVersion(version, expect.version))) continue;
    return { kind: 'sdist', name, version };
  }
  return null;
}

/** Equal as PEP 440 versions (as Warehouse checks a file name: `1.0.0` is `1.0`). */
export function sameVersion(a: string, b: string): boolean {
  const va = parseVersion(a);
  const vb = parseVersion(b);
  return !!va && !!vb && compareParsed(va, vb) === 0;
}

/**
 * Why `filename` cannot be the file of project `name` at `version` (the upload form's fields),
 * or null when it can.
 */
export function filenameMismatch(filename: string, name: string, version: string, filetype?: string): string | null {
  if (!isSafeFilename(filename)) return `Invalid file name '${filename}'`;
  const parsed = parseDistFilename(filename, { name, version });
  if (!parsed) {
    const loose = parseDistFilename(filename);
    if (!loose) return `'${filename}' is not a valid wheel or sdist file name`;
    return `File name '${filename}' does not match project '${name}' version '${version}'`;
  }
  if (normalizeName(parsed.name) !== normalizeName(name)) return `File name '${filename}' names project '${parsed.name}', not '${name}'`;
  if (!sameVersion(parsed.version, version)) return `File name '${filename}' has version '${parsed.version}', not '${version}'`;
  if (filetype && filetype !== parsed.kind) return `File '${filename}' is a ${parsed.kind}, but filetype '${filetype}' was sent`;
  return null;
}
