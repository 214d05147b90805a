// Minimal types for the parts of semver (https://github.com/npm/node-semver) the npm format uses.
declare module 'semver' {
  interface SemVer {
    version: string;
    raw: string;
  }
  export function parse(version: string, options?: { loose?: boolean }): SemVer | null;
  export function valid(version: string): string | null;
  export function compare(a: string, b: string, loose?: boolean): -1 | 0 | 1;
  export function prerelease(version: string): ReadonlyArray<string | number> | null;
  const semver: { parse: typeof parse; valid: typeof valid; compare: typeof compare; prerelease: typeof prerelease };
  export default semver;
}
