import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { badRequest } from '../errors.js';
import { auditOrigin, denied, principalOf } from '../http/auth.js';
import { auditAttributes, ldapServerXO, parseServerConfig, type LdapServerConfig } from '../security/ldap/config.js';
import { LdapServerError } from '../security/ldap/directory.js';
import { LdapLoginRefused, LdapRealm } from '../security/ldap/realm.js';
import { route, type ApiRoute, type RouteInput } from './route.js';
import { badRequest as badRequestXO, conflict, created, noContent, notFound as notFoundXO, ok, params, pathParam, strList } from './schemas.js';
import { z } from 'zod';
import { ErrorXO } from './schemas.js';
import { CreateLdapServerXo, LdapUserXO, LdapVerifyLogin, ReadLdapServerXo } from './security-schemas.js';

const DOMAIN = 'security.ldap';

type Body = Record<string, unknown>;

function object(v: unknown, field = 'body'): Body {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw badRequest(`${field}: must be a JSON object`, { field });
  return v as Body;
}

/** The verify endpoints act on a configuration being edited: whoever may create or update servers may check one. */
async function requireEditor(app: Stowage, ctx: Koa.Context): Promise<void> {
  const p = principalOf(ctx);
  if (p && ((await app.authorizer.canApp(p, 'nx-ldap-update')) || (await app.authorizer.canApp(p, 'nx-ldap-create')))) return;
  throw denied(p, 'use nx-ldap-update');
}

/** A server's answer (or silence) as a 400 the screen can show, never a 500. */
async function answer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof LdapServerError || e instanceof LdapLoginRefused) throw badRequest(e.message);
    throw e;
  }
}

/**
 * LDAP servers, Nexus-shaped (`/v1/security/ldap`): CRUD by name, change-order, and the checks of
 * Nexus's LDAP screens (verify connection, user mapping, login) plus clearing the login cache.
 * The bind password is write-only: never in a response or an audit record.
 */
export function securityLdapRoutes(app: Stowage): ApiRoute[] {
  const tags = ['Security management: LDAP'];
  const named = params({ name: pathParam('LDAP server name') });
  const config = { schema: CreateLdapServerXo };
  const serverError = { description: "Invalid configuration, or the server's error", schema: ErrorXO };
  const ldap = LdapRealm.of(app.security);
  const body = async (input: RouteInput<unknown>) => {
    const b = object(await input.body());
    // A stored ciphertext never leaves the server; one sent back must not be decrypted on its behalf.
    if (typeof b.authPassword === 'string' && app.secrets.isEncrypted(b.authPassword)) throw badRequest('authPassword: must be the password itself', { field: 'authPassword' });
    return b;
  };

  /** A configuration to verify: the stored password is used when the body leaves it out and targets the same server and account. */
  const configToVerify = async (b: Body): Promise<LdapServerConfig> => {
    const name = typeof b.name === 'string' && b.name.trim() ? b.name : 'unsaved';
    const stored = await ldap.servers.find(name);
    return parseServerConfig({ ...b, name }, stored?.config);
  };

  return [
    route({
      method: 'GET',
      path: '/security/ldap',
      operationId: 'getLdapServers',
      tags,
      summary: 'List LDAP servers in the order they are asked (bind passwords are never returned)',
      access: { privilege: 'nx-ldap-read' },
      responses: { 200: ok(z.array(ReadLdapServerXo)) },
      handler: async (ctx) => {
        ctx.body = (await ldap.servers.list()).map((s) => ldapServerXO(s.id, s.order, s.config));
      },
    }),
    route({
      method: 'POST',
      path: '/security/ldap',
      operationId: 'createLdapServer',
      tags,
      summary: 'Add an LDAP server (asked after the existing ones)',
      access: { privilege: 'nx-ldap-create' },
      body: config,
      responses: { 201: created, 400: badRequestXO, 409: conflict },
      handler: async (ctx, input) => {
        const cfg = parseServerConfig(await body(input));
        await ldap.servers.create(cfg);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: cfg.name, attributes: auditAttributes(cfg) });
        ctx.status = 201;
        ctx.body = '';
      },
    }),
    route({
      method: 'POST',
      path: '/security/ldap/change-order',
      operationId: 'changeLdapServerOrder',
      tags,
      summary: 'Set the order servers are asked in: the names given first, any left out after them',
      access: { privilege: 'nx-ldap-update' },
      body: { schema: strList },
      responses: { 204: noContent, 400: badRequestXO },
      handler: async (ctx, input) => {
        const names = await input.body();
        if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) throw badRequest('order: must be an array of LDAP server names', { field: 'order' });
        const order = await ldap.servers.reorder(names as string[]);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'order-changed', context: 'ldap', attributes: { order } });
        ctx.status = 204;
      },
    }),
    route({
      method: 'POST',
      path: '/security/ldap/clear-cache',
      operationId: 'clearLdapCache',
      tags,
      summary: 'Forget cached LDAP logins and retry skipped servers at once',
      access: { privilege: 'nx-ldap-delete' },
      responses: { 204: noContent },
      handler: async (ctx) => {
        // Nexus lets whoever may delete LDAP servers clear the cache.
        ldap.clearCache();
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'cache-cleared', context: 'ldap' });
        ctx.status = 204;
      },
    }),
    route({
      method: 'POST',
      path: '/security/ldap/verify-connection',
      operationId: 'verifyLdapConnection',
      tags,
      summary: 'Connect, bind and read the search base with a configuration (not saved)',
      access: { requires: 'nx-ldap-update or nx-ldap-create' },
      body: config,
      responses: { 204: { description: 'Connection verified' }, 400: serverError },
      handler: async (ctx, input) => {
        await requireEditor(app, ctx);
        const cfg = await configToVerify(await body(input));
        await answer(() => ldap.verifyConnection(cfg));
        ctx.status = 204;
      },
    }),
    route({
      method: 'POST',
      path: '/security/ldap/verify-user-mapping',
      operationId: 'verifyLdapUserMapping',
      tags,
      summary: 'The first users (up to 20) the user and group mapping finds',
      access: { requires: 'nx-ldap-update or nx-ldap-create' },
      body: config,
      responses: { 200: ok(z.array(LdapUserXO)), 400: serverError },
      handler: async (ctx, input) => {
        await requireEditor(app, ctx);
        const cfg = await configToVerify(await body(input));
        ctx.body = await answer(() => ldap.verifyUserMapping(cfg));
      },
    }),
    route({
      method: 'POST',
      path: '/security/ldap/verify-login',
      operationId: 'verifyLdapLogin',
      tags,
      summary: 'Try a login with a configuration (not saved)',
      access: { requires: 'nx-ldap-update or nx-ldap-create' },
      body: { schema: LdapVerifyLogin },
      responses: { 204: { description: 'Login succeeded' }, 400: { description: 'Invalid configuration, user not found, wrong password, or the server error', schema: ErrorXO } },
      handler: async (ctx, input) => {
        await requireEditor(app, ctx);
        const b = await body(input);
        // Either the configuration itself plus username/password, or {server, username, password}.
        const server = b.server !== undefined ? object(b.server, 'server') : b;
        const username = b.username;
        const password = b.password;
        if (typeof username !== 'string' || !username) throw badRequest('username: is required', { field: 'username' });
        if (typeof password !== 'string' || !password) throw badRequest('password: is required (an empty password is never sent to LDAP)', { field: 'password' });
        const { username: _u, password: _p, ...rest } = server;
        const cfg = await configToVerify(rest);
        await answer(() => ldap.verifyLogin(cfg, username, password));
        ctx.status = 204;
      },
    }),
    route({
      method: 'GET',
      path: '/security/ldap/:name',
      operationId: 'getLdapServer',
      tags,
      summary: 'An LDAP server',
      access: { privilege: 'nx-ldap-read' },
      params: named,
      responses: { 200: ok(ReadLdapServerXo), 404: notFoundXO },
      handler: async (ctx) => {
        const s = await ldap.servers.require(ctx.params.name);
        ctx.body = ldapServerXO(s.id, s.order, s.config);
      },
    }),
    route({
      method: 'PUT',
      path: '/security/ldap/:name',
      operationId: 'updateLdapServer',
      tags,
      summary: 'Replace an LDAP server configuration (may rename it)',
      access: { privilege: 'nx-ldap-update' },
      params: named,
      body: config,
      responses: { 204: noContent, 400: badRequestXO, 404: notFoundXO, 409: conflict },
      handler: async (ctx, input) => {
        const stored = await ldap.servers.require(ctx.params.name);
        const b = await body(input);
        const cfg = parseServerConfig({ ...b, name: b.name ?? stored.name }, stored.config);
        await ldap.servers.update(stored.name, cfg);
        await app.audit.record(auditOrigin(ctx), {
          domain: DOMAIN,
          type: 'updated',
          context: stored.name,
          attributes: { ...auditAttributes(cfg, stored.config), ...(cfg.name !== stored.name ? { renamedTo: cfg.name } : {}) },
        });
        ctx.status = 204;
      },
    }),
    route({
      method: 'DELETE',
      path: '/security/ldap/:name',
      operationId: 'deleteLdapServer',
      tags,
      summary: 'Delete an LDAP server',
      access: { privilege: 'nx-ldap-delete' },
      params: named,
      responses: { 204: noContent, 404: notFoundXO },
      handler: async (ctx) => {
        const stored = await ldap.servers.require(ctx.params.name);
        await ldap.servers.delete(stored.name);
        await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: stored.name, attributes: auditAttributes(stored.config) });
        ctx.status = 204;
      },
    }),
  ];
}
