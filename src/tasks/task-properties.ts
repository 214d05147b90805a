import { badRequest } from '../errors.js';
import type { Stowage } from '../stowage.js';

/** A setting of a task type, as `GET /tasks/types` lists it and create/update validate it. */
export interface TaskProperty {
  id: string;
  label: string;
  /** `repository` and `blobstore` name an existing repository or blob store. */
  type: 'string' | 'number' | 'boolean' | 'repository' | 'blobstore';
  required?: boolean;
  default?: string | number | boolean;
  help?: string;
  /** number: the smallest value allowed. */
  min?: number;
}

const field = (id: string) => `properties.${id}`;
const bad = (id: string, message: string) => badRequest(`${field(id)}: ${message}`, { field: field(id) });

/**
 * Checks and types the `properties` of a create or update body against a task type's
 * descriptors. Nexus clients send every value as a string ("24", "true") and "" for unset; both
 * are accepted. Unknown keys are refused, so a misspelt setting is not silently ignored.
 */
export async function validateProperties(app: Stowage, descriptors: TaskProperty[], raw: unknown): Promise<Record<string, unknown>> {
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) throw badRequest('properties: expected an object', { field: 'properties' });
  const input = (raw ?? {}) as Record<string, unknown>;
  const known = new Map(descriptors.map((d) => [d.id, d]));
  for (const k of Object.keys(input)) if (!known.has(k)) throw bad(k, `not a property of this task type (known: ${[...known.keys()].join(', ') || 'none'})`);
  const out: Record<string, unknown> = {};
  for (const d of descriptors) {
    const v = input[d.id];
    if (v === undefined || v === null || v === '') {
      if (d.required) throw bad(d.id, 'required');
      continue;
    }
    out[d.id] = await typed(app, d, v);
  }
  return out;
}

async function typed(app: Stowage, d: TaskProperty, v: unknown): Promise<unknown> {
  switch (d.type) {
    case 'number': {
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
      if (!Number.isFinite(n)) throw bad(d.id, `expected a number, got ${JSON.stringify(v)}`);
      if (d.min !== undefined && n < d.min) throw bad(d.id, `must be at least ${d.min}, got ${n}`);
      return n;
    }
    case 'boolean':
      if (v === true || v === 'true') return true;
      if (v === false || v === 'false') return false;
      throw bad(d.id, `expected true or false, got ${JSON.stringify(v)}`);
    case 'repository':
      if (typeof v !== 'string') throw bad(d.id, `expected a repository name, got ${JSON.stringify(v)}`);
      if (!(await app.repositories.find(v))) throw bad(d.id, `no repository '${v}'`);
      return v;
    case 'blobstore':
      if (typeof v !== 'string') throw bad(d.id, `expected a blob store name, got ${JSON.stringify(v)}`);
      try {
        await app.blobStores.require(v);
      } catch {
        throw bad(d.id, `no blob store '${v}'`);
      }
      return v;
    default:
      if (typeof v !== 'string') throw bad(d.id, `expected a string, got ${JSON.stringify(v)}`);
      return v;
  }
}
