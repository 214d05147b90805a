// Minimal types for the parts of semver (https://github.com/npm/node-semver) npm's format uses.
declare module 'semver' {
  const semver: {
    valid(version: string): string | null;
    compare(a: string, b: string, loose?: boolean): -1 | 0 | 1;
    prerelease(version: string): ReadonlyArray<string | number> | null;
  };
  export default semver;
}
