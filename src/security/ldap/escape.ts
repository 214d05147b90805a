/**
 * Everything that puts user input into LDAP syntax, and the one reader of DNs: pure functions,
 * unit-tested beside the realm. A user id typed into a login form must never change the shape of
 * a search filter or a DN.
 */

/**
 * RFC 4515 assertion-value escaping: `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`,
 * `\5c`, `\00`. Non-ASCII characters stay as they are (UTF-8 is legal in a filter string, and
 * ldapts decodes `\XX` escapes byte by byte as Latin-1, so hex-escaping them would corrupt them).
 */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => '\\' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

/**
 * RFC 4514 attribute-value escaping for building a DN: `, + " \ < > ; =` get a backslash, as do a
 * leading space or `#` and a trailing space; NUL becomes `\00`.
 */
export function escapeDnValue(value: string): string {
  const chars = [...value];
  return chars
    .map((c, i) => {
      if (c === '\0') return '\\00';
      if (',+"\\<>;='.includes(c)) return '\\' + c;
      if (i === 0 && (c === ' ' || c === '#')) return '\\' + c;
      if (i === chars.length - 1 && c === ' ') return '\\ ';
      return c;
    })
    .join('');
}

/** One attribute type and value of a DN, value unescaped. */
export interface Ava {
  type: string;
  value: string;
}

/**
 * Splits a DN (RFC 4514 string form) into RDNs, each a list of type/value pairs (several for a
 * multi-valued RDN joined by `+`). Values are unescaped: `\,` → `,`, `\2C` → `,`, UTF-8 hex pairs
 * decoded. Returns null when the string is not a DN. An empty string is the empty DN (no RDNs).
 */
export function parseDn(dn: string): Ava[][] | null {
  const rdns: Ava[][] = [];
  if (dn.trim() === '') return rdns;
  let i = 0;
  let rdn: Ava[] = [];
  while (i <= dn.length) {
    // attribute type
    while (dn[i] === ' ') i++;
    const typeStart = i;
    while (i < dn.length && dn[i] !== '=' && dn[i] !== ',' && dn[i] !== '+') i++;
    const type = dn.slice(typeStart, i).trim();
    if (dn[i] !== '=' || !/^([A-Za-z][A-Za-z0-9-]*|\d+(\.\d+)*)$/.test(type)) return null;
    i++;
    // attribute value
    while (dn[i] === ' ') i++;
    const bytes: number[] = [];
    const push = (s: string) => bytes.push(...Buffer.from(s, 'utf8'));
    let trailingSpaces = 0;
    if (dn[i] === '#') {
      // BER-encoded value: kept in its hex form (never used for group names in practice).
      const start = i;
      i++;
      while (i < dn.length && /[0-9A-Fa-f]/.test(dn[i])) i++;
      push(dn.slice(start, i));
      while (dn[i] === ' ') i++;
    } else {
      while (i < dn.length && dn[i] !== ',' && dn[i] !== '+' && dn[i] !== ';') {
        const c = dn[i];
        if (c === '\\') {
          const h = dn.slice(i + 1, i + 3);
          if (/^[0-9A-Fa-f]{2}$/.test(h)) {
            bytes.push(parseInt(h, 16));
            i += 3;
          } else if (i + 1 < dn.length) {
            push(dn[i + 1]);
            i += 2;
          } else {
            return null;
          }
          trailingSpaces = 0;
          continue;
        }
        if (c === '"' || c === '<' || c === '>') return null;
        push(c);
        trailingSpaces = c === ' ' ? trailingSpaces + 1 : 0;
        i++;
      }
    }
    // Unescaped trailing spaces are not part of the value.
    const valueBytes = trailingSpaces ? bytes.slice(0, bytes.length - trailingSpaces) : bytes;
    const value = Buffer.from(valueBytes).toString('utf8');
    rdn.push({ type, value });
    if (i >= dn.length) {
      rdns.push(rdn);
      break;
    }
    if (dn[i] === '+') {
      i++;
      continue;
    }
    // ',' or ';' ends the RDN
    rdns.push(rdn);
    rdn = [];
    i++;
    if (i >= dn.length) return null; // trailing separator
  }
  return rdns;
}

export function isDn(dn: string): boolean {
  return parseDn(dn) !== null;
}

/**
 * The group id Nexus derives from a group DN (dynamic groups, `memberOf` values): the value of the
 * first RDN, e.g. `cn=devs,ou=groups,dc=example,dc=com` → `devs`. Null for something that is not
 * a DN; a value that is not a DN is returned as is by callers that accept plain names.
 */
export function firstRdnValue(dn: string): string | null {
  const rdns = parseDn(dn);
  if (!rdns || rdns.length === 0) return null;
  return rdns[0][0].value;
}

/**
 * The value a static group's member attribute holds for a user, from Nexus's `groupMemberFormat`:
 * `${dn}` is the user's DN as the directory returned it; `${username}` is the user id, escaped as
 * a DN value when the template is a DN (`uid=${username},ou=people,…`) and as is otherwise
 * (`memberUid` holds bare ids).
 */
export function formatMember(template: string, userId: string, userDn: string): string {
  const isDnTemplate = template.replace(/\$\{(username|dn)\}/g, '').includes('=');
  return template.replace(/\$\{(username|dn)\}/g, (_m, k: string) => (k === 'dn' ? userDn : isDnTemplate ? escapeDnValue(userId) : userId));
}

/** An LDAP attribute description: a name (with options) or an OID; nothing that could break a filter. */
export function isAttributeName(s: string): boolean {
  return /^([A-Za-z][A-Za-z0-9-]*|\d+(\.\d+)+)(;[A-Za-z0-9-]+)*$/.test(s);
}

/** Joins a relative DN (userBaseDn, groupBaseDn) to the search base, as Nexus does. */
export function underBase(relative: string, searchBase: string): string {
  const r = relative.trim();
  if (!r) return searchBase;
  if (!searchBase.trim()) return r;
  return `${r},${searchBase}`;
}
