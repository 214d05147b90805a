/**
 * The `maven` section of a repository (Nexus's `maven: { versionPolicy, layoutPolicy,
 * contentDisposition }`, plus Stowage's `checksumPolicy` for proxies) and the rules it states.
 */
import { z } from 'zod';
import type { Repository } from '../../src/repository/repository.js';
import type { RepositoryType } from '../../src/repository/types.js';
import type { MavenPath } from './layout.js';
import { isSnapshot } from './version.js';

export const mavenSection = z.object({
  versionPolicy: z.enum(['RELEASE', 'SNAPSHOT', 'MIXED']).default('RELEASE'),
  layoutPolicy: z.enum(['STRICT', 'PERMISSIVE']).default('STRICT'),
  contentDisposition: z.enum(['INLINE', 'ATTACHMENT']).default('INLINE'),
  /** Proxies: how upstream `.sha1` files are used (Nexus's IGNORE, WARN, STRICT). */
  checksumPolicy: z.enum(['IGNORE', 'WARN', 'STRICT']).default('WARN'),
});

export type MavenSection = z.infer<typeof mavenSection>;

const DEFAULTS: MavenSection = { versionPolicy: 'RELEASE', layoutPolicy: 'STRICT', contentDisposition: 'INLINE', checksumPolicy: 'WARN' };

/** Groups take any version (their members decide); hosted and proxy repositories default to RELEASE. */
export function sectionDefaults(type: RepositoryType): MavenSection {
  return type === 'group' ? { ...DEFAULTS, versionPolicy: 'MIXED', layoutPolicy: 'PERMISSIVE' } : DEFAULTS;
}

export function sectionOf(repo: Repository): MavenSection {
  return { ...sectionDefaults(repo.type), ...(repo.section<Partial<MavenSection>>('maven') ?? {}) };
}

/** The version a path belongs to (for the version policy), or null when it names none (artifact-level metadata). */
function versionOf(p: MavenPath): string | null {
  if (p.kind === 'checksum') return versionOf(p.of);
  if (p.kind === 'artifact') return p.coords.baseVersion;
  return p.snapshotVersion;
}

/** Why the repository's version policy refuses `p` (Nexus's message), or null when it takes it. */
export function versionRefusal(repo: Repository, p: MavenPath): string | null {
  const { versionPolicy } = sectionOf(repo);
  const v = versionOf(p);
  if (v === null || versionPolicy === 'MIXED') return null;
  if (isSnapshot(v) === (versionPolicy === 'SNAPSHOT')) return null;
  return `Repository version policy: ${versionPolicy} does not allow version: ${v}`;
}
