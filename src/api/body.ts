import type Koa from 'koa';
import { readSmall } from '../blob/blob-service.js';
import { AppError, badRequest } from '../errors.js';

/** Keys that reach an object's prototype when client JSON is used as a map or merged. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Reads a JSON request body with a size cap; malformed JSON is a 400 that says so, and so is a
 * `__proto__`, `constructor` or `prototype` key at any depth (see parseJson).
 */
export async function readJson(ctx: Koa.Context, maxBytes: number): Promise<unknown> {
  const type = ctx.get('Content-Type');
  if (type && !/json/i.test(type)) throw new AppError('UNSUPPORTED', `Expected application/json, got ${type}`);
  const buf = await readSmall(ctx.req, maxBytes);
  if (buf.length === 0) throw badRequest('body: a JSON body is required', { field: 'body' });
  return parseJson(buf.toString('utf8'));
}

/**
 * Client JSON, refused with a 400 naming the key when it holds `__proto__`, `constructor` or
 * `prototype` at any depth: no code that uses the body as a map, merges or spreads it can then
 * reach a prototype, and nothing is stored.
 */
export function parseJson(text: string): unknown {
  const forbidden = new Set<string>();
  let parsed: unknown;
  try {
    // The reviver sees every key at every depth (JSON.parse makes `__proto__` an own property,
    // so it is harmless until some code copies it with assignment semantics).
    parsed = JSON.parse(text, (key, value: unknown) => {
      if (FORBIDDEN_KEYS.has(key)) forbidden.add(key);
      return value;
    });
  } catch (e) {
    throw badRequest(`body: malformed JSON (${(e as Error).message})`, { field: 'body' });
  }
  if (forbidden.size > 0) {
    const keys = [...forbidden].map((k) => `'${k}'`);
    throw badRequest(`body: the key${keys.length > 1 ? 's' : ''} ${keys.join(', ')} ${keys.length > 1 ? 'are' : 'is'} not allowed`, { field: 'body' });
  }
  return parsed;
}
