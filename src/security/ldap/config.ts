import type * as Ldapts from 'ldapts';
import { badRequest } from '../../errors.js';
import { lazyRequire } from '../../lazy-require.js';
import { isAttributeName, isDn } from './escape.js';

/**
 * One LDAP server's configuration, with Nexus's LdapServerXO field names so Nexus automation
 * (scripts, Terraform) carries over: connection, user mapping, group mapping.
 */
export interface LdapServerConfig {
  name: string;
  protocol: 'ldap' | 'ldaps';
  /** Stored and returned; Stowage verifies ldaps certificates against Node's CA list (plus NODE_EXTRA_CA_CERTS). */
  useTrustStore: boolean;
  host: string;
  port: number;
  searchBase: string;
  authScheme: 'NONE' | 'SIMPLE';
  authRealm: string;
  authUsername: string;
  /** Plain only in memory while in use; encrypted at rest; never returned by the API. */
  authPassword: string;
  connectionTimeoutSeconds: number;
  connectionRetryDelaySeconds: number;
  maxIncidentsCount: number;
  userBaseDn: string;
  userSubtree: boolean;
  userObjectClass: string;
  userLdapFilter: string;
  userIdAttribute: string;
  userRealNameAttribute: string;
  userEmailAddressAttribute: string;
  /** Blank: check passwords by binding as the user; else compare against this attribute. */
  userPasswordAttribute: string;
  ldapGroupsAsRoles: boolean;
  groupType: 'static' | 'dynamic';
  groupBaseDn: string;
  groupSubtree: boolean;
  groupObjectClass: string;
  groupIdAttribute: string;
  groupMemberAttribute: string;
  /** `${username}` or `${dn}`, possibly inside a DN template (`uid=${username},ou=people,…`). */
  groupMemberFormat: string;
  userMemberOfAttribute: string;
}

const DEFAULTS: Omit<LdapServerConfig, 'name' | 'host' | 'searchBase' | 'port'> = {
  protocol: 'ldap',
  useTrustStore: false,
  authScheme: 'NONE',
  authRealm: '',
  authUsername: '',
  authPassword: '',
  connectionTimeoutSeconds: 30,
  connectionRetryDelaySeconds: 300,
  maxIncidentsCount: 3,
  userBaseDn: '',
  userSubtree: false,
  userObjectClass: 'inetOrgPerson',
  userLdapFilter: '',
  userIdAttribute: 'uid',
  userRealNameAttribute: 'cn',
  userEmailAddressAttribute: 'mail',
  userPasswordAttribute: '',
  ldapGroupsAsRoles: true,
  groupType: 'static',
  groupBaseDn: '',
  groupSubtree: false,
  groupObjectClass: 'groupOfNames',
  groupIdAttribute: 'cn',
  groupMemberAttribute: 'member',
  groupMemberFormat: '${dn}',
  userMemberOfAttribute: 'memberOf',
};

const fail = (field: string, message: string) => badRequest(`${field}: ${message}`, { field });

type Body = Record<string, unknown>;

function str(b: Body, field: keyof LdapServerConfig, fallback: string, opts: { required?: boolean; max?: number } = {}): string {
  const v = b[field];
  if (v === undefined || v === null || v === '') {
    if (opts.required) throw fail(field, 'is required');
    return fallback;
  }
  if (typeof v !== 'string') throw fail(field, 'must be a string');
  if (v.length > (opts.max ?? 1024)) throw fail(field, `must be at most ${opts.max ?? 1024} characters`);
  if (/[\0\r\n]/.test(v)) throw fail(field, 'must not contain control characters');
  return v.trim();
}

function bool(b: Body, field: keyof LdapServerConfig, fallback: boolean): boolean {
  const v = b[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw fail(field, 'must be true or false');
  return v;
}

function int(b: Body, field: keyof LdapServerConfig, fallback: number, min: number, max: number): number {
  const v = b[field];
  if (v === undefined || v === null || v === '') return fallback;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw fail(field, `must be an integer from ${min} to ${max}`);
  return n;
}

function oneOf<T extends string>(b: Body, field: keyof LdapServerConfig, fallback: T, values: readonly T[], canonical: (s: string) => string): T {
  const v = b[field];
  if (v === undefined || v === null || v === '') return fallback;
  if (typeof v !== 'string') throw fail(field, `must be one of ${values.join(', ')}`);
  const c = canonical(v.trim().replace(/-/g, '_'));
  const hit = values.find((x) => x === c);
  if (hit) return hit;
  if (field === 'authScheme' && (c === 'DIGEST_MD5' || c === 'CRAM_MD5')) throw fail(field, `${c} is not supported; use SIMPLE (over ldaps) or NONE`);
  throw fail(field, `must be one of ${values.join(', ')}`);
}

function attribute(b: Body, field: keyof LdapServerConfig, fallback: string, required = false): string {
  const v = str(b, field, fallback, { required, max: 255 });
  if (v && !isAttributeName(v)) throw fail(field, `'${v}' is not an LDAP attribute name`);
  return v;
}

function dn(b: Body, field: keyof LdapServerConfig, fallback: string, required = false): string {
  const v = str(b, field, fallback, { required });
  if (v && !isDn(v)) throw fail(field, `'${v}' is not a distinguished name`);
  return v;
}

/** Validates and completes a server configuration from a Nexus-shaped body. `stored` supplies the password a body leaves out. */
export function parseServerConfig(body: unknown, stored?: LdapServerConfig): LdapServerConfig {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw fail('body', 'must be a JSON object');
  const b = body as Body;
  const name = str(b, 'name', '', { required: true, max: 255 });
  if (!/^[^\s/\\?#%][^/\\?#%]*$/.test(name) || /\s$/.test(name)) throw fail('name', 'must not contain /, \\, ?, # or % nor start or end with a space');
  const protocol = oneOf(b, 'protocol', DEFAULTS.protocol, ['ldap', 'ldaps'] as const, (s) => s.toLowerCase());
  const host = str(b, 'host', '', { required: true, max: 255 });
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+|[0-9A-Fa-f:]+)$/.test(host)) throw fail('host', `'${host}' is not a host name or address`);
  const port = int(b, 'port', protocol === 'ldaps' ? 636 : 389, 1, 65535);
  const authScheme = oneOf(b, 'authScheme', DEFAULTS.authScheme, ['NONE', 'SIMPLE'] as const, (s) => s.toUpperCase());
  const authUsername = str(b, 'authUsername', '');
  let authPassword = typeof b.authPassword === 'string' && b.authPassword !== '' ? b.authPassword : '';
  if (b.authPassword !== undefined && b.authPassword !== null && typeof b.authPassword !== 'string') throw fail('authPassword', 'must be a string');
  // A body without the write-only password keeps the stored one, but only for the same account
  // on the same server: pointing the configuration elsewhere must not send the secret there.
  const sameTarget =
    !!stored &&
    stored.authScheme === 'SIMPLE' &&
    stored.authUsername === authUsername &&
    stored.protocol === protocol &&
    stored.host.toLowerCase() === host.toLowerCase() &&
    stored.port === port;
  if (!authPassword && sameTarget) authPassword = stored.authPassword;
  if (authScheme === 'SIMPLE') {
    if (!authUsername) throw fail('authUsername', 'is required with authScheme SIMPLE');
    if (!authPassword)
      throw fail('authPassword', stored?.authPassword ? 'is required again when host, port, protocol or authUsername change' : 'is required with authScheme SIMPLE');
  }
  const cfg: LdapServerConfig = {
    name,
    protocol,
    useTrustStore: bool(b, 'useTrustStore', DEFAULTS.useTrustStore),
    host,
    port,
    searchBase: dn(b, 'searchBase', '', true),
    authScheme,
    authRealm: str(b, 'authRealm', ''),
    authUsername: authScheme === 'SIMPLE' ? authUsername : '',
    authPassword: authScheme === 'SIMPLE' ? authPassword : '',
    connectionTimeoutSeconds: int(b, 'connectionTimeoutSeconds', DEFAULTS.connectionTimeoutSeconds, 1, 3600),
    connectionRetryDelaySeconds: int(b, 'connectionRetryDelaySeconds', DEFAULTS.connectionRetryDelaySeconds, 0, 86400),
    maxIncidentsCount: int(b, 'maxIncidentsCount', DEFAULTS.maxIncidentsCount, 0, 1000),
    userBaseDn: dn(b, 'userBaseDn', DEFAULTS.userBaseDn),
    userSubtree: bool(b, 'userSubtree', DEFAULTS.userSubtree),
    userObjectClass: attribute(b, 'userObjectClass', DEFAULTS.userObjectClass),
    userLdapFilter: str(b, 'userLdapFilter', DEFAULTS.userLdapFilter),
    userIdAttribute: attribute(b, 'userIdAttribute', DEFAULTS.userIdAttribute),
    userRealNameAttribute: attribute(b, 'userRealNameAttribute', DEFAULTS.userRealNameAttribute),
    userEmailAddressAttribute: attribute(b, 'userEmailAddressAttribute', DEFAULTS.userEmailAddressAttribute),
    userPasswordAttribute: attribute(b, 'userPasswordAttribute', DEFAULTS.userPasswordAttribute),
    ldapGroupsAsRoles: bool(b, 'ldapGroupsAsRoles', DEFAULTS.ldapGroupsAsRoles),
    groupType: oneOf(b, 'groupType', DEFAULTS.groupType, ['static', 'dynamic'] as const, (s) => s.toLowerCase()),
    groupBaseDn: dn(b, 'groupBaseDn', DEFAULTS.groupBaseDn),
    groupSubtree: bool(b, 'groupSubtree', DEFAULTS.groupSubtree),
    groupObjectClass: attribute(b, 'groupObjectClass', DEFAULTS.groupObjectClass),
    groupIdAttribute: attribute(b, 'groupIdAttribute', DEFAULTS.groupIdAttribute),
    groupMemberAttribute: attribute(b, 'groupMemberAttribute', DEFAULTS.groupMemberAttribute),
    groupMemberFormat: str(b, 'groupMemberFormat', DEFAULTS.groupMemberFormat),
    userMemberOfAttribute: attribute(b, 'userMemberOfAttribute', DEFAULTS.userMemberOfAttribute),
  };
  if (cfg.userLdapFilter) cfg.userLdapFilter = normaliseFilter(cfg.userLdapFilter);
  if (!/\$\{(username|dn)\}/.test(cfg.groupMemberFormat)) throw fail('groupMemberFormat', 'must contain ${username} or ${dn}');
  return cfg;
}

/** ldapts is loaded only once LDAP is configured or used. */
export const ldapts = lazyRequire<typeof Ldapts>('ldapts');

/** Nexus accepts `uid=x*` as well as `(uid=x*)`; checked with the same parser the client uses. */
function normaliseFilter(filter: string): string {
  const f = filter.startsWith('(') ? filter : `(${filter})`;
  // One balanced filter (ldapts forgives a missing ')', which would reshape the filter it is joined into).
  let depth = 0;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '\\') i++;
    else if (f[i] === '(') depth++;
    else if (f[i] === ')' && --depth === 0 && i !== f.length - 1) depth = -1;
    if (depth < 0) break;
  }
  if (depth !== 0) throw fail('userLdapFilter', 'not a valid LDAP filter (unbalanced parentheses)');
  try {
    ldapts().FilterParser.parseString(f);
  } catch (e) {
    throw fail('userLdapFilter', `not a valid LDAP filter (${(e as Error).message})`);
  }
  return f;
}

/** The LDAP URL a server is reached at (for messages and the read-only `url` field). */
export function serverUrl(cfg: Pick<LdapServerConfig, 'protocol' | 'host' | 'port'>): string {
  const host = cfg.host.includes(':') && !cfg.host.startsWith('[') ? `[${cfg.host}]` : cfg.host;
  return `${cfg.protocol}://${host}:${cfg.port}`;
}

/**
 * Nexus ReadLdapServerXo: every field but the password, plus `id` and `order` (1-based position).
 * The bind password is write-only, as in Nexus.
 */
export function ldapServerXO(id: number, order: number, cfg: LdapServerConfig): Record<string, unknown> {
  const { authPassword: _never, ...rest } = cfg;
  return { id: String(id), order, ...rest };
}

/** Fields safe to write in an audit record (no secrets), and which fields changed. */
export function auditAttributes(cfg: LdapServerConfig, before?: LdapServerConfig): Record<string, unknown> {
  const { authPassword: _never, ...rest } = cfg;
  const out: Record<string, unknown> = { url: serverUrl(cfg), searchBase: cfg.searchBase, authScheme: cfg.authScheme, authUsername: cfg.authUsername };
  if (before) {
    const changed = (Object.keys(rest) as Array<keyof LdapServerConfig>).filter((k) => rest[k as keyof typeof rest] !== before[k]);
    if (cfg.authPassword !== before.authPassword) changed.push('authPassword');
    out.changed = changed;
  }
  return out;
}
