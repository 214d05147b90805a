/**
 * PEP 440 versions: parsing, the canonical form, ordering (as `packaging.version` orders them)
 * and prerelease detection. Versions that are not PEP 440 ("legacy") sort before every valid
 * one, among themselves by string.
 */

const PATTERN = new RegExp(
  '^\\s*v?' +
    '(?:(?<epoch>[0-9]+)!)?' +
    '(?<release>[0-9]+(?:\\.[0-9]+)*)' +
    '(?<pre>[-_.]?(?<pre_l>alpha|beta|preview|pre|a|b|c|rc)[-_.]?(?<pre_n>[0-9]+)?)?' +
    '(?<post>(?:-(?<post_n1>[0-9]+))|(?:[-_.]?(?<post_l>post|rev|r)[-_.]?(?<post_n2>[0-9]+)?))?' +
    '(?<dev>[-_.]?(?<dev_l>dev)[-_.]?(?<dev_n>[0-9]+)?)?' +
    '(?:\\+(?<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?' +
    '\\s*$',
  'i',
);

export interface Version {
  epoch: number;
  release: number[];
  pre: ['a' | 'b' | 'rc', number] | null;
  post: number | null;
  dev: number | null;
  local: Array<number | string> | null;
}

const num = (s: string | undefined): number => (s === undefined ? 0 : Number(s));

export function parseVersion(text: string): Version | null {
  if (text.length > 128) return null;
  const m = PATTERN.exec(text);
  if (!m) return null;
  const g = m.groups!;
  let pre: Version['pre'] = null;
  if (g.pre_l) {
    const l = g.pre_l.toLowerCase();
    const letter = l === 'alpha' || l === 'a' ? 'a' : l === 'beta' || l === 'b' ? 'b' : 'rc';
    pre = [letter, num(g.pre_n)];
  }
  const post = g.post ? num(g.post_n1 ?? g.post_n2) : null;
  const dev = g.dev ? num(g.dev_n) : null;
  const local = g.local
    ? g.local
        .toLowerCase()
        .split(/[-_.]/)
        .map((p) => (/^[0-9]+$/.test(p) ? Number(p) : p))
    : null;
  return { epoch: num(g.epoch), release: g.release.split('.').map(Number), pre, post, dev, local };
}

export function formatVersion(v: Version): string {
  let s = (v.epoch ? `${v.epoch}!` : '') + v.release.join('.');
  if (v.pre) s += v.pre[0] + v.pre[1];
  if (v.post !== null) s += `.post${v.post}`;
  if (v.dev !== null) s += `.dev${v.dev}`;
  if (v.local) s += '+' + v.local.join('.');
  return s;
}

/** The normalised form (`1.0-RC1` → `1.0rc1`), or null for a version that is not PEP 440. */
export function canonicalVersion(text: string): string | null {
  const v = parseVersion(text);
  return v ? formatVersion(v) : null;
}

export function isPrerelease(text: string): boolean {
  const v = parseVersion(text);
  return !!v && (v.pre !== null || v.dev !== null);
}

function cmpNum(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** -Infinity / +Infinity stand-ins for packaging's sentinels. */
const NEG = -Infinity;
const POS = Infinity;

function preKey(v: Version): [number, number] {
  // A dev release of a final version sorts before its pre-releases (1.0.dev0 < 1.0a1).
  if (!v.pre && v.post === null && v.dev !== null) return [NEG, 0];
  if (!v.pre) return [POS, 0];
  return [{ a: 0, b: 1, rc: 2 }[v.pre[0]], v.pre[1]];
}

function cmpLocal(a: Version['local'], b: Version['local']): number {
  if (!a || !b) return a ? 1 : b ? -1 : 0;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i >= a.length) return -1;
    if (i >= b.length) return 1;
    const x = a[i];
    const y = b[i];
    if (typeof x === 'number' && typeof y === 'number') {
      if (x !== y) return cmpNum(x, y);
    } else if (typeof x === 'number')
      return 1; // numeric segments sort after alphanumeric ones
    else if (typeof y === 'number') return -1;
    else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export function compareParsed(a: Version, b: Version): number {
  if (a.epoch !== b.epoch) return cmpNum(a.epoch, b.epoch);
  const ra = trimZeros(a.release);
  const rb = trimZeros(b.release);
  for (let i = 0; i < Math.max(ra.length, rb.length); i++) {
    const c = cmpNum(ra[i] ?? 0, rb[i] ?? 0);
    if (c) return c;
  }
  const [pa, pb] = [preKey(a), preKey(b)];
  if (pa[0] !== pb[0]) return cmpNum(pa[0], pb[0]);
  if (pa[1] !== pb[1]) return cmpNum(pa[1], pb[1]);
  const c = cmpNum(a.post ?? NEG, b.post ?? NEG) || cmpNum(a.dev ?? POS, b.dev ?? POS);
  return c || cmpLocal(a.local, b.local);
}

function trimZeros(r: number[]): number[] {
  let n = r.length;
  while (n > 1 && r[n - 1] === 0) n--;
  return r.slice(0, n);
}

/** Orders two version strings (negative: a before b); non-PEP 440 versions first, by string. */
export function compareVersions(a: string, b: string): number {
  const va = parseVersion(a);
  const vb = parseVersion(b);
  if (va && vb) return compareParsed(va, vb);
  if (va) return 1;
  if (vb) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}
