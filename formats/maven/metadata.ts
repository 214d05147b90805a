/**
 * maven-metadata.xml read, written and merged: pure functions over documents (protocols.md §4.2
 * and §4.3). Parsing refuses DOCTYPE/ENTITY declarations (entity expansion) and malformed XML;
 * writing is deterministic, so equal content gives equal bytes and equal checksums.
 */
import type * as Fxp from 'fast-xml-parser';
import { lazyRequire } from '../../src/lazy-require.js';
import type { Coordinates } from './layout.js';
import { compareVersions, highest, isSnapshot } from './version.js';

export interface SnapshotVersion {
  classifier?: string;
  extension: string;
  value: string;
  updated?: string;
}

export interface Plugin {
  name?: string;
  prefix: string;
  artifactId: string;
}

export interface Metadata {
  modelVersion?: string;
  groupId?: string;
  artifactId?: string;
  version?: string;
  latest?: string;
  release?: string;
  versions: string[];
  lastUpdated?: string;
  snapshot?: { timestamp?: string; buildNumber?: number; localCopy?: boolean };
  snapshotVersions: SnapshotVersion[];
  plugins: Plugin[];
}

export class MetadataError extends Error {}

/** Metadata documents are small; a larger body is not one. */
export const MAX_METADATA_BYTES = 4 * 1024 * 1024;

/** Loaded with the first metadata document: most servers never see one. */
const fxp = lazyRequire<typeof Fxp>('fast-xml-parser');
let parser: Fxp.XMLParser | undefined;
const newParser = () =>
  new (fxp().XMLParser)({
    ignoreAttributes: true,
    parseTagValue: false,
    trimValues: true,
    // Only the five predefined entities can occur: DOCTYPE is refused before parsing.
    processEntities: true,
    isArray: (name) => name === 'version' || name === 'snapshotVersion' || name === 'plugin',
  });

const text = (v: unknown): string | undefined => {
  if (Array.isArray(v)) v = v[0];
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
};

/** Parses a maven-metadata.xml document; throws MetadataError saying what is wrong. */
export function parseMetadata(input: Buffer | string): Metadata {
  const xml = typeof input === 'string' ? input : input.toString('utf8');
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new MetadataError('maven-metadata.xml must not declare a DOCTYPE or entities');
  const valid = fxp().XMLValidator.validate(xml);
  if (valid !== true) throw new MetadataError(`maven-metadata.xml is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  const doc = (parser ??= newParser()).parse(xml) as Record<string, unknown>;
  if (!('metadata' in doc)) throw new MetadataError('maven-metadata.xml has no <metadata> root element');
  // `<metadata/>` parses as an empty string.
  const root = (typeof doc.metadata === 'object' && doc.metadata ? doc.metadata : {}) as Record<string, unknown>;
  const versioning = (typeof root.versioning === 'object' && root.versioning ? root.versioning : {}) as Record<string, unknown>;
  const versionsEl = versioning.versions as { version?: unknown[] } | undefined;
  const snapshotEl = versioning.snapshot as Record<string, unknown> | undefined;
  const svEl = versioning.snapshotVersions as { snapshotVersion?: Array<Record<string, unknown>> } | undefined;
  const pluginsEl = root.plugins as { plugin?: Array<Record<string, unknown>> } | undefined;
  const md: Metadata = {
    groupId: text(root.groupId),
    artifactId: text(root.artifactId),
    version: text(root.version),
    latest: text(versioning.latest),
    release: text(versioning.release),
    versions: (versionsEl?.version ?? []).map(text).filter((v): v is string => !!v),
    lastUpdated: text(versioning.lastUpdated),
    snapshotVersions: [],
    plugins: [],
  };
  if (snapshotEl && typeof snapshotEl === 'object') {
    const n = text(snapshotEl.buildNumber);
    md.snapshot = { timestamp: text(snapshotEl.timestamp), buildNumber: n !== undefined ? Number(n) : undefined };
    if (text(snapshotEl.localCopy) === 'true') md.snapshot.localCopy = true;
    if (md.snapshot.buildNumber !== undefined && !Number.isSafeInteger(md.snapshot.buildNumber)) throw new MetadataError('snapshot buildNumber is not a number');
  }
  for (const sv of svEl?.snapshotVersion ?? []) {
    const extension = text(sv.extension);
    const value = text(sv.value);
    if (!extension || !value) throw new MetadataError('a snapshotVersion needs an extension and a value');
    md.snapshotVersions.push({ classifier: text(sv.classifier), extension, value, updated: text(sv.updated) });
  }
  for (const p of pluginsEl?.plugin ?? []) {
    const prefix = text(p.prefix);
    const artifactId = text(p.artifactId);
    if (!prefix || !artifactId) throw new MetadataError('a plugin needs a prefix and an artifactId');
    md.plugins.push({ name: text(p.name), prefix, artifactId });
  }
  return md;
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The document's bytes, in the element order Maven writes. */
export function writeMetadata(md: Metadata): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(md.modelVersion ? `<metadata modelVersion="${escapeXml(md.modelVersion)}">` : '<metadata>');
  const el = (indent: string, name: string, v: string | number | undefined) => {
    if (v !== undefined && v !== '') out.push(`${indent}<${name}>${escapeXml(String(v))}</${name}>`);
  };
  el('  ', 'groupId', md.groupId);
  el('  ', 'artifactId', md.artifactId);
  el('  ', 'version', md.version);
  const hasVersioning = md.latest || md.release || md.versions.length > 0 || md.lastUpdated || md.snapshot || md.snapshotVersions.length > 0;
  if (hasVersioning) {
    out.push('  <versioning>');
    el('    ', 'latest', md.latest);
    el('    ', 'release', md.release);
    if (md.snapshot) {
      out.push('    <snapshot>');
      el('      ', 'timestamp', md.snapshot.timestamp);
      el('      ', 'buildNumber', md.snapshot.buildNumber);
      if (md.snapshot.localCopy) el('      ', 'localCopy', 'true');
      out.push('    </snapshot>');
    }
    if (md.versions.length > 0) {
      out.push('    <versions>');
      for (const v of md.versions) el('      ', 'version', v);
      out.push('    </versions>');
    }
    el('    ', 'lastUpdated', md.lastUpdated);
    if (md.snapshotVersions.length > 0) {
      out.push('    <snapshotVersions>');
      for (const sv of md.snapshotVersions) {
        out.push('      <snapshotVersion>');
        el('        ', 'classifier', sv.classifier);
        el('        ', 'extension', sv.extension);
        el('        ', 'value', sv.value);
        el('        ', 'updated', sv.updated);
        out.push('      </snapshotVersion>');
      }
      out.push('    </snapshotVersions>');
    }
    out.push('  </versioning>');
  }
  if (md.plugins.length > 0) {
    out.push('  <plugins>');
    for (const p of md.plugins) {
      out.push('    <plugin>');
      el('      ', 'name', p.name);
      el('      ', 'prefix', p.prefix);
      el('      ', 'artifactId', p.artifactId);
      out.push('    </plugin>');
    }
    out.push('  </plugins>');
  }
  out.push('</metadata>', '');
  return out.join('\n');
}

/** `yyyyMMddHHmmss` in UTC, as Maven writes lastUpdated and updated. */
export function lastUpdatedOf(at: Date): string {
  return at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** `20261201.120000` → `20261201120000`. */
const timestampToUpdated = (ts: string) => ts.replace('.', '');

/** Versions in Maven's order, each once. */
export function sortVersions(versions: Iterable<string>): string[] {
  return [...new Set(versions)].sort(compareVersions);
}

/** Artifact-level metadata for the versions stored (latest: the highest, release: the highest release). */
export function artifactMetadata(groupId: string, artifactId: string, versions: Iterable<string>, lastUpdated: string): Metadata {
  const sorted = sortVersions(versions);
  return {
    groupId,
    artifactId,
    latest: highest(sorted) ?? undefined,
    release: highest(sorted.filter((v) => !isSnapshot(v))) ?? undefined,
    versions: sorted,
    lastUpdated,
    snapshotVersions: [],
    plugins: [],
  };
}

/**
 * Snapshot-version-level metadata for the files stored in a `-SNAPSHOT` directory: the newest
 * build (timestamp and buildNumber), and per classifier and extension the newest file's version.
 * Null when no timestamped file is stored (only non-unique `-SNAPSHOT` names).
 */
export function snapshotMetadata(groupId: string, artifactId: string, baseVersion: string, files: Coordinates[]): Metadata | null {
  const builds = files.filter((f) => f.timestamp !== null && f.buildNumber !== null);
  if (builds.length === 0) return null;
  const newer = (a: Coordinates, b: Coordinates) => a.buildNumber! - b.buildNumber! || (a.timestamp! < b.timestamp! ? -1 : a.timestamp! > b.timestamp! ? 1 : 0);
  const newest = builds.reduce((a, b) => (newer(b, a) > 0 ? b : a));
  const perFile = new Map<string, Coordinates>();
  for (const f of builds) {
    // Signatures and checksums of signatures are not resolved through the metadata.
    const key = `${f.classifier ?? ''}\n${f.extension}`;
    const prev = perFile.get(key);
    if (!prev || newer(f, prev) > 0) perFile.set(key, f);
  }
  const snapshotVersions = [...perFile.values()]
    .sort((a, b) => (a.classifier ?? '').localeCompare(b.classifier ?? '') || a.extension.localeCompare(b.extension))
    .map((f) => ({ classifier: f.classifier ?? undefined, extension: f.extension, value: f.version, updated: timestampToUpdated(f.timestamp!) }));
  return {
    modelVersion: '1.1.0',
    groupId,
    artifactId,
    version: baseVersion,
    versions: [],
    snapshot: { timestamp: newest.timestamp!, buildNumber: newest.buildNumber! },
    lastUpdated: timestampToUpdated(newest.timestamp!),
    snapshotVersions,
    plugins: [],
  };
}

/** The newest build a snapshot document names: its timestamp, else lastUpdated ('' when neither). */
function snapshotStamp(md: Metadata): string {
  return (md.snapshot?.timestamp ? timestampToUpdated(md.snapshot.timestamp) : md.lastUpdated) ?? '';
}

/**
 * A group's view of its members' documents at one path (protocols.md §4.3). Snapshot-version
 * documents are never mixed: the member document with the newest build wins (returned as its
 * index, so the group serves its bytes). Otherwise versions are the union in Maven's order, latest
 * and release the maximum, lastUpdated the newest, plugins the union by prefix.
 */
export function mergeMetadata(docs: Metadata[]): { pick: number } | { merged: Metadata } {
  if (docs.length === 0) throw new Error('nothing to merge');
  if (docs.some((d) => d.snapshot || d.snapshotVersions.length > 0)) {
    let pick = 0;
    for (let i = 1; i < docs.length; i++) if (snapshotStamp(docs[i]) > snapshotStamp(docs[pick])) pick = i;
    return { pick };
  }
  const first = docs.find((d) => d.groupId) ?? docs[0];
  const versions = sortVersions(docs.flatMap((d) => d.versions));
  const latest = highest([...versions, ...docs.map((d) => d.latest).filter((v): v is string => !!v)]);
  const release = highest([...versions.filter((v) => !isSnapshot(v)), ...docs.map((d) => d.release).filter((v): v is string => !!v)]);
  const lastUpdated = docs.map((d) => d.lastUpdated ?? '').reduce((a, b) => (b > a ? b : a), '');
  const plugins = new Map<string, Plugin>();
  for (const d of docs) for (const p of d.plugins) if (!plugins.has(p.prefix)) plugins.set(p.prefix, p);
  return {
    merged: {
      groupId: first.groupId,
      artifactId: first.artifactId,
      version: first.version,
      latest: latest ?? undefined,
      release: release ?? undefined,
      versions,
      lastUpdated: lastUpdated || undefined,
      snapshotVersions: [],
      plugins: [...plugins.values()].sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0)),
    },
  };
}
