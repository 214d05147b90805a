/**
 * rpm's version comparison (`rpmio/rpmvercmp.c`, with `~` sorting before anything and `^`
 * after the base version but before any further segment), and EVR ordering on top of it.
 */
import { splitEvr } from './rpm-package.js';

const isAlnum = (c: string | undefined) => c !== undefined && /[A-Za-z0-9]/.test(c);
const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isAlpha = (c: string | undefined) => c !== undefined && /[A-Za-z]/.test(c);

/** -1, 0 or 1 as rpm orders two version (or release) strings. */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++;
    // A tilde sorts before everything, even the end of the string.
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    // A caret sorts after the end of the string but before any other segment.
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (!(i < a.length && j < b.length)) break;
    let p = i;
    let q = j;
    const numeric = isDigit(a[p]);
    if (numeric) {
      while (isDigit(a[p])) p++;
      while (isDigit(b[q])) q++;
    } else {
      while (isAlpha(a[p])) p++;
      while (isAlpha(b[q])) q++;
    }
    let s1 = a.slice(i, p);
    let s2 = b.slice(j, q);
    // b's segment is of the other kind: a numeric segment is newer than an alphabetic one.
    if (s2 === '') return numeric ? 1 : -1;
    if (numeric) {
      s1 = s1.replace(/^0+/, '');
      s2 = s2.replace(/^0+/, '');
      if (s1.length !== s2.length) return s1.length > s2.length ? 1 : -1;
    }
    if (s1 !== s2) return s1 < s2 ? -1 : 1;
    i = p;
    j = q;
  }
  if (i >= a.length && j >= b.length) return 0;
  // Whichever string has segments left is newer.
  return i >= a.length ? -1 : 1;
}

/** Orders `[epoch:]version[-release]` strings: epoch (missing = 0), then version, then release. */
export function compareEvr(a: string, b: string): number {
  const x = splitEvr(a);
  const y = splitEvr(b);
  const e = Number(x.epoch ?? 0) - Number(y.epoch ?? 0);
  if (e !== 0) return e < 0 ? -1 : 1;
  const v = rpmvercmp(x.ver, y.ver);
  if (v !== 0) return v;
  // A release missing on one side matches any release (rpm's rpmdsCompare).
  if (x.rel === undefined || y.rel === undefined) return 0;
  return rpmvercmp(x.rel, y.rel);
}
