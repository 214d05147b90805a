import Router from '@koa/router';
import type Koa from 'koa';
import type { Stowage } from '../stowage.js';
import { badRequest } from '../errors.js';
import { auditOrigin, denied, principalOf, requireApp } from '../http/auth.js';
import { auditAttributes, ldapServerXO, parseServerConfig, type LdapServerConfig } from '../security/ldap/config.js';
import { LdapServerError } from '../security/ldap/directory.js';
import { LdapLoginRefused, LdapRealm } from '../security/ldap/realm.js';
import { readJson } from './body.js';

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
export function securityLdapRoutes(app: Stowage): Router {
  const r = new Router();
  const ldap = LdapRealm.of(app.security);
  const body = async (ctx: Koa.Context) => {
    const b = object(await readJson(ctx, app.config.http.maxJsonBytes));
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

  r.get('/security/ldap', async (ctx) => {
    await requireApp(app, ctx, 'nx-ldap-read');
    ctx.body = (await ldap.servers.list()).map((s) => ldapServerXO(s.id, s.order, s.config));
  });

  r.post('/security/ldap', async (ctx) => {
    await requireApp(app, ctx, 'nx-ldap-create');
    const cfg = parseServerConfig(await body(ctx));
    await ldap.servers.create(cfg);
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'created', context: cfg.name, attributes: auditAttributes(cfg) });
    ctx.status = 201;
    ctx.body = '';
  });

  r.post('/security/ldap/change-order', async (ctx) => {
    await requireApp(app, ctx, 'nx-ldap-update');
    const names = await readJson(ctx, app.config.http.maxJsonBytes);
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) throw badRequest('order: must be an array of LDAP server names', { field: 'order' });
    const order = await ldap.servers.reorder(names as string[]);
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'order-changed', context: 'ldap', attributes: { order } });
    ctx.status = 204;
  });

  r.post('/security/ldap/clear-cache', async (ctx) => {
    // Nexus lets whoever may delete LDAP servers clear the cache.
    await requireApp(app, ctx, 'nx-ldap-delete');
    ldap.clearCache();
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'cache-cleared', context: 'ldap' });
    ctx.status = 204;
  });

  r.post('/security/ldap/verify-connection', async (ctx) => {
    await requireEditor(app, ctx);
    const cfg = await configToVerify(await body(ctx));
    await answer(() => ldap.verifyConnection(cfg));
    ctx.status = 204;
  });

  r.post('/security/ldap/verify-user-mapping', async (ctx) => {
    await requireEditor(app, ctx);
    const cfg = await configToVerify(await body(ctx));
    ctx.body = await answer(() => ldap.verifyUserMapping(cfg));
  });

  r.post('/security/ldap/verify-login', async (ctx) => {
    await requireEditor(app, ctx);
    const b = await body(ctx);
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
  });

  r.get('/security/ldap/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-ldap-read');
    const s = await ldap.servers.require(ctx.params.name);
    ctx.body = ldapServerXO(s.id, s.order, s.config);
  });

  r.put('/security/ldap/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-ldap-update');
    const stored = await ldap.servers.require(ctx.params.name);
    const b = await body(ctx);
    const cfg = parseServerConfig({ ...b, name: b.name ?? stored.name }, stored.config);
    await ldap.servers.update(stored.name, cfg);
    await app.audit.record(auditOrigin(ctx), {
      domain: DOMAIN,
      type: 'updated',
      context: stored.name,
      attributes: { ...auditAttributes(cfg, stored.config), ...(cfg.name !== stored.name ? { renamedTo: cfg.name } : {}) },
    });
    ctx.status = 204;
  });

  r.delete('/security/ldap/:name', async (ctx) => {
    await requireApp(app, ctx, 'nx-ldap-delete');
    const stored = await ldap.servers.require(ctx.params.name);
    await ldap.servers.delete(stored.name);
    await app.audit.record(auditOrigin(ctx), { domain: DOMAIN, type: 'deleted', context: stored.name, attributes: auditAttributes(stored.config) });
    ctx.status = 204;
  });

  return r;
}
