/**
 * Nexus privileges and the permissions they grant, as pure functions (no database).
 *
 * A privilege grants a Shiro-style wildcard permission: `nexus:<domain>:<actions>` for
 * application privileges, `nexus:repository-view:<format>:<repo>:<actions>` for content,
 * `nexus:repository-admin:<format>:<repo>:<actions>` for repository configuration, any pattern
 * for wildcard privileges. Built-in privileges are not stored: their names say what they grant
 * (`nx-all`, `nx-<domain>-<action>`, `nx-repository-view-<format>-<repo>-<action>`, …).
 */

/** A wildcard permission: parts of alternatives; `*` in a part matches anything. */
export type Permission = string[][];

export const PRIVILEGE_TYPES = ['application', 'repository-view', 'repository-admin', 'repository-content-selector', 'wildcard'] as const;
export type PrivilegeType = (typeof PRIVILEGE_TYPES)[number];

/** Content and repository-configuration actions (Nexus "BREAD"). */
export const REPOSITORY_ACTIONS = ['browse', 'read', 'edit', 'add', 'delete'] as const;
/** Actions an application privilege may name. */
export const APPLICATION_ACTIONS = ['create', 'read', 'update', 'delete', 'browse', 'edit', 'add', 'run', 'start', 'stop', 'associate', 'disassociate'] as const;

export type PrivilegeSpec =
  | { type: 'application'; domain: string; actions: string[] }
  | { type: 'repository-view' | 'repository-admin'; format: string; repository: string; actions: string[] }
  | { type: 'repository-content-selector'; contentSelector: string; format: string; repository: string; actions: string[] }
  | { type: 'wildcard'; pattern: string };

export type Privilege = PrivilegeSpec & { name: string; description: string; readOnly: boolean };

/** Parses a Shiro wildcard pattern (`a:b,c:*`). Empty parts are refused (null). */
export function parseWildcard(pattern: string): Permission | null {
  const parts = pattern
    .trim()
    .split(':')
    .map((p) =>
      p
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    );
  if (parts.length === 0 || parts.some((p) => p.length === 0)) return null;
  return parts;
}

/**
 * Shiro's WildcardPermission.implies: every part of the granted permission covers the requested
 * part (or is `*`); a shorter grant covers everything below it; a longer one only if its extra
 * parts are `*`.
 */
export function implies(granted: Permission, requested: Permission): boolean {
  for (let i = 0; i < granted.length; i++) {
    const g = granted[i];
    if (i >= requested.length) {
      if (!g.includes('*')) return false;
      continue;
    }
    if (g.includes('*')) continue;
    if (!requested[i].every((r) => g.includes(r))) return false;
  }
  return true;
}

/** `READ`, `read`, `ALL`, `*` → `read`, `*`. */
export function normalizeAction(a: string): string {
  const l = a.trim().toLowerCase();
  return l === 'all' ? '*' : l;
}

/** The Nexus REST spelling: `READ`, `ALL`. */
export function actionXO(a: string): string {
  return a === '*' ? 'ALL' : a.toUpperCase();
}

/** The permission a privilege grants (content-selector privileges are evaluated apart: null). */
export function permissionOf(spec: PrivilegeSpec): Permission | null {
  switch (spec.type) {
    case 'application':
      return [['nexus'], [spec.domain], spec.actions];
    case 'repository-view':
    case 'repository-admin':
      return [['nexus'], [spec.type], [spec.format], [spec.repository], spec.actions];
    case 'wildcard':
      return parseWildcard(spec.pattern);
    case 'repository-content-selector':
      return null;
  }
}

// Built-in privileges ------------------------------------------------------------------------

const CRUD = ['create', 'read', 'update', 'delete'];

/**
 * Application privileges listed by GET /security/privileges, as `[domain, actions]`; each
 * action gives `nx-<domain>-<action>`, plus `nx-<domain>-all`. Names of this shape outside the
 * list still work when granted and checked (the name says what it means).
 */
export const APPLICATION_DOMAINS: Array<[string, string[], string]> = [
  ['apikey', [], 'API keys and user tokens of other users'],
  ['audit', ['read'], 'the audit log'],
  ['blobstores', CRUD, 'blob stores'],
  ['cleanup-policies', [...CRUD, 'run'], 'cleanup policies'],
  ['component', ['upload'], 'component upload'],
  ['healthcheck', ['read'], 'health checks'],
  ['ldap', CRUD, 'LDAP servers'],
  ['metrics', ['read'], 'metrics and system status'],
  ['privileges', CRUD, 'privileges'],
  ['repositories', CRUD, 'repositories'],
  ['roles', CRUD, 'roles'],
  ['search', ['read'], 'search'],
  ['selectors', CRUD, 'content selectors'],
  ['settings', ['read', 'update'], 'system settings (realms, anonymous access)'],
  ['tasks', [...CRUD, 'run', 'start', 'stop'], 'scheduled tasks'],
  ['users', CRUD, 'users'],
];

/** Built-ins that do not follow `nx-<domain>-<action>`. */
const SPECIAL: Record<string, { spec: PrivilegeSpec; description: string }> = {
  'nx-all': { spec: { type: 'wildcard', pattern: 'nexus:*' }, description: 'All permissions' },
  'nx-userschangepw': { spec: { type: 'application', domain: 'userschangepw', actions: ['create', 'read'] }, description: 'Change the password of users' },
};

// The repository part may be empty: a check made before the name is known (a create without one).
const REPO_PRIVILEGE = /^nx-repository-(view|admin)-([^-]+)-(.*)-([a-z]+|\*)$/;
const APP_PRIVILEGE = /^nx-([a-z0-9][a-z0-9-]*?)-([a-z]+|\*)$/;

function actionWord(a: string): string {
  return a === '*' ? 'All' : a[0].toUpperCase() + a.slice(1);
}

function repoDescription(kind: 'view' | 'admin', format: string, repo: string, action: string): string {
  const what = kind === 'view' ? 'Repository Views' : 'Repository Admin';
  const scope = repo === '*' ? (format === '*' ? 'all repositories' : `all '${format}'-format repositories`) : `'${repo}'`;
  return `${actionWord(action)} permission for ${scope} (${what})`;
}

/**
 * A built-in privilege by name, or null when the name is not one. Format and repository are not
 * checked against what exists: a grant on a repository still to be created works once it is.
 */
export function builtinPrivilege(name: string): Privilege | null {
  // Own properties only: a name such as `constructor` must not find Object.prototype's.
  const special = Object.hasOwn(SPECIAL, name) ? SPECIAL[name] : undefined;
  if (special) return { ...special.spec, name, description: special.description, readOnly: true };
  const repo = REPO_PRIVILEGE.exec(name);
  if (repo) {
    const [, kind, format, repository, action] = repo;
    if (action !== '*' && !(REPOSITORY_ACTIONS as readonly string[]).includes(action)) return null;
    return {
      type: `repository-${kind}` as 'repository-view' | 'repository-admin',
      format,
      repository,
      actions: [action],
      name,
      description: repoDescription(kind as 'view' | 'admin', format, repository, action),
      readOnly: true,
    };
  }
  if (name.startsWith('nx-repository-')) return null;
  const app = APP_PRIVILEGE.exec(name);
  if (app) {
    const [, domain, action] = app;
    const known = APPLICATION_DOMAINS.find(([d]) => d === domain);
    const action2 = normalizeAction(action);
    return {
      type: 'application',
      domain,
      actions: [action2],
      name,
      description: `${actionWord(action2)} permission for ${known?.[2] ?? domain}`,
      readOnly: true,
    };
  }
  return null;
}

/** True when the name is one of the listed built-ins or a repository built-in for a known format. */
export function isListedBuiltin(name: string, formats: readonly string[]): boolean {
  if (Object.hasOwn(SPECIAL, name)) return true;
  const p = builtinPrivilege(name);
  if (!p) return false;
  if (p.type === 'application') {
    const known = APPLICATION_DOMAINS.find(([d]) => d === p.domain);
    return !!known && (p.actions[0] === '*' || known[1].includes(p.actions[0]));
  }
  if (p.type === 'repository-view' || p.type === 'repository-admin') return p.format === '*' || formats.includes(p.format);
  return false;
}

/**
 * Every built-in privilege as Nexus lists them: nx-all, the application privileges, and view and
 * admin privileges for every repository, every format (`<format>-*`) and everything (`*-*`).
 */
export function builtinPrivileges(repositories: Array<{ name: string; format: string }>, formats: readonly string[]): Privilege[] {
  const out: Privilege[] = [];
  const add = (name: string) => {
    const p = builtinPrivilege(name);
    if (p) out.push(p);
  };
  for (const name of Object.keys(SPECIAL)) add(name);
  for (const [domain, actions] of APPLICATION_DOMAINS) {
    add(`nx-${domain}-all`);
    for (const a of actions) add(`nx-${domain}-${a}`);
  }
  const targets: Array<[string, string]> = [['*', '*'], ...formats.map((f): [string, string] => [f, '*']), ...repositories.map((r): [string, string] => [r.format, r.name])];
  for (const kind of ['view', 'admin']) {
    for (const [format, repo] of targets) {
      for (const a of [...REPOSITORY_ACTIONS, '*']) add(`nx-repository-${kind}-${format}-${repo}-${a}`);
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
