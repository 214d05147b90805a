/**
 * The OpenAPI document is generated from the REST route declarations (issue 10, item 9): it is a
 * well-formed OpenAPI 3 document (every operation has responses, every `$ref` resolves,
 * operationIds are unique, every path parameter is declared), the koa routes and the document's
 * operations are the same set, formats' repository sections and endpoints appear without an edit
 * to the API code, and a body that breaks a declared schema gets the 400 it got before, after the
 * privilege check.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { basic, startServer, type TestServer } from '../helpers/stowage.js';
import { apiGroups, API_PREFIX, restRouter } from '../../src/api/index.js';
import { openApiDocument } from '../../src/api/openapi.js';
import type { FormatPlugin } from '../../src/repository/format.js';
import type { Stowage } from '../../src/stowage.js';

const API = '/service/rest/v1';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every `$ref` anywhere in the document. */
function refs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) refs(n, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

/** The problems a structural check of an OpenAPI 3.0 document finds (empty: none). */
function problems(doc: Json): string[] {
  const out: string[] = [];
  if (!/^3\.0\.\d+$/.test(doc.openapi)) out.push(`openapi: ${doc.openapi}`);
  if (typeof doc.info?.title !== 'string' || typeof doc.info?.version !== 'string') out.push('info: title and version are required');
  const ids = new Map<string, string>();
  for (const [p, item] of Object.entries(doc.paths as Json)) {
    if (!p.startsWith('/')) out.push(`${p}: paths start with /`);
    const templated = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const [method, op] of Object.entries(item as Json)) {
      const where = `${method.toUpperCase()} ${p}`;
      if (!METHODS.includes(method)) {
        out.push(`${where}: not an HTTP method`);
        continue;
      }
      if (!op.responses || Object.keys(op.responses).length === 0) out.push(`${where}: no responses`);
      for (const [status, r] of Object.entries((op.responses ?? {}) as Json)) {
        if (!/^([1-5]\d\d|[1-5]XX|default)$/.test(status)) out.push(`${where}: response ${status}`);
        if (typeof r.description !== 'string') out.push(`${where} ${status}: a response needs a description`);
      }
      if (typeof op.operationId !== 'string') out.push(`${where}: no operationId`);
      else if (ids.has(op.operationId)) out.push(`${where}: operationId ${op.operationId} also on ${ids.get(op.operationId)}`);
      else ids.set(op.operationId, where);
      const params = (op.parameters ?? []) as Json[];
      for (const name of templated) {
        const param = params.find((x) => x.in === 'path' && x.name === name);
        if (!param) out.push(`${where}: path parameter ${name} not declared`);
        else if (param.required !== true) out.push(`${where}: path parameter ${name} must be required`);
      }
      for (const x of params) {
        if (!['path', 'query', 'header', 'cookie'].includes(x.in)) out.push(`${where}: parameter ${x.name} in ${x.in}`);
        if (x.in === 'path' && !templated.includes(x.name)) out.push(`${where}: path parameter ${x.name} is not in the path`);
        if (!x.schema && !x.content) out.push(`${where}: parameter ${x.name} has no schema`);
      }
      const seen = new Set(params.map((x) => `${x.in}:${x.name}`));
      if (seen.size !== params.length) out.push(`${where}: a parameter is declared twice`);
      if (op.requestBody && !op.requestBody.content) out.push(`${where}: requestBody without content`);
    }
  }
  for (const r of new Set(refs(doc))) {
    const m = /^#\/components\/schemas\/(.+)$/.exec(r);
    if (!m || !doc.components?.schemas?.[m[1]]) out.push(`dangling $ref ${r}`);
  }
  return out;
}

/** `GET /v1/tasks/{id}` for every method of every layer of the router the server mounts. */
function koaOperations(app: Stowage): string[] {
  const out = new Set<string>();
  for (const layer of restRouter(app).stack) {
    const p = String(layer.path)
      .slice(API_PREFIX.length)
      .replace(/:(\w+)/g, '{$1}');
    for (const m of layer.methods) if (m !== 'HEAD') out.add(`${m} ${p}`);
  }
  return [...out].sort();
}

function documentOperations(doc: Json): string[] {
  const out: string[] = [];
  for (const [p, item] of Object.entries(doc.paths as Json)) for (const m of Object.keys(item as Json)) out.push(`${m.toUpperCase()} ${p}`);
  return out.sort();
}

describe('REST API: the generated OpenAPI document', () => {
  let s: TestServer;
  let doc: Json;

  before(async () => {
    s = await startServer();
    const res = await s.fetch('/service/rest/swagger.json', { auth: null });
    assert.equal(res.status, 200);
    doc = (await res.json()) as Json;
  });
  after(async () => {
    await s?.stop();
  });

  it('is a well-formed OpenAPI 3 document', () => {
    assert.deepEqual(problems(doc), []);
    assert.ok(documentOperations(doc).length > 80, `${documentOperations(doc).length} operations`);
  });

  it('the structure check finds what it looks for', () => {
    const broken = structuredClone(doc);
    broken.paths['/v1/tasks/{id}'].get.responses = {};
    broken.paths['/v1/tasks/{id}'].put.operationId = 'getTasks';
    broken.paths['/v1/tasks/{id}'].delete.parameters = [];
    broken.components.schemas.TaskXO = undefined;
    const found = problems(broken).join('\n');
    for (const p of [
      'GET /v1/tasks/{id}: no responses',
      'operationId getTasks',
      'DELETE /v1/tasks/{id}: path parameter id not declared',
      'dangling $ref #/components/schemas/TaskXO',
    ]) {
      assert.ok(found.includes(p), `${p} in:\n${found}`);
    }
  });

  it('describes exactly the routes the server serves', () => {
    const served = koaOperations(s.app);
    assert.ok(served.includes('GET /v1/tasks/{id}') && served.includes('POST /v1/docker/archive') && served.includes('GET /swagger.json'), served.join('\n'));
    assert.deepEqual(documentOperations(doc), served);
  });

  it('is served the same at /v1/openapi.json, and equals the one built from the declarations', async () => {
    assert.deepEqual(await (await s.fetch(`${API}/openapi.json`, { auth: null })).json(), doc);
    assert.deepEqual(JSON.parse(JSON.stringify(openApiDocument(apiGroups(s.app)))), doc);
  });

  it('documents parameters, bodies and responses from the schemas', () => {
    const put = doc.paths['/v1/tasks/{id}'].put;
    assert.deepEqual(put.parameters, [{ name: 'id', in: 'path', required: true, description: 'Task id', schema: { type: 'string' } }]);
    assert.deepEqual(put.requestBody.content['application/json'].schema, { $ref: '#/components/schemas/TaskTemplateXO' });
    assert.deepEqual(put.responses['200'].content['application/json'].schema, { $ref: '#/components/schemas/TaskXO' });
    assert.ok(put.responses['401'] && put.responses['403'] && put.responses['404']);
    assert.match(put.description, /nx-tasks-update/);
    const list = doc.paths['/v1/components'].get.parameters as Json[];
    assert.deepEqual(
      list.map((p) => [p.name, p.in, p.required]),
      [
        ['repository', 'query', true],
        ['continuationToken', 'query', false],
        ['limit', 'query', false],
      ],
    );
    assert.deepEqual(doc.components.schemas.TaskXO.properties.currentState.enum, ['WAITING', 'RUNNING']);
    assert.deepEqual(doc.paths['/v1/status'].get.security, []);
    assert.deepEqual(doc.paths['/v1/security/user-tokens'].post.requestBody.content['application/json'].schema, { $ref: '#/components/schemas/UserTokenCreate' });
    assert.deepEqual(doc.paths['/v1/security/users/{userId}/change-password'].put.requestBody.content, { 'text/plain': { schema: { type: 'string' } } });
  });

  it("takes repository sections and endpoints from the formats, without an edit to the API's code", () => {
    const config = doc.components.schemas.RepositoryConfig.properties as Json;
    for (const f of s.app.formats.values()) for (const sec of f.sections ?? []) assert.ok(config[sec.key], `${f.name}: ${sec.key}`);
    // A format this server does not have, added to a copy of the app.
    const fake: FormatPlugin = {
      ...s.app.formats.get('raw')!,
      name: 'fakefmt',
      sections: [{ key: 'fakefmt', schema: z.object({ flavour: z.enum(['sweet', 'sour']).default('sweet') }) }],
      apiRoutes: [
        {
          method: 'POST',
          path: '/thing',
          handler: async () => undefined,
          openapi: { summary: 'A thing', responses: { '204': { description: 'Done' } } },
        },
      ],
    } as FormatPlugin;
    const app = Object.create(s.app, { formats: { value: new Map([...s.app.formats, ['fakefmt', fake]]) } }) as Stowage;
    const other = openApiDocument(apiGroups(app)) as Json;
    assert.deepEqual(other.components.schemas.RepositoryConfig.properties.fakefmt.properties.flavour.enum, ['sweet', 'sour']);
    assert.ok(other.paths['/v1/repositories/{format}/{type}'].post.parameters[0].schema.enum.includes('fakefmt'));
    assert.ok(other.paths['/v1/components'].post.requestBody.content['multipart/form-data'].schema.properties['fakefmt.asset1.filename']);
    assert.deepEqual(other.paths['/v1/fakefmt/thing'].post.tags, ['fakefmt']);
    assert.deepEqual(problems(other), []);
  });

  describe('bodies that break a declared schema', () => {
    const json = (method: string, p: string, body: unknown, auth?: string | null) =>
      s.fetch(API + p, {
        method,
        headers: { 'Content-Type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        ...(auth !== undefined ? { auth } : {}),
      });
    const expect400 = async (res: Response, id: string, message: RegExp) => {
      const text = await res.text();
      assert.equal(res.status, 400, text);
      const [first] = JSON.parse(text) as Array<{ id: string; message: string }>;
      assert.equal(first.id, id, text);
      assert.match(first.message, message);
    };

    it('get the 400 naming the field, as before (user tokens: the schema validates)', async () => {
      await expect400(await json('POST', '/security/user-tokens', [1]), 'PARAMETER body', /^body: expected a JSON object$/);
      await expect400(await json('POST', '/security/user-tokens', { name: '' }), 'PARAMETER name', /^name: /);
      await expect400(await json('POST', '/security/user-tokens', { name: 'x', scope: 'all' }), 'PARAMETER scope', /^scope: /);
      await expect400(await json('POST', '/security/user-tokens', { name: 'x', colour: 'red' }), 'PARAMETER colour', /^colour: /);
      await expect400(await json('POST', '/security/user-tokens', { name: 'x', expiresInDays: -1 }), 'PARAMETER expiresInDays', /^expiresInDays: /);
      await expect400(await json('POST', '/security/user-tokens', '{"name":'), 'PARAMETER body', /^body: malformed JSON/);
      assert.deepEqual(await (await s.fetch(`${API}/security/user-tokens`)).json(), [], 'nothing stored');
      const ok = await json('POST', '/security/user-tokens', { name: 'ci' });
      assert.equal(ok.status, 201, await ok.clone().text());
    });

    it('get the 400 naming the field, as before (blob stores: the schema validates)', async () => {
      await expect400(await json('POST', '/blobstores/file', 'null'), 'PARAMETER body', /^body: expected a JSON object$/);
      await expect400(await json('POST', '/blobstores/file', { name: 'x' }), 'PARAMETER path', /^path: /);
      await expect400(await json('POST', '/blobstores/file', { name: 'x', path: 'x', softQuota: { type: 'lots', limit: 1 } }), 'PARAMETER softQuota.type', /^softQuota\.type: /);
      await expect400(
        await json('POST', '/blobstores/s3', { name: 'b2', bucketConfiguration: { bucket: { name: 'ab' } } }),
        'PARAMETER bucketConfiguration.bucket.name',
        /^bucketConfiguration\.bucket\.name: /,
      );
      const names = ((await (await s.fetch(`${API}/blobstores`)).json()) as Array<{ name: string }>).map((b) => b.name);
      assert.deepEqual(names, ['default'], 'nothing stored');
    });

    it('get the 400 naming the field, as before (repositories, tasks: the domain parser validates)', async () => {
      await expect400(await json('POST', '/repositories/raw/hosted', { name: 'bad name' }), 'PARAMETER name', /^name: must use letters/);
      await expect400(
        await json('POST', '/repositories/raw/hosted', { name: 'r1', raw: { contentDisposition: 'NOPE' } }),
        'PARAMETER raw.contentDisposition',
        /^raw\.contentDisposition: /,
      );
      await expect400(await json('POST', '/tasks', { type: 'no.such.type', name: 'x' }), 'PARAMETER type', /^type: unknown task type 'no.such.type'/);
      assert.equal((await s.fetch(`${API}/repositories/raw/hosted/r1`)).status, 404, 'nothing stored');
    });

    it('are refused for want of privilege before they are read', async () => {
      // Anonymous and unprivileged callers get 401/403, not the body's 400.
      assert.equal((await json('POST', '/security/user-tokens', '{"name":', null)).status, 401);
      assert.equal((await json('POST', '/tasks', '{"name":', null)).status, 401);
      await s.app.security.users.create({ userId: 'nobody', password: 'nobody-pw', roles: [] });
      const nobody = basic('nobody', 'nobody-pw');
      assert.equal((await json('POST', '/tasks', '{"name":', nobody)).status, 403);
      assert.equal((await json('POST', '/repositories/raw/hosted', '{"name":', nobody)).status, 403);
      assert.equal((await json('PUT', '/security/realms/active', 'not json', nobody)).status, 403);
    });
  });
});
