/**
 * Maven's version order: a port of ComparableVersion as Maven 3.8 (the mvn of this project's
 * clients) implements it — items split at `.`, `-` and digit/letter transitions, numbers compared
 * as numbers, the known qualifiers ordered alpha < beta < milestone < rc < snapshot < (release) <
 * sp, unknown qualifiers after them in text order, trailing zeros and release qualifiers dropped.
 * The fixtures in test/unit/maven-version.test.ts are Maven's own ComparableVersionTest cases.
 */

type Item = IntItem | StringItem | ListItem;

interface IntItem {
  kind: 'int';
  /** Decimal digits without leading zeros ('' for zero): compared by length, then as text. */
  digits: string;
}
interface StringItem {
  kind: 'string';
  value: string;
}
interface ListItem {
  kind: 'list';
  items: Item[];
}

const QUALIFIERS = ['alpha', 'beta', 'milestone', 'rc', 'snapshot', '', 'sp'];
const ALIASES: Record<string, string> = { ga: '', final: '', release: '', cr: 'rc' };
const RELEASE_INDEX = String(QUALIFIERS.indexOf(''));

function intItem(buf: string): IntItem {
  return { kind: 'int', digits: buf.replace(/^0+/, '') };
}

function stringItem(value: string, followedByDigit: boolean): StringItem {
  if (followedByDigit && value.length === 1) {
    if (value === 'a') value = 'alpha';
    else if (value === 'b') value = 'beta';
    else if (value === 'm') value = 'milestone';
  }
  return { kind: 'string', value: ALIASES[value] ?? value };
}

function parseItem(isDigit: boolean, buf: string): Item {
  return isDigit ? intItem(buf) : stringItem(buf, false);
}

function isNull(item: Item): boolean {
  if (item.kind === 'int') return item.digits === '';
  if (item.kind === 'string') return item.value === '';
  return item.items.length === 0;
}

/** Drops trailing null items (0, release qualifiers, empty lists) of a list, as Maven does. */
function normalize(list: ListItem): void {
  for (let i = list.items.length - 1; i >= 0; i--) {
    const last = list.items[i];
    if (isNull(last)) list.items.splice(i, 1);
    else if (last.kind !== 'list') break;
  }
}

/** Java's String.compareTo sign (UTF-16 code units), which is what JS `<` compares. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparableQualifier(q: string): string {
  const i = QUALIFIERS.indexOf(q);
  return i === -1 ? `${QUALIFIERS.length}-${q}` : String(i);
}

function compareItem(a: Item, b: Item | null): number {
  switch (a.kind) {
    case 'int':
      if (b === null) return a.digits === '' ? 0 : 1;
      if (b.kind === 'int') return a.digits.length !== b.digits.length ? Math.sign(a.digits.length - b.digits.length) : compareText(a.digits, b.digits);
      return 1; // a number is after any qualifier and any sub-list
    case 'string':
      if (b === null) return Math.sign(compareText(comparableQualifier(a.value), RELEASE_INDEX));
      if (b.kind === 'string') return Math.sign(compareText(comparableQualifier(a.value), comparableQualifier(b.value)));
      return -1;
    case 'list': {
      if (b === null) return a.items.length === 0 ? 0 : compareItem(a.items[0], null);
      if (b.kind === 'int') return -1;
      if (b.kind === 'string') return 1;
      const n = Math.max(a.items.length, b.items.length);
      for (let i = 0; i < n; i++) {
        const l = a.items[i] ?? null;
        const r = b.items[i] ?? null;
        const result = l === null ? (r === null ? 0 : -compareItem(r, l)) : compareItem(l, r);
        if (result !== 0) return result;
      }
      return 0;
    }
  }
}

const isDigitChar = (c: string) => c >= '0' && c <= '9';

/** Parses a version into Maven's item tree (ComparableVersion.parseVersion). */
export function parseVersion(version: string): ListItem {
  const v = version.toLowerCase();
  const root: ListItem = { kind: 'list', items: [] };
  let list = root;
  const stack: ListItem[] = [root];
  let isDigit = false;
  let start = 0;
  const push = () => {
    const next: ListItem = { kind: 'list', items: [] };
    list.items.push(next);
    list = next;
    stack.push(next);
  };
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === '.') {
      list.items.push(i === start ? intItem('0') : parseItem(isDigit, v.slice(start, i)));
      start = i + 1;
    } else if (c === '-') {
      list.items.push(i === start ? intItem('0') : parseItem(isDigit, v.slice(start, i)));
      start = i + 1;
      push();
    } else if (isDigitChar(c)) {
      if (!isDigit && i > start) {
        list.items.push(stringItem(v.slice(start, i), true));
        start = i;
        push();
      }
      isDigit = true;
    } else {
      if (isDigit && i > start) {
        list.items.push(parseItem(true, v.slice(start, i)));
        start = i;
        push();
      }
      isDigit = false;
    }
  }
  if (v.length > start) list.items.push(parseItem(isDigit, v.slice(start)));
  while (stack.length > 0) normalize(stack.pop()!);
  return root;
}

const parsed = new Map<string, ListItem>();
function cachedParse(v: string): ListItem {
  let p = parsed.get(v);
  if (!p) {
    p = parseVersion(v);
    if (parsed.size >= 10_000) parsed.clear();
    parsed.set(v, p);
  }
  return p;
}

/** Negative when `a` is before `b` in Maven's order, 0 when Maven holds them equal. */
export function compareVersions(a: string, b: string): number {
  return compareItem(cachedParse(a), cachedParse(b));
}

const TIMESTAMPED = /^(.*)-(\d{8}\.\d{6})-(\d+)$/;

/**
 * The order of component versions (cleanup's retain N): ComparableVersion, except that a
 * timestamped snapshot build ranks as its `-SNAPSHOT` base version — before the release it leads
 * to, not after it as ComparableVersion puts the bare numbers — and builds of one base version
 * by timestamp, then build number.
 */
export function compareComponentVersions(a: string, b: string): number {
  const x = TIMESTAMPED.exec(a);
  const y = TIMESTAMPED.exec(b);
  if (!x && !y) return compareVersions(a, b);
  const base = compareVersions(x ? `${x[1]}-SNAPSHOT` : a, y ? `${y[1]}-SNAPSHOT` : b);
  if (base !== 0) return base;
  if (!x || !y) return x ? 1 : -1;
  return compareVersions(`${x[2]}-${x[3]}`, `${y[2]}-${y[3]}`);
}

/** The canonical form Maven compares (ComparableVersion.getCanonical), for tests and debugging. */
export function canonical(version: string): string {
  const render = (item: Item): string => {
    if (item.kind === 'int') return item.digits === '' ? '0' : item.digits;
    if (item.kind === 'string') return item.value;
    let out = '';
    for (const x of item.items) {
      if (out.length > 0) out += x.kind === 'list' ? '-' : '.';
      out += render(x);
    }
    return out;
  };
  return render(parseVersion(version));
}

/** A snapshot version: `1.0-SNAPSHOT` or its timestamped form `1.0-20261201.120000-3`. */
export function isSnapshot(version: string): boolean {
  return version.endsWith('-SNAPSHOT') || /-\d{8}\.\d{6}-\d+$/.test(version);
}

/** The highest of `versions` in Maven's order, or null. */
export function highest(versions: Iterable<string>): string | null {
  let best: string | null = null;
  for (const v of versions) if (best === null || compareVersions(v, best) > 0) best = v;
  return best;
}
