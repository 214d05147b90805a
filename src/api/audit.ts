import type Koa from 'koa';
import { z } from 'zod';
import type { Stowage } from '../stowage.js';
import { badRequest } from '../errors.js';
import type { AuditRow } from '../security/audit.js';
import { iso, pageParams, queryParam } from './params.js';
import { route, type ApiRoute } from './route.js';
import { PageAuditEventXO, badRequest as badRequestXO, ok, paging } from './schemas.js';

export const AUDIT_READ_PRIVILEGE = 'nx-audit-read';

/** Nexus AuditDataXO fields, plus the record's id and the caller's address. */
function auditXO(r: AuditRow) {
  return {
    id: String(r.id),
    timestamp: iso(r.timestamp),
    domain: r.domain,
    type: r.type,
    context: r.context,
    initiator: r.initiator,
    remoteAddress: r.remoteAddress,
    attributes: r.attributes,
  };
}

/** Opaque to clients: the id of the last record of the page. */
function encodeToken(id: number): string {
  return Buffer.from(`audit:${id}`).toString('base64url');
}

function decodeToken(token: string): number {
  const m = /^audit:(\d{1,18})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (!m) throw badRequest('continuationToken: not a token this endpoint issued', { field: 'continuationToken' });
  return Number(m[1]);
}

function instant(ctx: Koa.Context, name: string): number | undefined {
  const v = queryParam(ctx, name);
  if (v === undefined) return undefined;
  const t = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw badRequest(`${name}: expected an ISO 8601 date or date-time`, { field: name });
  return t;
}

/**
 * `GET /audit` (a Stowage extension; Nexus shows its audit log only in the UI): the audit log,
 * oldest first, filtered by domain, type, initiator and context (exact) and by time (`since`
 * inclusive, `until` exclusive, ISO 8601), paged with `continuationToken` and `limit`.
 */
export function auditRoutes(app: Stowage): ApiRoute[] {
  return [
    route({
      method: 'GET',
      path: '/audit',
      operationId: 'getAuditEvents',
      tags: ['Audit'],
      summary: 'Audit events (configuration and security changes, content deletions), oldest first',
      access: { privilege: AUDIT_READ_PRIVILEGE },
      query: z.object({
        domain: z.string().optional().describe('e.g. security.user, repository.repository, repository.asset'),
        type: z.string().optional().describe('e.g. created, updated, deleted'),
        initiator: z.string().optional().describe('User id'),
        context: z.string().optional().describe('What the event is about (exact)'),
        since: z.string().optional().describe('ISO date-time, inclusive'),
        until: z.string().optional().describe('ISO date-time, exclusive'),
        ...paging,
      }),
      responses: { 200: ok(PageAuditEventXO), 400: badRequestXO },
      handler: async (ctx) => {
        const { token, limit } = pageParams(ctx);
        const filter = {
          domain: queryParam(ctx, 'domain'),
          type: queryParam(ctx, 'type'),
          initiator: queryParam(ctx, 'initiator'),
          context: queryParam(ctx, 'context'),
          since: instant(ctx, 'since'),
          until: instant(ctx, 'until'),
        };
        const rows = await app.audit.list(filter, token ? decodeToken(token) : 0, limit + 1);
        const page = rows.slice(0, limit);
        ctx.body = { items: page.map(auditXO), continuationToken: rows.length > limit ? encodeToken(page[page.length - 1].id) : null };
      },
    }),
  ];
}
