import type { Db } from '../db/db.js';
import { isUniqueViolation, now } from '../db/db.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { CselError, compileCsel, type CompiledCsel } from './csel.js';
import type { SecurityStore, SelectorDef } from './security-store.js';

export interface SelectorInput {
  name?: unknown;
  description?: unknown;
  expression?: unknown;
}

const NAME = /^[a-zA-Z0-9-][a-zA-Z0-9_.-]{0,254}$/;

function field(name: string, message: string) {
  return badRequest(`${name}: ${message}`, { field: name });
}

/** Parses an expression for the API: a syntax error is a 400 on `expression` giving the position. */
export function compileExpression(v: unknown): CompiledCsel {
  if (typeof v !== 'string' || v.trim() === '') throw field('expression', 'is required');
  try {
    return compileCsel(v);
  } catch (e) {
    if (e instanceof CselError) throw badRequest(`expression: ${e.message}`, { field: 'expression', position: e.position });
    throw e;
  }
}

function description(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw field('description', 'must be a string');
  return v;
}

/** Content selectors (CSEL). They do nothing until a repository-content-selector privilege names one. */
export class ContentSelectors {
  constructor(
    private readonly db: Db,
    private readonly store: SecurityStore,
  ) {}

  async list(): Promise<SelectorDef[]> {
    return [...(await this.store.snapshot()).selectors.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async get(name: string): Promise<SelectorDef | undefined> {
    return (await this.store.snapshot()).selectors.get(name);
  }

  async require(name: string): Promise<SelectorDef> {
    const s = await this.get(name);
    if (!s) throw notFound(`Content selector '${name}' not found`);
    return s;
  }

  async create(body: SelectorInput): Promise<SelectorDef> {
    if (typeof body.name !== 'string' || !NAME.test(body.name)) throw field('name', 'is required: letters, digits, -, _ and . (not starting with _ or .)');
    const name = body.name;
    const expression = compileExpression(body.expression).expression;
    try {
      await this.db('content_selectors').insert({ name, type: 'csel', description: description(body.description), expression, updated_at: now() });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Content selector '${name}' already exists`);
      throw e;
    }
    this.store.invalidate();
    return this.require(name);
  }

  async update(name: string, body: SelectorInput): Promise<{ before: SelectorDef; after: SelectorDef }> {
    const before = await this.require(name);
    if (body.name !== undefined && body.name !== null && body.name !== name) throw field('name', `the body's name does not match the path's '${name}'`);
    const expression = compileExpression(body.expression).expression;
    await this.db('content_selectors')
      .where({ name })
      .update({ description: description(body.description), expression, updated_at: now() });
    this.store.invalidate();
    return { before, after: await this.require(name) };
  }

  /** Refused while a privilege uses the selector (Nexus does the same). */
  async delete(name: string): Promise<SelectorDef> {
    const before = await this.require(name);
    const users = [...(await this.store.snapshot()).privileges.values()].filter((p) => p.type === 'repository-content-selector' && p.contentSelector === name);
    if (users.length) throw conflict(`Content selector '${name}' is used by privilege ${users.map((p) => `'${p.name}'`).join(', ')}`);
    await this.db('content_selectors').where({ name }).delete();
    this.store.invalidate();
    return before;
  }
}
