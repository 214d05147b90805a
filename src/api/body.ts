import type Koa from 'koa';
import { readSmall } from '../blob/blob-service.js';
import { AppError, badRequest } from '../errors.js';

/** Reads a JSON request body with a size cap; malformed JSON is a 400 that says so. */
export async function readJson(ctx: Koa.Context, maxBytes: number): Promise<unknown> {
  const type = ctx.get('Content-Type');
  if (type && !/json/i.test(type)) throw new AppError('UNSUPPORTED', `Expected application/json, got ${type}`);
  const buf = await readSmall(ctx.req, maxBytes);
  if (buf.length === 0) throw badRequest('body: a JSON body is required', { field: 'body' });
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw badRequest(`body: malformed JSON (${(e as Error).message})`, { field: 'body' });
  }
}
