/**
 * pnpm (a second npm client, pinned as a dev dependency) installs through Stowage with an empty
 * store and cache: from a hosted repository, through a proxy of verdaccio, and through a group
 * merging both, including a scoped package and a dependency chain across members.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN, startServer, type TestServer } from '../helpers/stowage.js';
import { startVerdaccio, type Verdaccio } from '../helpers/verdaccio.js';
import { publish } from '../helpers/npm-gen.js';

const PNPM = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../node_modules/.bin/pnpm');

/** `pnpm install` in a new project whose only registry is `registry`; store, cache and config all temporary. */
async function pnpmInstall(work: string, registry: string, dependencies: Record<string, string>): Promise<{ code: number; out: string; dir: string }> {
  const dir = mkdtempSync(path.join(work, 'proj-'));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies }));
  writeFileSync(path.join(dir, '.npmrc'), `registry=${registry}\n`);
  const home = path.join(dir, '.home');
  mkdirSync(home);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(npm_|pnpm_)/i.test(k)) env[k] = v;
  Object.assign(env, {
    HOME: home,
    XDG_CACHE_HOME: path.join(home, 'cache'),
    XDG_DATA_HOME: path.join(home, 'data'),
    XDG_CONFIG_HOME: path.join(home, 'config'),
    CI: '1',
    NO_COLOR: '1',
  });
  const args = ['install', '--registry', registry, '--store-dir', path.join(home, 'store'), '--reporter', 'append-only', '--no-frozen-lockfile'];
  return new Promise((resolve, reject) => {
    const p = spawn(PNPM, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, dir });
    });
  });
}

const installed = (dir: string, name: string) => JSON.parse(readFileSync(path.join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };

describe('pnpm against Stowage', { timeout: 300_000 }, () => {
  let s: TestServer;
  let v: Verdaccio;
  let work: string;

  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'stowage-pnpm-'));
    v = await startVerdaccio();
    for (const p of [
      { name: 'pn-up', version: '2.0.0' },
      { name: 'pn-up', version: '2.1.0' },
      { name: '@up/pn-scoped', version: '1.0.0', manifest: { dependencies: { 'pn-up': '^2.0.0' } } },
    ]) {
      const r = await publish(v.url, p);
      assert.equal(r.status, 201, await r.text());
    }
    s = await startServer();
    const create = async (type: string, body: Record<string, unknown>) => {
      const r = await s.fetch(`/service/rest/v1/repositories/npm/${type}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ online: true, storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' }, ...body }),
      });
      assert.equal(r.status, 201, await r.text());
    };
    await create('hosted', { name: 'pn-hosted' });
    await create('proxy', {
      name: 'pn-proxy',
      proxy: { remoteUrl: v.url + '/', contentMaxAge: 1440, metadataMaxAge: 1440 },
      negativeCache: { enabled: true, timeToLive: 1440 },
      httpClient: { blocked: false, autoBlock: false },
    });
    await create('group', { name: 'pn-group', group: { memberNames: ['pn-hosted', 'pn-proxy'] } });
    // A hosted package depending on one only the proxy has: the group must resolve both.
    const r = await publish(`${s.url}/repository/pn-hosted/`, { name: 'pn-lib', version: '1.0.0', manifest: { dependencies: { '@up/pn-scoped': '1.0.0' } } }, ADMIN);
    assert.ok(r.status === 200 || r.status === 201, await r.text());
    const solo = await publish(`${s.url}/repository/pn-hosted/`, { name: '@corp/pn-solo', version: '3.1.4' }, ADMIN);
    assert.ok(solo.status === 200 || solo.status === 201, await solo.text());
  });

  after(async () => {
    await s?.stop();
    await v?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('installs from a hosted repository; a dependency it lacks fails the install', async () => {
    const ok = await pnpmInstall(work, `${s.url}/repository/pn-hosted/`, { '@corp/pn-solo': '^3.0.0' });
    assert.equal(ok.code, 0, ok.out);
    assert.equal(installed(ok.dir, '@corp/pn-solo').version, '3.1.4');
    const r = await pnpmInstall(work, `${s.url}/repository/pn-hosted/`, { 'pn-lib': '1.0.0' });
    // pn-lib's dependency lives only upstream: a hosted repository alone cannot satisfy it.
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /@up\/pn-scoped|ERR_PNPM_FETCH_404|404/, r.out);
  });

  it('installs through a proxy of verdaccio (scoped package and its dependency)', async () => {
    const r = await pnpmInstall(work, `${s.url}/repository/pn-proxy/`, { '@up/pn-scoped': '^1.0.0' });
    assert.equal(r.code, 0, r.out);
    assert.equal(installed(r.dir, '@up/pn-scoped').version, '1.0.0');
    const lock = readFileSync(path.join(r.dir, 'pnpm-lock.yaml'), 'utf8');
    assert.match(lock, /pn-up@2\.1\.0/, 'the highest matching version was chosen');
    assert.ok(existsSync(path.join(r.dir, 'node_modules/.pnpm/pn-up@2.1.0/node_modules/pn-up/index.js')));
  });

  it('installs through the group: a hosted package whose dependency chain lives on the proxy', async () => {
    const r = await pnpmInstall(work, `${s.url}/repository/pn-group/`, { 'pn-lib': '1.0.0' });
    assert.equal(r.code, 0, r.out);
    assert.equal(installed(r.dir, 'pn-lib').version, '1.0.0');
    const lock = readFileSync(path.join(r.dir, 'pnpm-lock.yaml'), 'utf8');
    for (const want of ['@up/pn-scoped@1.0.0', 'pn-up@2.1.0']) assert.ok(lock.includes(want), `${want} in the lockfile:\n${lock}`);
    // Every tarball came through the group URL.
    assert.doesNotMatch(lock, new RegExp(v.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'no tarball URL points at the upstream');
  });
});
