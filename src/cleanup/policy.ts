/**
 * Cleanup policies in Nexus's REST shape (`CleanupPolicyXO`): what a body may hold, parsed into
 * the stored form with a 400 naming the first bad field, and the shape sent back.
 */
import { badRequest } from '../errors.js';
import type { FormatPlugin } from '../repository/format.js';

export type ReleaseType = 'RELEASES' | 'PRERELEASES';
export type SortBy = 'version' | 'date';

/** What a policy selects. Every criterion set must hold (AND); `retain` then protects the newest N of each component name. */
export interface Criteria {
  /** Days since the component's content was last stored (Nexus "component age"). */
  lastBlobUpdated?: number;
  /** Days since any of its assets was last downloaded; a never-downloaded asset counts from when it was stored. */
  lastDownloaded?: number;
  releaseType?: ReleaseType;
  /** Some asset path of the component matches (unanchored, as Nexus on SQL databases). */
  regex?: string;
  retain?: number;
  sortBy?: SortBy;
}

export interface Policy {
  id: number;
  name: string;
  /** A format name, or `*`. */
  format: string;
  notes: string;
  criteria: Criteria;
}

export const ALL_FORMATS = '*';
const NAME_RE = /^[A-Za-z0-9-][A-Za-z0-9._-]{0,254}$/;
const FIELDS = new Set([
  'name',
  'notes',
  'format',
  'criteriaLastBlobUpdated',
  'criteriaLastDownloaded',
  'criteriaReleaseType',
  'criteriaAssetRegex',
  'retain',
  'sortBy',
  // Sent back by clients that PUT what they read: ignored.
  'inUseCount',
]);
const MAX_DAYS = 100 * 365;

const bad = (field: string, why: string) => badRequest(`${field}: ${why}`, { field });

function days(body: Record<string, unknown>, field: string): number | undefined {
  const v = body[field];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_DAYS) throw bad(field, `expected a whole number of days from 1 to ${MAX_DAYS}, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * A policy body (create, or update of `current`) parsed into its stored form. `formats` are the
 * formats this server knows; a criterion a format cannot evaluate (a release type where nothing is
 * a prerelease, a version order the format has none of) is refused for that format.
 */
export function parsePolicy(body: unknown, formats: Map<string, FormatPlugin>, current?: Policy): Omit<Policy, 'id'> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('body', 'expected a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!FIELDS.has(k)) throw bad(k, 'unknown field');

  if (typeof b.name !== 'string' || b.name === '') throw bad('name', 'required');
  if (!NAME_RE.test(b.name)) throw bad('name', 'must use letters, digits, ".", "_" and "-" only (at most 255), and not start with "." or "_"');
  if (current && b.name !== current.name) throw bad('name', `a cleanup policy cannot be renamed ('${current.name}' → '${b.name}')`);

  if (typeof b.format !== 'string' || b.format === '') throw bad('format', `required: a format (${[...formats.keys()].join(', ')}) or "*" for all`);
  const format = b.format === 'all' ? ALL_FORMATS : b.format;
  const plugin = format === ALL_FORMATS ? undefined : formats.get(format);
  if (format !== ALL_FORMATS && !plugin) throw bad('format', `unknown format '${format}' (known: ${[...formats.keys()].join(', ')}, or "*")`);

  if (b.notes !== undefined && b.notes !== null && typeof b.notes !== 'string') throw bad('notes', 'expected a string');
  const notes = typeof b.notes === 'string' ? b.notes : '';
  if (notes.length > 4096) throw bad('notes', 'at most 4096 characters');

  const criteria: Criteria = {};
  const lastBlobUpdated = days(b, 'criteriaLastBlobUpdated');
  if (lastBlobUpdated !== undefined) criteria.lastBlobUpdated = lastBlobUpdated;
  const lastDownloaded = days(b, 'criteriaLastDownloaded');
  if (lastDownloaded !== undefined) criteria.lastDownloaded = lastDownloaded;

  const rt = b.criteriaReleaseType;
  if (rt !== undefined && rt !== null && rt !== '') {
    if (rt !== 'RELEASES' && rt !== 'PRERELEASES') throw bad('criteriaReleaseType', `expected RELEASES or PRERELEASES, got ${JSON.stringify(rt)}`);
    if (plugin && !plugin.isPrerelease) throw bad('criteriaReleaseType', `${format} has no prereleases`);
    criteria.releaseType = rt;
  }

  const re = b.criteriaAssetRegex;
  if (re !== undefined && re !== null && re !== '') {
    if (typeof re !== 'string') throw bad('criteriaAssetRegex', 'expected a regular expression as a string');
    if (re.length > 1024) throw bad('criteriaAssetRegex', 'at most 1024 characters');
    try {
      new RegExp(re, 'u');
    } catch (e) {
      throw bad('criteriaAssetRegex', `not a valid regular expression (${(e as Error).message})`);
    }
    criteria.regex = re;
  }

  const retain = b.retain;
  if (retain !== undefined && retain !== null && retain !== '' && retain !== 0) {
    if (typeof retain !== 'number' || !Number.isInteger(retain) || retain < 1 || retain > 1_000_000)
      throw bad('retain', `expected a whole number ≥ 1, got ${JSON.stringify(retain)}`);
    criteria.retain = retain;
  }

  const sortBy = b.sortBy;
  if (sortBy !== undefined && sortBy !== null && sortBy !== '') {
    if (sortBy !== 'version' && sortBy !== 'date') throw bad('sortBy', `expected version or date, got ${JSON.stringify(sortBy)}`);
    if (sortBy === 'version' && plugin && !plugin.compareVersions) throw bad('sortBy', `${format} has no version order; use date`);
    criteria.sortBy = sortBy;
  }
  if (criteria.sortBy && criteria.retain === undefined) throw bad('sortBy', 'only with retain');
  if (criteria.retain !== undefined && !criteria.sortBy) criteria.sortBy = plugin && !plugin.compareVersions ? 'date' : 'version';

  return { name: b.name, format, notes, criteria };
}

/** Nexus CleanupPolicyXO. */
export function policyXO(p: Policy, inUseCount: number) {
  const c = p.criteria;
  return {
    name: p.name,
    notes: p.notes,
    format: p.format,
    criteriaLastBlobUpdated: c.lastBlobUpdated ?? null,
    criteriaLastDownloaded: c.lastDownloaded ?? null,
    criteriaReleaseType: c.releaseType ?? null,
    criteriaAssetRegex: c.regex ?? null,
    retain: c.retain ?? null,
    sortBy: c.retain !== undefined ? (c.sortBy ?? 'version') : null,
    inUseCount,
  };
}

/** Whether the policy selects anything at all: a policy without criteria and without `retain` does nothing (as in Nexus). */
export function selectsAnything(c: Criteria): boolean {
  return c.lastBlobUpdated !== undefined || c.lastDownloaded !== undefined || c.releaseType !== undefined || c.regex !== undefined || c.retain !== undefined;
}

/** Whether `policy` may be used on a repository of `format`. */
export function appliesTo(policy: Policy, format: string): boolean {
  return policy.format === ALL_FORMATS || policy.format === format;
}
