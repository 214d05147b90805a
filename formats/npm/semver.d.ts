// Minimal types for the parts of semver (https://github.com/npm/node-semver) the npm format uses.
declare module 'semver' {
  interface SemVer {
    version: string;
    raw: string;
  }
  export function parse(version: string, options?: { loose?: boolean }): SemVer | null;
  const semver: { parse: typeof parse };
  export default semver;
}
