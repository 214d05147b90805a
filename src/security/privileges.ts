import type { Db } from '../db/db.js';
import { isUniqueViolation, now } from '../db/db.js';
import { badRequest, conflict, notFound } from '../errors.js';
import {
  APPLICATION_ACTIONS,
  builtinPrivilege,
  builtinPrivileges,
  isListedBuiltin,
  normalizeAction,
  parseWildcard,
  PRIVILEGE_TYPES,
  REPOSITORY_ACTIONS,
  type Privilege,
  type PrivilegeSpec,
  type PrivilegeType,
} from './permissions.js';
import { stripFromJsonArrays } from './roles.js';
import type { SecurityStore } from './security-store.js';

/** What exists to grant on: formats compiled in and repositories configured. */
export interface RepositoryCatalog {
  formatNames(): readonly string[];
  repositoryList(): Promise<Array<{ name: string; format: string }>>;
}

/** A privilege as the REST API receives it (type from the path). */
export interface PrivilegeInput {
  name?: unknown;
  description?: unknown;
  actions?: unknown;
  domain?: unknown;
  format?: unknown;
  repository?: unknown;
  contentSelector?: unknown;
  pattern?: unknown;
}

/** Nexus's privilege name rule. */
const NAME = /^[a-zA-Z0-9-][a-zA-Z0-9_.-]{0,254}$/;

function field(name: string, message: string) {
  return badRequest(`${name}: ${message}`, { field: name });
}

function str(v: unknown, name: string, required = true): string {
  if (v === undefined || v === null || v === '') {
    if (required) throw field(name, 'is required');
    return '';
  }
  if (typeof v !== 'string') throw field(name, 'must be a string');
  return v;
}

/**
 * Custom privileges (rows) next to the built-ins understood by name. Built-ins cannot be
 * created, changed or deleted; deleting a custom privilege removes it from every role.
 */
export class Privileges {
  constructor(
    private readonly db: Db,
    private readonly store: SecurityStore,
    private readonly catalog: RepositoryCatalog,
  ) {}

  /** Built-ins for every existing repository and format, plus the custom ones, by name. */
  async list(): Promise<Privilege[]> {
    const repos = await this.catalog.repositoryList();
    const custom = [...(await this.store.snapshot()).privileges.values()];
    return [...builtinPrivileges(repos, this.catalog.formatNames()), ...custom].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async get(name: string): Promise<Privilege | undefined> {
    const custom = (await this.store.snapshot()).privileges.get(name);
    if (custom) return custom;
    const b = builtinPrivilege(name);
    if (!b || !isListedBuiltin(name, this.catalog.formatNames())) return undefined;
    if ((b.type === 'repository-view' || b.type === 'repository-admin') && b.repository !== '*') {
      const repo = (await this.catalog.repositoryList()).find((r) => r.name === b.repository);
      if (!repo || (b.format !== '*' && b.format !== repo.format)) return undefined;
    }
    return b;
  }

  async require(name: string): Promise<Privilege> {
    const p = await this.get(name);
    if (!p) throw notFound(`Privilege '${name}' not found`);
    return p;
  }

  private actions(v: unknown, allowed: readonly string[]): string[] {
    if (!Array.isArray(v) || v.length === 0 || v.some((a) => typeof a !== 'string')) throw field('actions', 'a non-empty list of actions is required');
    const out = [...new Set((v as string[]).map(normalizeAction))];
    const bad = out.filter((a) => a !== '*' && !allowed.includes(a));
    if (bad.length) throw field('actions', `unknown action ${bad.join(', ')} (allowed: ${[...allowed.map((a) => a.toUpperCase()), 'ALL'].join(', ')})`);
    return out.includes('*') ? ['*'] : out;
  }

  private async spec(type: string, body: PrivilegeInput): Promise<PrivilegeSpec> {
    switch (type as PrivilegeType) {
      case 'application': {
        const domain = str(body.domain, 'domain');
        if (!/^[a-z0-9][a-z0-9_.-]*$|^\*$/i.test(domain)) throw field('domain', `invalid domain '${domain}'`);
        return { type: 'application', domain, actions: this.actions(body.actions, APPLICATION_ACTIONS) };
      }
      case 'repository-view':
      case 'repository-admin':
      case 'repository-content-selector': {
        const format = str(body.format, 'format');
        const repository = str(body.repository, 'repository');
        const formats = this.catalog.formatNames();
        if (format !== '*' && !formats.includes(format)) throw field('format', `unknown format '${format}' (known: ${formats.join(', ')}, or *)`);
        if (repository !== '*') {
          const repo = (await this.catalog.repositoryList()).find((r) => r.name === repository);
          if (!repo) throw field('repository', `repository '${repository}' does not exist (or use *)`);
          if (format !== '*' && repo.format !== format) throw field('repository', `'${repository}' is a ${repo.format} repository, not ${format}`);
        }
        const actions = this.actions(body.actions, REPOSITORY_ACTIONS);
        if (type !== 'repository-content-selector') return { type: type as 'repository-view' | 'repository-admin', format, repository, actions };
        const contentSelector = str(body.contentSelector, 'contentSelector');
        if (!(await this.store.snapshot()).selectors.has(contentSelector)) throw field('contentSelector', `content selector '${contentSelector}' does not exist`);
        return { type: 'repository-content-selector', contentSelector, format, repository, actions };
      }
      case 'wildcard': {
        const pattern = str(body.pattern, 'pattern').trim();
        if (pattern.length > 1024 || !parseWildcard(pattern)) throw field('pattern', `invalid wildcard permission '${pattern}'`);
        return { type: 'wildcard', pattern };
      }
      default:
        throw field('type', `unknown privilege type '${type}' (known: ${PRIVILEGE_TYPES.join(', ')})`);
    }
  }

  private row(spec: PrivilegeSpec): string {
    const { type: _type, ...props } = spec;
    return JSON.stringify(props);
  }

  async create(type: string, body: PrivilegeInput): Promise<Privilege> {
    const name = str(body.name, 'name');
    if (!NAME.test(name)) throw field('name', 'only letters, digits, -, _ and . (not starting with _ or .)');
    if (builtinPrivilege(name) && (isListedBuiltin(name, this.catalog.formatNames()) || name.startsWith('nx-repository-'))) {
      throw field('name', `'${name}' is the name of a built-in privilege`);
    }
    const spec = await this.spec(type, body);
    try {
      await this.db('privileges').insert({
        name,
        type: spec.type,
        description: str(body.description, 'description', false),
        properties: this.row(spec),
        read_only: false,
        updated_at: now(),
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Privilege '${name}' already exists`);
      throw e;
    }
    this.store.invalidate();
    return this.require(name);
  }

  async update(type: string, name: string, body: PrivilegeInput): Promise<{ before: Privilege; after: Privilege }> {
    const before = await this.require(name);
    if (before.readOnly) throw field('name', `privilege '${name}' is built in and read-only`);
    if (before.type !== type) throw field('type', `privilege '${name}' is of type ${before.type}, not ${type}`);
    if (body.name !== undefined && body.name !== null && body.name !== name) throw field('name', `the body's name does not match the path's '${name}'`);
    const spec = await this.spec(type, body);
    await this.db('privileges')
      .where({ name })
      .update({ description: str(body.description, 'description', false), properties: this.row(spec), updated_at: now() });
    this.store.invalidate();
    return { before, after: await this.require(name) };
  }

  /** Deletes a custom privilege and, as Nexus does, removes it from every role naming it. */
  async delete(name: string): Promise<Privilege> {
    const before = await this.require(name);
    if (before.readOnly) throw field('name', `privilege '${name}' is built in and read-only`);
    await this.db.transaction(async (tx) => {
      await tx('privileges').where({ name }).delete();
      await stripFromJsonArrays(tx, 'roles', 'privileges', name, 'role_id');
    });
    this.store.invalidate();
    return before;
  }
}
