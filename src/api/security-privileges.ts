import type { Stowage } from '../stowage.js';
import { auditOrigin } from '../http/auth.js';
import { PRIVILEGE_TYPES } from '../security/permissions.js';
import { field, object, privilegeAudit, privilegeXO } from './security-xo.js';
import { route, type ApiRoute } from './route.js';
import { badRequest as badRequestXO, conflict, created, noContent, notFound as notFoundXO, ok, params, pathParam } from './schemas.js';
import { z } from 'zod';
import { ApiPrivilege, ApiPrivilegeRequest, PRIVILEGE_TYPE } from './security-schemas.js';

const DOMAIN = 'security.privilege';

function privilegeType(type: string): string {
  if (!(PRIVILEGE_TYPES as readonly string[]).includes(type)) throw field('type', `unknown privilege type '${type}' (known: ${PRIVILEGE_TYPES.join(', ')})`);
  return type;
}

/**
 * Privileges, Nexus-shaped: list (built-ins for every repository plus custom ones), get and
 * delete by name, create and update per type at `/security/privileges/{type}[/{name}]`.
 */
export function securityPrivilegeRoutes(app: Stowage): ApiRoute[] {
  const tags = ['Security management'];
  const privilegeName = pathParam('Privilege name');
  const privName = params({ privilegeName });
  const privType = PRIVILEGE_TYPE.describe('Privilege type');
  const privileges = app.security.privileges;

  return [
    route({
      method: 'GET',
      path: '/security/privileges',
      operationId: 'getPrivileges',
      tags,
      summary: 'List privileges: built-ins (for every repository and format) and custom ones',
      access: { privilege: 'nx-privileges-read' },
      responses: { 200: ok(z.array(ApiPrivilege)) },
      handler: async (ctx) => {
        ctx.body = (await privileges.list()).map(privilegeXO);
      },
    }),
    route({
      method: 'GET',
      path: '/security/privileges/:privilegeName',
      operationId: 'getPrivilege',
      tags,
      summary: 'A privilege',
      access: { privilege: 'nx-privileges-read' },
      params: privName,
      responses: { 200: ok(ApiPrivilege), 404: notFoundXO },
      handler: async (ctx) => {
        ctx.body = privilegeXO(await privileges.require(ctx.params.privilegeName));
      },
    }),
    route({
      method: 'DELETE',
      path: '/security/privileges/:privilegeName',
      operationId: 'deletePrivilege',
      tags,
      summary: 'Delete a custom privilege; it is removed from every role naming it',
      access: { privilege: 'nx-privileges-delete' },
      params: privName,
      responses: { 204: noContent, 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx) => {
        const before = await privileges.delete(ctx.params.privilegeName);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: before.name, attributes: { before: privilegeAudit(before) } });
        ctx.status = 204;
      },
    }),
    route({
      method: 'POST',
      path: '/security/privileges/:type',
      operationId: 'createPrivilege',
      tags,
      summary: 'Create a privilege of this type',
      access: { privilege: 'nx-privileges-create' },
      params: params({ type: privType }),
      body: { schema: ApiPrivilegeRequest },
      responses: { 201: created, 400: badRequestXO, 409: conflict },
      handler: async (ctx, input) => {
        const type = privilegeType(ctx.params.type);
        const created = await privileges.create(type, object(await input.body()));
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: created.name, attributes: { after: privilegeAudit(created) } });
        ctx.status = 201;
        ctx.set('Location', `${app.baseUrl(ctx)}/service/rest/v1/security/privileges/${encodeURIComponent(created.name)}`);
        ctx.body = '';
      },
    }),
    route({
      method: 'PUT',
      path: '/security/privileges/:type/:privilegeName',
      operationId: 'updatePrivilege',
      tags,
      summary: 'Replace a custom privilege of this type',
      access: { privilege: 'nx-privileges-update' },
      params: params({ type: privType, privilegeName }),
      body: { schema: ApiPrivilegeRequest },
      responses: { 204: noContent, 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx, input) => {
        const type = privilegeType(ctx.params.type);
        const { before, after } = await privileges.update(type, ctx.params.privilegeName, object(await input.body()));
        await app.audit.record(auditOrigin(ctx), {
          domain: DOMAIN,
          type: 'updated',
          context: after.name,
          attributes: { before: privilegeAudit(before), after: privilegeAudit(after) },
        });
        ctx.status = 204;
      },
    }),
  ];
}
