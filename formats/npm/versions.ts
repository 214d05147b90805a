/**
 * npm's version order (semver, as the npm CLI and registry use it) for the core's cleanup
 * policies, search and UI, and for re-pointing `latest` when versions go.
 */
import semver from 'semver';

/** Semver order; a version that is not valid semver sorts before every valid one, then by text. */
export function compareVersions(a: string, b: string): number {
  const va = semver.valid(a);
  const vb = semver.valid(b);
  if (va && vb) return semver.compare(va, vb);
  if (va || vb) return va ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isPrerelease(version: string): boolean {
  return semver.valid(version) !== null && semver.prerelease(version) !== null;
}

/** The highest release among `versions`, else the highest prerelease; null when there are none. */
export function highestVersion(versions: string[]): string | null {
  const sorted = [...versions].sort(compareVersions);
  const releases = sorted.filter((v) => !isPrerelease(v));
  return releases.at(-1) ?? sorted.at(-1) ?? null;
}
