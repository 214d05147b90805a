/**
 * Structured logs as an operator reads them: a real server process writing pino JSON lines to
 * stderr. One access line per request (request id, user, repository, method, path, status,
 * bytes, duration), the request id sent back and honoured only when safe, credentials never
 * written, `STOWAGE_LOG_LEVEL=silent` silent. The logger adapter itself is checked in process.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';
import { ADMIN, basic, spawnServer, type ChildServer } from '../helpers/stowage.js';

const children: ChildServer[] = [];
after(async () => {
  for (const c of children) await c.stop();
});

interface Line {
  level: string;
  msg: string;
  reqId?: string;
  user?: string;
  repository?: string;
  method?: string;
  path?: string;
  status?: number;
  bytes?: number;
  ms?: number;
  [k: string]: unknown;
}

function lines(s: ChildServer): Line[] {
  return s
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

/** The access line of the request answered with `reqId` (written when the response closed). */
async function accessLine(s: ChildServer, reqId: string): Promise<Line> {
  for (let i = 0; i < 100; i++) {
    const l = lines(s).find((x) => x.msg === 'request' && x.reqId === reqId);
    if (l) return l;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`no access line for ${reqId} in:\n${s.output()}`);
}

describe('structured logs (child process, pino JSON lines)', () => {
  it('one access line per request with request id, user, repository, method, path, status, bytes and duration', async () => {
    const s = await spawnServer({ env: { STOWAGE_LOG_LEVEL: 'info' } });
    children.push(s);
    const create = await fetch(`${s.url}/service/rest/v1/repositories/raw/hosted`, {
      method: 'POST',
      headers: { Authorization: ADMIN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'logged', online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: false, writePolicy: 'ALLOW' } }),
    });
    assert.equal(create.status, 201, await create.text());
    const body = randomBytes(123_457);
    const put = await fetch(`${s.url}/repository/logged/dir/file.bin?token=not-logged`, { method: 'PUT', headers: { Authorization: ADMIN }, body });
    assert.ok(put.status === 201 || put.status === 200, `PUT ${put.status}`);
    const get = await fetch(`${s.url}/repository/logged/dir/file.bin`, { headers: { Authorization: ADMIN } });
    assert.equal(get.status, 200);
    assert.equal(Buffer.from(await get.arrayBuffer()).length, body.length);
    const missing = await fetch(`${s.url}/repository/logged/nope.txt`, { headers: { Authorization: ADMIN } });
    assert.equal(missing.status, 404);
    await missing.text();

    const putLine = await accessLine(s, put.headers.get('x-request-id')!);
    assert.equal(putLine.level, 'info');
    assert.equal(putLine.method, 'PUT');
    assert.equal(putLine.path, '/repository/logged/dir/file.bin', 'the path, without the query string');
    assert.equal(putLine.user, 'admin');
    assert.equal(putLine.repository, 'logged');
    assert.equal(putLine.status, put.status);
    assert.equal(typeof putLine.ms, 'number');
    assert.ok(putLine.ms! >= 0);

    const getLine = await accessLine(s, get.headers.get('x-request-id')!);
    assert.deepEqual(
      { method: getLine.method, path: getLine.path, user: getLine.user, repository: getLine.repository, status: getLine.status, bytes: getLine.bytes },
      { method: 'GET', path: '/repository/logged/dir/file.bin', user: 'admin', repository: 'logged', status: 200, bytes: body.length },
    );
    const missingLine = await accessLine(s, missing.headers.get('x-request-id')!);
    assert.equal(missingLine.status, 404);
    assert.ok(missingLine.bytes! > 0, 'the error body counts');

    const anonymous = await fetch(`${s.url}/service/rest/v1/status`);
    const anonLine = await accessLine(s, anonymous.headers.get('x-request-id')!);
    assert.equal(anonLine.repository, undefined);
    assert.equal(anonLine.status, 200);
    assert.equal(
      new Set(
        lines(s)
          .filter((l) => l.msg === 'request')
          .map((l) => l.reqId),
      ).size,
      lines(s).filter((l) => l.msg === 'request').length,
      'one line per request',
    );
  });

  it('X-Request-Id: a short safe id is kept, anything else replaced by a generated one', async () => {
    const s = await spawnServer({ env: { STOWAGE_LOG_LEVEL: 'info' } });
    children.push(s);
    const kept = await fetch(`${s.url}/service/rest/v1/status`, { headers: { 'X-Request-Id': 'lb-4711.a_b:c' } });
    assert.equal(kept.headers.get('x-request-id'), 'lb-4711.a_b:c');
    assert.equal((await accessLine(s, 'lb-4711.a_b:c')).path, '/service/rest/v1/status');

    for (const bad of ['x'.repeat(65), 'has space', 'quote"d', 'a\u00e9b', '']) {
      const r = await fetch(`${s.url}/service/rest/v1/status`, { headers: bad ? { 'X-Request-Id': bad } : {} });
      const id = r.headers.get('x-request-id');
      assert.ok(id && id !== bad, `${JSON.stringify(bad)} replaced`);
      assert.match(id, /^[0-9a-f-]{36}$/, 'a generated UUID');
      await accessLine(s, id);
    }
    assert.ok(!s.output().includes('x'.repeat(65)), 'the refused id is not logged');
  });

  it('credentials never reach the log: Basic password, Bearer token, cookies', async () => {
    const s = await spawnServer({ env: { STOWAGE_LOG_LEVEL: 'debug' } });
    children.push(s);
    const password = 'Basic-Secret-' + randomBytes(6).toString('hex');
    const token = 'Bearer-Secret-' + randomBytes(6).toString('hex');
    const cookie = 'Cookie-Secret-' + randomBytes(6).toString('hex');
    const wrong = await fetch(`${s.url}/service/rest/v1/status/check`, { headers: { Authorization: basic('admin', password), Cookie: `session=${cookie}` } });
    assert.equal(wrong.status, 401);
    const bearer = await fetch(`${s.url}/repository/none/x`, { headers: { Authorization: `Bearer ${token}` } });
    assert.ok(bearer.status >= 400);
    const unknownUser = await fetch(`${s.url}/service/rest/v1/status/check`, { headers: { Authorization: basic('nobody', password) } });
    assert.equal(unknownUser.status, 401);
    for (const r of [wrong, bearer, unknownUser]) await accessLine(s, r.headers.get('x-request-id')!);
    const out = s.output();
    for (const secret of [password, token, cookie, Buffer.from(`admin:${password}`).toString('base64')]) {
      assert.ok(!out.includes(secret), `${secret.split('-')[0]} credential absent from the log`);
    }
  });

  it('STOWAGE_LOG_LEVEL=silent writes nothing', async () => {
    const s = await spawnServer({ env: { STOWAGE_LOG_LEVEL: 'silent' } });
    children.push(s);
    const r = await fetch(`${s.url}/service/rest/v1/status`);
    assert.equal(r.status, 200);
    assert.ok(r.headers.get('x-request-id'), 'the request id is sent back all the same');
    await s.stop();
    assert.equal(s.output(), '');
  });

  it('the Logger adapter: Error → err, objects → fields (redacted), child lines carry their bindings, level filter', () => {
    const out: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    const log = createLogger('info', sink);
    log.debug('not written');
    log.info('plain');
    log.warn('with error', new Error('boom'));
    log.error('with fields', { repository: 'r1', password: 'pw-123', headers: { authorization: 'Basic abc', accept: '*/*' } }, 'and text');
    log.child({ reqId: 'req-1' }).info('from a request');
    const parsed = out.map((l) => JSON.parse(l) as Line);
    assert.deepEqual(
      parsed.map((l) => [l.level, l.msg]),
      [
        ['info', 'plain'],
        ['warn', 'with error'],
        ['error', 'with fields and text'],
        ['info', 'from a request'],
      ],
    );
    assert.equal((parsed[1].err as { message: string }).message, 'boom');
    assert.match((parsed[1].err as { stack: string }).stack, /Error: boom/);
    assert.equal(parsed[2].repository, 'r1');
    assert.equal(parsed[2].password, '[redacted]');
    assert.deepEqual(parsed[2].headers, { authorization: '[redacted]', accept: '*/*' });
    assert.ok(!out.join('\n').includes('pw-123') && !out.join('\n').includes('Basic abc'));
    assert.equal(parsed[3].reqId, 'req-1');
    assert.ok(typeof parsed[0].time === 'string' && !Number.isNaN(Date.parse(parsed[0].time as string)), 'ISO time');
  });
});
