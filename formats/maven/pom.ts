/**
 * A deployed POM is checked before it is stored: well-formed XML whose root is `<project>`, with
 * no DOCTYPE or entity declarations (Maven's own reader refuses them too, and a repository should
 * not serve what every client will fail on). Pure.
 */
import type * as Fxp from 'fast-xml-parser';
import { lazyRequire } from '../../src/lazy-require.js';

/** Loaded with the first POM: most servers never see one. */
const fxp = lazyRequire<typeof Fxp>('fast-xml-parser');

/** POMs are small; one past this is refused rather than held in memory for the check. */
export const MAX_POM_BYTES = 8 * 1024 * 1024;

/** Why `xml` is not a usable POM, or null. */
export function pomProblem(xml: string): string | null {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) return 'a POM must not declare a DOCTYPE or entities';
  const valid = fxp().XMLValidator.validate(xml);
  if (valid !== true) return `the POM is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`;
  const root = /^(?:\s|<\?[^>]*\?>|<!--[\s\S]*?-->)*<([A-Za-z_][\w.:-]*)/.exec(xml.replace(/^\uFEFF/, ''));
  if (!root || root[1] !== 'project') return `the POM's root element is <${root?.[1] ?? '?'}>, not <project>`;
  return null;
}

const escapeXml = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** A minimal POM naming just the coordinates and packaging (what Nexus generates on an upload). */
export function pomXml(p: { groupId: string; artifactId: string; version: string; packaging: string }): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<project xmlns="http://maven.apache.org/POM/4.0.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">',
    '  <modelVersion>4.0.0</modelVersion>',
    `  <groupId>${escapeXml(p.groupId)}</groupId>`,
    `  <artifactId>${escapeXml(p.artifactId)}</artifactId>`,
    `  <version>${escapeXml(p.version)}</version>`,
    `  <packaging>${escapeXml(p.packaging)}</packaging>`,
    '</project>',
    '',
  ].join('\n');
}

let parser: Fxp.XMLParser | undefined;

/**
 * The coordinates a POM declares, groupId and version inherited from `<parent>` as Maven does;
 * a value that is missing or still a `${…}` expression is left out. `xml` must have passed `pomProblem`.
 */
export function pomCoordinates(xml: string): { groupId?: string; artifactId?: string; version?: string } {
  parser ??= new (fxp().XMLParser)({ ignoreAttributes: true, parseTagValue: false, trimValues: true, processEntities: true });
  const project = ((parser.parse(xml) as { project?: unknown }).project ?? {}) as Record<string, unknown>;
  const parent = (typeof project.parent === 'object' && project.parent ? project.parent : {}) as Record<string, unknown>;
  const value = (v: unknown) => (typeof v === 'string' && v !== '' && !v.includes('${') ? v : undefined);
  // Only an absent value is inherited: an expression is the project's own, just unresolvable here.
  const inherited = (key: string) => (project[key] === undefined ? value(parent[key]) : value(project[key]));
  return { groupId: inherited('groupId'), artifactId: value(project.artifactId), version: inherited('version') };
}
