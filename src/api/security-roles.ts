import type { Stowage } from '../stowage.js';
import { auditOrigin } from '../http/auth.js';
import { queryParam } from './params.js';
import { object, optString, roleXO, stringList } from './security-xo.js';
import { route, type ApiRoute } from './route.js';
import { badRequest as badRequestXO, conflict, noContent, notFound as notFoundXO, ok, params, pathParam } from './schemas.js';
import { z } from 'zod';
import { RoleXORequest, RoleXOResponse } from './security-schemas.js';

const DOMAIN = 'security.role';

/** Roles, Nexus-shaped (RoleXO): `/security/roles` list (optional `source`), get, create, update, delete. */
export function securityRoleRoutes(app: Stowage): ApiRoute[] {
  const tags = ['Security management'];
  const roleId = params({ id: pathParam('Role id') });
  const roles = app.security.roles;

  return [
    route({
      method: 'GET',
      path: '/security/roles',
      operationId: 'getRoles',
      tags,
      summary: 'List roles',
      access: { privilege: 'nx-roles-read' },
      query: z.object({ source: z.string().optional().describe('Only roles of this source (default)') }),
      responses: { 200: ok(z.array(RoleXOResponse)) },
      handler: async (ctx) => {
        const source = queryParam(ctx, 'source');
        // Stowage's roles are all local; external groups are named as roles, not listed.
        ctx.body = source && source !== 'default' ? [] : (await roles.list()).map(roleXO);
      },
    }),
    route({
      method: 'GET',
      path: '/security/roles/:id',
      operationId: 'getRole',
      tags,
      summary: 'A role',
      access: { privilege: 'nx-roles-read' },
      params: roleId,
      responses: { 200: ok(RoleXOResponse), 404: notFoundXO },
      handler: async (ctx) => {
        ctx.body = roleXO(await roles.require(ctx.params.id));
      },
    }),
    route({
      method: 'POST',
      path: '/security/roles',
      operationId: 'createRole',
      tags,
      summary: 'Create a role',
      access: { privilege: 'nx-roles-create' },
      body: { schema: RoleXORequest },
      responses: { 200: ok(RoleXOResponse), 400: badRequestXO, 409: conflict },
      handler: async (ctx, input) => {
        const body = object(await input.body());
        const created = await roles.create({
          id: optString(body, 'id') ?? '',
          name: optString(body, 'name'),
          description: optString(body, 'description'),
          privileges: stringList(body, 'privileges'),
          roles: stringList(body, 'roles'),
        });
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: created.id, attributes: { after: roleXO(created) } });
        ctx.body = roleXO(created);
      },
    }),
    route({
      method: 'PUT',
      path: '/security/roles/:id',
      operationId: 'updateRole',
      tags,
      summary: 'Replace a role (built-in roles are read-only)',
      access: { privilege: 'nx-roles-update' },
      params: roleId,
      body: { schema: RoleXORequest },
      responses: { 204: noContent, 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx, input) => {
        const body = object(await input.body());
        const { before, after } = await roles.update(ctx.params.id, {
          id: optString(body, 'id') ?? ctx.params.id,
          name: optString(body, 'name'),
          description: optString(body, 'description'),
          privileges: stringList(body, 'privileges'),
          roles: stringList(body, 'roles'),
        });
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'updated', context: after.id, attributes: { before: roleXO(before), after: roleXO(after) } });
        ctx.status = 204;
      },
    }),
    route({
      method: 'DELETE',
      path: '/security/roles/:id',
      operationId: 'deleteRole',
      tags,
      summary: 'Delete a role; it is removed from the roles and users holding it',
      access: { privilege: 'nx-roles-delete' },
      params: roleId,
      responses: { 204: noContent, 400: badRequestXO, 404: notFoundXO },
      handler: async (ctx) => {
        const before = await roles.delete(ctx.params.id);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: before.id, attributes: { before: roleXO(before) } });
        ctx.status = 204;
      },
    }),
  ];
}
