/**
 * Route tables: the core's matcher (first match wins, HEAD through GET, 405 with the allowed
 * methods, named groups as params), and every row of every compiled-in format asking for a need
 * the one authorizer can grant.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type Koa from 'koa';
import { matchRoute, type FormatRoute } from '../../src/repository/format.js';
import { builtinPrivilege, implies, permissionOf } from '../../src/security/permissions.js';
import { formats } from '../../formats/index.js';

const row = (methods: string[], path: RegExp, name: string): FormatRoute & { name: string } => ({
  methods,
  path,
  need: 'read',
  name,
  handler: async () => undefined,
});
const nameOf = (m: ReturnType<typeof matchRoute>) => ('route' in m ? (m.route as FormatRoute & { name: string }).name : m);

describe('matchRoute', () => {
  const routes = [
    row(['GET'], /^files\/(?<file>[^/]+)\/$/, 'listing'),
    row(['GET'], /^files\/(?<file>[^/]+)$/, 'get'),
    row(['GET'], /^files\/.*$/, 'shadowed'),
    row(['PUT', 'POST'], /^files\/(?<file>[^/]+)$/, 'put'),
    row(['DELETE'], /^items\/(?<id>\d+)$/, 'delete-item'),
    row(['GET'], /^items\/(?<id>.+)$/, 'get-item'),
  ];

  it('first row matching path and method wins', () => {
    assert.equal(nameOf(matchRoute(routes, 'GET', 'files/a')), 'get');
    assert.equal(nameOf(matchRoute(routes, 'GET', 'files/a/')), 'listing');
    assert.equal(nameOf(matchRoute(routes, 'GET', 'files/a/b')), 'shadowed');
    assert.equal(nameOf(matchRoute(routes, 'POST', 'files/a')), 'put');
  });

  it('a row matching the path under other methods does not stop the search', () => {
    // `items/1` matches the DELETE row first; GET goes on to the next row.
    assert.equal(nameOf(matchRoute(routes, 'GET', 'items/1')), 'get-item');
    assert.equal(nameOf(matchRoute(routes, 'DELETE', 'items/1')), 'delete-item');
  });

  it('GET answers HEAD', () => {
    assert.equal(nameOf(matchRoute(routes, 'HEAD', 'files/a')), 'get');
    assert.deepEqual(matchRoute([row(['PUT'], /^x$/, 'put')], 'HEAD', 'x'), { allowed: ['PUT'] });
  });

  it('a path matched only under other methods yields the allowed methods (405), HEAD with GET', () => {
    const m = matchRoute(routes, 'DELETE', 'files/a');
    assert.ok('allowed' in m);
    assert.deepEqual(new Set(m.allowed), new Set(['GET', 'HEAD', 'PUT', 'POST']));
    assert.deepEqual(matchRoute(routes, 'PATCH', 'items/x'), { allowed: ['GET', 'HEAD'] });
  });

  it('a path no row matches yields no allowed methods (404)', () => {
    assert.deepEqual(matchRoute(routes, 'GET', 'other'), { allowed: [] });
    assert.deepEqual(matchRoute(routes, 'GET', 'files'), { allowed: [] });
  });

  it('named groups become params', () => {
    const m = matchRoute(routes, 'GET', 'files/report.txt');
    assert.ok('route' in m);
    assert.deepEqual(m.params, { file: 'report.txt' });
    const n = matchRoute(routes, 'DELETE', 'items/42');
    assert.ok('route' in n);
    assert.deepEqual(n.params, { id: '42' });
  });
});

describe('every format route table', () => {
  const METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'MKCOL', 'OPTIONS']);

  it('the formats list is not empty and every format declares routes', () => {
    assert.ok(formats.length >= 3);
    for (const f of formats) assert.ok(Array.isArray(f.routes) && f.routes.length > 0, `${f.name} declares routes`);
  });

  for (const format of formats) {
    it(`${format.name}: every row has known methods, a pattern and a need the authorizer can grant`, () => {
      for (const r of format.routes) {
        const what = `${format.name} ${r.methods.join(',')} ${r.path}`;
        assert.ok(r.path instanceof RegExp, what);
        assert.ok(r.methods.length > 0, what);
        for (const m of r.methods) assert.ok(METHODS.has(m), `${what}: method ${m}`);
        assert.equal(typeof r.handler, 'function', what);
        const needs =
          typeof r.need === 'function' ? r.methods.map((method) => (r.need as (c: Koa.Context, p: Record<string, string>) => string)({ method } as Koa.Context, {})) : [r.need];
        for (const need of needs) {
          if (need === 'public') continue;
          // A role grants the need through the built-in privilege of that name; the authorizer asks
          // for exactly this permission (PrivilegeAuthorizer.canContent).
          const privilege = builtinPrivilege(`nx-repository-view-${format.name}-repo-${need}`);
          assert.ok(privilege, `${what}: need '${need}' is no repository action`);
          assert.ok(implies(permissionOf(privilege)!, [['nexus'], ['repository-view'], [format.name], ['repo'], [need]]), `${what}: need '${need}'`);
        }
      }
    });
  }
});
