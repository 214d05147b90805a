/**
 * An RPM's metadata as repodata needs it (createrepo_c's `parsehdr.c`): what primary, filelists
 * and other list for a package. Pure: parsed headers in, a JSON-safe object out (stored once
 * per asset, so repodata is generated without reading the RPM again).
 */
import { readRpmHeaders, RpmFormatError, type RpmHeader, type RpmLayout } from './rpm-header.js';

/** rpmtag.h */
const T = {
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  SUMMARY: 1004,
  DESCRIPTION: 1005,
  BUILDTIME: 1006,
  BUILDHOST: 1007,
  SIZE: 1009,
  VENDOR: 1011,
  LICENSE: 1014,
  PACKAGER: 1015,
  GROUP: 1016,
  URL: 1020,
  ARCH: 1022,
  FILEMODES: 1030,
  FILEFLAGS: 1037,
  SOURCERPM: 1044,
  ARCHIVESIZE: 1046,
  PROVIDENAME: 1047,
  REQUIREFLAGS: 1048,
  REQUIRENAME: 1049,
  REQUIREVERSION: 1050,
  CONFLICTFLAGS: 1053,
  CONFLICTNAME: 1054,
  CONFLICTVERSION: 1055,
  CHANGELOGTIME: 1080,
  CHANGELOGNAME: 1081,
  CHANGELOGTEXT: 1082,
  OBSOLETENAME: 1090,
  PROVIDEFLAGS: 1112,
  PROVIDEVERSION: 1113,
  OBSOLETEFLAGS: 1114,
  OBSOLETEVERSION: 1115,
  DIRINDEXES: 1116,
  BASENAMES: 1117,
  DIRNAMES: 1118,
  SOURCEPACKAGE: 1106,
  LONGARCHIVESIZE: 271,
  LONGSIZE: 5009,
  RECOMMENDNAME: 5046,
  RECOMMENDVERSION: 5047,
  RECOMMENDFLAGS: 5048,
  SUGGESTNAME: 5049,
  SUGGESTVERSION: 5050,
  SUGGESTFLAGS: 5051,
  SUPPLEMENTNAME: 5052,
  SUPPLEMENTVERSION: 5053,
  SUPPLEMENTFLAGS: 5054,
  ENHANCENAME: 5055,
  ENHANCEVERSION: 5056,
  ENHANCEFLAGS: 5057,
} as const;

/** Signature header tags (rpmtag.h RPMSIGTAG_*). */
const SIG = { PAYLOADSIZE: 1007, LONGARCHIVESIZE: 271 } as const;

const RPMSENSE = { LESS: 2, GREATER: 4, EQUAL: 8, PREREQ: 1 << 6, SCRIPT_PRE: 1 << 9, SCRIPT_POST: 1 << 10 } as const;
const RPMFILE_GHOST = 1 << 6;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

export type DepFlags = 'EQ' | 'LT' | 'LE' | 'GT' | 'GE';

export interface Dependency {
  name: string;
  flags?: DepFlags;
  epoch?: string;
  ver?: string;
  rel?: string;
  /** Requires only: needed before the package's scripts run. */
  pre?: boolean;
}

export interface PackageFile {
  path: string;
  type?: 'dir' | 'ghost';
}

export interface ChangelogEntry {
  author: string;
  date: number;
  text: string;
}

export type DependencyKind = 'provides' | 'requires' | 'conflicts' | 'obsoletes' | 'suggests' | 'enhances' | 'recommends' | 'supplements';
export const DEPENDENCY_KINDS: readonly DependencyKind[] = ['provides', 'requires', 'conflicts', 'obsoletes', 'suggests', 'enhances', 'recommends', 'supplements'];

export interface RpmPackage {
  name: string;
  epoch: number;
  version: string;
  release: string;
  arch: string;
  summary: string;
  description: string;
  url: string;
  license: string;
  vendor: string;
  group: string;
  buildhost: string;
  sourcerpm: string;
  packager: string;
  buildTime: number;
  installedSize: number;
  archiveSize: number;
  headerStart: number;
  headerEnd: number;
  deps: Record<DependencyKind, Dependency[]>;
  files: PackageFile[];
  changelog: ChangelogEntry[];
}

const DEP_TAGS: Record<DependencyKind, [number, number, number]> = {
  provides: [T.PROVIDENAME, T.PROVIDEFLAGS, T.PROVIDEVERSION],
  requires: [T.REQUIRENAME, T.REQUIREFLAGS, T.REQUIREVERSION],
  conflicts: [T.CONFLICTNAME, T.CONFLICTFLAGS, T.CONFLICTVERSION],
  obsoletes: [T.OBSOLETENAME, T.OBSOLETEFLAGS, T.OBSOLETEVERSION],
  suggests: [T.SUGGESTNAME, T.SUGGESTFLAGS, T.SUGGESTVERSION],
  enhances: [T.ENHANCENAME, T.ENHANCEFLAGS, T.ENHANCEVERSION],
  recommends: [T.RECOMMENDNAME, T.RECOMMENDFLAGS, T.RECOMMENDVERSION],
  supplements: [T.SUPPLEMENTNAME, T.SUPPLEMENTFLAGS, T.SUPPLEMENTVERSION],
};

/** `[epoch:]version[-release]` as rpm splits it. */
export function splitEvr(evr: string): { epoch?: string; ver: string; rel?: string } {
  let rest = evr;
  let epoch: string | undefined;
  const colon = rest.indexOf(':');
  if (colon >= 0 && /^\d*$/.test(rest.slice(0, colon))) {
    epoch = rest.slice(0, colon) || '0';
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  if (dash < 0) return { epoch, ver: rest };
  return { epoch, ver: rest.slice(0, dash), rel: rest.slice(dash + 1) };
}

function flagName(flags: number): DepFlags | undefined {
  switch (flags & (RPMSENSE.LESS | RPMSENSE.GREATER | RPMSENSE.EQUAL)) {
    case RPMSENSE.EQUAL:
      return 'EQ';
    case RPMSENSE.LESS:
      return 'LT';
    case RPMSENSE.LESS | RPMSENSE.EQUAL:
      return 'LE';
    case RPMSENSE.GREATER:
      return 'GT';
    case RPMSENSE.GREATER | RPMSENSE.EQUAL:
      return 'GE';
    default:
      return undefined;
  }
}

function dependencies(h: RpmHeader, kind: DependencyKind): Dependency[] {
  const [nameTag, flagTag, verTag] = DEP_TAGS[kind];
  const names = h.strings(nameTag);
  const flags = h.numbers(flagTag);
  const versions = h.strings(verTag);
  const out: Dependency[] = [];
  for (let i = 0; i < names.length; i++) {
    const f = flags[i] ?? 0;
    const d: Dependency = { name: names[i] };
    const flag = flagName(f);
    const v = versions[i] ?? '';
    if (flag && v) {
      const evr = splitEvr(v);
      Object.assign(d, { flags: flag, epoch: evr.epoch ?? '0', ver: evr.ver }, evr.rel !== undefined ? { rel: evr.rel } : {});
    }
    if (kind === 'requires' && f & (RPMSENSE.PREREQ | RPMSENSE.SCRIPT_PRE | RPMSENSE.SCRIPT_POST)) d.pre = true;
    out.push(d);
  }
  return out;
}

function files(h: RpmHeader): PackageFile[] {
  const base = h.strings(T.BASENAMES);
  const dirs = h.strings(T.DIRNAMES);
  const idx = h.numbers(T.DIRINDEXES);
  const modes = h.numbers(T.FILEMODES);
  const flags = h.numbers(T.FILEFLAGS);
  if (idx.length !== base.length) throw new RpmFormatError('Corrupt RPM header: file names and directories differ in number');
  return base.map((b, i) => {
    const dir = dirs[idx[i]];
    if (dir === undefined) throw new RpmFormatError('Corrupt RPM header: a file names a directory that does not exist');
    const f: PackageFile = { path: dir + b };
    if (((modes[i] ?? 0) & S_IFMT) === S_IFDIR) f.type = 'dir';
    else if ((flags[i] ?? 0) & RPMFILE_GHOST) f.type = 'ghost';
    return f;
  });
}

function changelog(h: RpmHeader): ChangelogEntry[] {
  const times = h.numbers(T.CHANGELOGTIME);
  const names = h.strings(T.CHANGELOGNAME);
  const texts = h.strings(T.CHANGELOGTEXT);
  return times.map((date, i) => ({ date, author: names[i] ?? '', text: texts[i] ?? '' }));
}

/** The package described by an RPM's headers. Throws RpmFormatError for a source RPM missing its name. */
export function packageFromHeaders(layout: RpmLayout): RpmPackage {
  const h = layout.header;
  const s = (tag: number) => h.string(tag) ?? '';
  const name = h.string(T.NAME);
  const version = h.string(T.VERSION);
  const release = h.string(T.RELEASE);
  if (!name || version === undefined || release === undefined) throw new RpmFormatError('Corrupt RPM header: no name, version or release');
  // A source package has no SOURCERPM; createrepo_c lists it with arch `src`.
  const source = !h.has(T.SOURCERPM) || h.has(T.SOURCEPACKAGE);
  const deps = {} as Record<DependencyKind, Dependency[]>;
  for (const k of DEPENDENCY_KINDS) deps[k] = dependencies(h, k);
  return {
    name,
    epoch: h.number(T.EPOCH) ?? 0,
    version,
    release,
    arch: source ? 'src' : s(T.ARCH),
    summary: s(T.SUMMARY),
    description: s(T.DESCRIPTION),
    url: s(T.URL),
    license: s(T.LICENSE),
    vendor: s(T.VENDOR),
    group: s(T.GROUP),
    buildhost: s(T.BUILDHOST),
    sourcerpm: s(T.SOURCERPM),
    packager: s(T.PACKAGER),
    buildTime: h.number(T.BUILDTIME) ?? 0,
    installedSize: h.number(T.LONGSIZE) ?? h.number(T.SIZE) ?? 0,
    archiveSize: h.number(T.LONGARCHIVESIZE) ?? layout.signature.number(SIG.LONGARCHIVESIZE) ?? layout.signature.number(SIG.PAYLOADSIZE) ?? h.number(T.ARCHIVESIZE) ?? 0,
    headerStart: layout.headerStart,
    headerEnd: layout.headerEnd,
    deps,
    files: files(h),
    changelog: changelog(h),
  };
}

/** The package in an RPM's first bytes (all of its headers). */
export function parseRpm(buf: Buffer): RpmPackage {
  return packageFromHeaders(readRpmHeaders(buf));
}

/** `name-[epoch:]version-release.arch` */
export function nevra(p: Pick<RpmPackage, 'name' | 'epoch' | 'version' | 'release' | 'arch'>): string {
  return `${p.name}-${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}.${p.arch}`;
}
