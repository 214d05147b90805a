/**
 * What the registry endpoints share about their request: the URL prefix clients address, the
 * pusher (repository, permission check, audit origin), query and name checks.
 */
import type Koa from 'koa';
import type { ContentRequest } from '../../src/repository/format.js';
import { ociError } from './errors.js';
import { isValidName } from './manifest.js';
import type { Pusher } from './changes.js';
import { addressedRepository } from './group.js';

/** URL prefix under which `<name>/…` is addressed by the client. */
export function base(req: ContentRequest): string {
  if (req.listener) return '/v2/';
  // A push through a group keeps addressing the group (its writable member stores it).
  const shown = addressedRepository(req).name;
  return req.rootRoute ? `/v2/${shown}/` : `/repository/${shown}/v2/`;
}

export function requireName(name: string): void {
  if (!isValidName(name)) throw ociError('BAD_REQUEST', 'NAME_INVALID', `Invalid repository name: ${name}`);
}

export function query(ctx: Koa.Context, key: string): string | undefined {
  return ctx.URL.searchParams.get(key) ?? undefined;
}

export function digestMismatch(expected: string, got: string) {
  return ociError('DIGEST_INVALID', 'DIGEST_INVALID', `Digest mismatch: expected ${expected}, got ${got}`);
}

/** The request as a pusher: its repository, permission check and audit origin. */
export function pusher(req: ContentRequest): Pusher {
  return { app: req.app, repo: req.repo, access: req.access, origin: { principal: req.principal, remoteAddress: req.ctx.ip } };
}
