import type Koa from 'koa';
import { badRequest } from '../errors.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** One query parameter as a string (the first when repeated); undefined when absent or empty. */
export function queryParam(ctx: Koa.Context, name: string): string | undefined {
  const v = ctx.query[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

export function requiredParam(ctx: Koa.Context, name: string): string {
  const v = queryParam(ctx, name);
  if (v === undefined) throw badRequest(`${name}: the query parameter is required`, { field: name });
  return v;
}

/**
 * Nexus paging: an opaque `continuationToken`, plus Stowage's page size (`limit`, alias
 * `pageSize`; Nexus itself has none). Sizes above the maximum are served at the maximum.
 */
export function pageParams(ctx: Koa.Context): { token: string | null; limit: number } {
  const token = queryParam(ctx, 'continuationToken') ?? null;
  const field = queryParam(ctx, 'limit') !== undefined ? 'limit' : 'pageSize';
  const raw = queryParam(ctx, field);
  if (raw === undefined) return { token, limit: DEFAULT_PAGE_SIZE };
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw badRequest(`${field}: must be a positive integer`, { field });
  return { token, limit: Math.min(Number(raw), MAX_PAGE_SIZE) };
}

/** Epoch milliseconds as the ISO timestamps Nexus sends; null stays null. */
export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
