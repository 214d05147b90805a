/** Which component (groupId, artifactId, version) a Maven path belongs to. Pure. */
import type { ComponentInput } from '../../src/content/types.js';
import { parseMavenPath, type Coordinates } from './layout.js';

/**
 * The component of an artifact file: namespace groupId, name artifactId, version the file's
 * version (each timestamped snapshot build is a component of its own, as in Nexus), with
 * `baseVersion` in its attributes. Metadata and checksum paths belong to none.
 */
export function componentOf(path: string): ComponentInput | null {
  const p = parseMavenPath(path);
  if (!p || p.kind !== 'artifact') return null;
  const { groupId, artifactId, version, baseVersion } = p.coords;
  return { namespace: groupId, name: artifactId, version, attributes: { maven2: { groupId, artifactId, version, baseVersion } } };
}

/** An artifact file's attributes: its coordinates (Nexus's search filters extension and classifier). */
export function mavenAttributes(coords: Coordinates): Record<string, unknown> {
  return { maven2: { ...coords } };
}
