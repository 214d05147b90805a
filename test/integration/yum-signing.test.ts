/**
 * Signed repodata: a repository's GPG key (set through the REST API or in the repository body's
 * `yumSigning` section, stored sealed), repomd.xml.asc
 * and repomd.xml.key served, dnf with repo_gpgcheck=1 accepting them and refusing a tampered
 * repomd.xml; a group signing its merged repodata. Runs on SQLite and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { buildRpms, dnf, run } from '../helpers/rpm.js';
import { serveStatic } from '../helpers/nginx.js';

const PASS = 'correct horse';
let work: string;
let rpms: string[];
let secretKey: string;

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'stowage-yumsig-'));
  rpms = await buildRpms(path.join(work, 'b'), [
    { name: 'yumsig', version: '1.0' },
    { name: 'yumsig2', version: '1.0' },
  ]);
  const home = path.join(work, 'gnupg');
  await run('mkdir', ['-m', '700', home]);
  await run('gpg', [
    '--batch',
    '--homedir',
    home,
    '--pinentry-mode',
    'loopback',
    '--passphrase',
    PASS,
    '--quick-gen-key',
    'Stowage Test <test@example.test>',
    'ed25519',
    'sign',
    'never',
  ]);
  secretKey = (await run('gpg', ['--batch', '--homedir', home, '--pinentry-mode', 'loopback', '--passphrase', PASS, '--armor', '--export-secret-keys'])).stdout;
  await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']).catch(() => undefined);
});
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** gpg --verify of `data` against `asc` with only `publicKey` known. */
async function verifies(publicKey: string, asc: Buffer, data: Buffer): Promise<boolean> {
  const home = await mkdtemp(path.join(work, 'verify-'));
  try {
    await writeFile(path.join(home, 'key'), publicKey);
    await writeFile(path.join(home, 'asc'), asc);
    await writeFile(path.join(home, 'data'), data);
    await run('gpg', ['--batch', '--homedir', home, '--import', path.join(home, 'key')]);
    await run('gpg', ['--batch', '--homedir', home, '--verify', path.join(home, 'asc'), path.join(home, 'data')]);
    return true;
  } catch {
    return false;
  } finally {
    await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']).catch(() => undefined);
  }
}

for (const db of DATABASES) {
  describe(`yum signing (${db})`, () => {
    let s: TestServer;
    const bytes = async (p: string) => {
      const r = await s.fetch(p);
      assert.equal(r.status, 200, p);
      return Buffer.from(await r.arrayBuffer());
    };
    const setKey = (repo: string, body: unknown) =>
      s.fetch(`/service/rest/v1/yum/signing?repository=${repo}`, { method: 'PUT', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });

    before(async () => {
      s = await startServer({ db });
      await s.repo('yum', 'hosted', { name: 'ys' });
      await s.repo('yum', 'hosted', { name: 'ys2' });
      await s.repo('yum', 'group', { name: 'ysg', group: { memberNames: ['ys', 'ys2'] } });
      const r = await s.fetch(`/repository/ys/${path.basename(rpms[0])}`, { method: 'PUT', body: (await readFile(rpms[0])) as unknown as BodyInit });
      assert.equal(r.status, 201);
      const r2 = await s.fetch(`/repository/ys2/${path.basename(rpms[1])}`, { method: 'PUT', body: (await readFile(rpms[1])) as unknown as BodyInit });
      assert.equal(r2.status, 201);
    });
    after(() => s?.stop());

    it('refuses a key gpg cannot use, and keeps the key out of the configuration', async () => {
      const wrong = await setKey('ys', { keypair: secretKey, passphrase: 'wrong' });
      assert.equal(wrong.status, 400);
      assert.match(await wrong.text(), /passphrase/);
      const junk = await setKey('ys', { keypair: 'not a key', passphrase: PASS });
      assert.equal(junk.status, 400);
      assert.equal((await s.fetch('/repository/ys/repodata/repomd.xml.asc')).status, 404);
      assert.equal((await setKey('ys', { keypair: secretKey, passphrase: PASS })).status, 204);
      const cfg = await (await s.fetch('/service/rest/v1/repositories/yum/hosted/ys')).text();
      assert.doesNotMatch(cfg, /PGP|correct horse/);
      const stored = await s.app.db('properties').where({ scope: 'yum-signing' }).select('value');
      assert.equal(stored.length, 1);
      assert.doesNotMatch(String(stored[0].value), /PGP|correct horse/);
    });

    it('signs repomd.xml; dnf with repo_gpgcheck=1 installs, and refuses a tampered repomd.xml', async () => {
      const repomd = await bytes('/repository/ys/repodata/repomd.xml');
      const asc = await bytes('/repository/ys/repodata/repomd.xml.asc');
      const key = (await bytes('/repository/ys/repodata/repomd.xml.key')).toString();
      assert.match(key, /BEGIN PGP PUBLIC KEY BLOCK/);
      assert.ok(await verifies(key, asc, repomd));
      const url = `${s.url}/repository/ys/`;
      const check = ['--setopt=r.repo_gpgcheck=1', `--setopt=r.gpgkey=${url}repodata/repomd.xml.key`, '--setopt=r.gpgcheck=0'];
      const root = path.join(work, `root-${db}`);
      await dnf(root, url, ['install', 'yumsig'], check);
      assert.match((await run('rpm', ['--root', root, '-q', 'yumsig'])).stdout, /yumsig-1.0-1/);

      // The same repository, copied byte for byte but with one byte of repomd.xml changed.
      const copy = path.join(work, `tampered-${db}`);
      await cp(path.join(work, 'b', 'RPMS', 'noarch'), copy, { recursive: true });
      const { mkdir } = await import('node:fs/promises');
      await mkdir(path.join(copy, 'repodata'));
      for (const f of ['repomd.xml.asc', 'repomd.xml.key']) await writeFile(path.join(copy, 'repodata', f), await bytes(`/repository/ys/repodata/${f}`));
      const md = repomd.toString();
      for (const m of md.matchAll(/href="(repodata\/[^"]+)"/g)) await writeFile(path.join(copy, m[1]), await bytes(`/repository/ys/${m[1]}`));
      await writeFile(
        path.join(copy, 'repodata', 'repomd.xml'),
        md.replace(/<revision>(\d+)<\/revision>/, (_, r) => `<revision>${Number(r) + 1}</revision>`),
      );
      const nginx = await serveStatic(copy);
      try {
        const root2 = path.join(work, `root-t-${db}`);
        const tcheck = ['--setopt=r.repo_gpgcheck=1', `--setopt=r.gpgkey=${nginx.url}/repodata/repomd.xml.key`, '--setopt=r.gpgcheck=0'];
        await assert.rejects(dnf(root2, `${nginx.url}/`, ['install', 'yumsig'], tcheck), (e: Error & { stderr?: string }) =>
          /signature|GPG|gpg/i.test((e.stderr ?? '') + e.message),
        );
      } finally {
        nginx.stop();
      }
    });

    it('signs again after an upload, and stops signing when the key is removed', async () => {
      const r = await s.fetch(`/repository/ys/${path.basename(rpms[1])}`, { method: 'PUT', body: (await readFile(rpms[1])) as unknown as BodyInit });
      assert.equal(r.status, 201);
      const repomd = await bytes('/repository/ys/repodata/repomd.xml');
      assert.match(repomd.toString(), /primary/);
      assert.ok(await verifies((await bytes('/repository/ys/repodata/repomd.xml.key')).toString(), await bytes('/repository/ys/repodata/repomd.xml.asc'), repomd));
      assert.equal((await s.fetch('/service/rest/v1/yum/signing?repository=ys', { method: 'DELETE' })).status, 204);
      assert.equal((await s.fetch('/repository/ys/repodata/repomd.xml.asc')).status, 404);
      const hrefs = (b: Buffer) => [...b.toString().matchAll(/href="([^"]+)"/g)].map((m) => m[1]);
      assert.deepEqual(hrefs(await bytes('/repository/ys/repodata/repomd.xml')), hrefs(repomd));
    });

    it("takes the key in the repository body (Nexus's yumSigning), sealed, never returned; dnf with repo_gpgcheck=1 accepts it", async () => {
      const json = { 'Content-Type': 'application/json' };
      const body = {
        name: 'ysc',
        online: true,
        storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW' },
        yum: { repodataDepth: 0, deployPolicy: 'STRICT' },
      };
      const junk = await s.fetch('/service/rest/v1/repositories/yum/hosted', {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ ...body, yumSigning: { keypair: 'not a key', passphrase: PASS } }),
      });
      assert.equal(junk.status, 400);
      assert.match(await junk.text(), /yumSigning\.keypair/);
      assert.equal(await s.app.repositories.find('ysc'), undefined, 'a refused body creates nothing');
      const created = await s.fetch('/service/rest/v1/repositories/yum/hosted', {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ ...body, yumSigning: { keypair: secretKey, passphrase: PASS } }),
      });
      assert.equal(created.status, 201, await created.text());
      const r = await s.fetch(`/repository/ysc/${path.basename(rpms[0])}`, { method: 'PUT', body: (await readFile(rpms[0])) as unknown as BodyInit });
      assert.equal(r.status, 201);
      const got = await (await s.fetch('/service/rest/v1/repositories/yum/hosted/ysc')).json();
      assert.deepEqual(got.yumSigning, { keypair: null, passphrase: null });
      const stored = JSON.stringify(await s.app.db('repositories').where({ name: 'ysc' }).select('attributes'));
      assert.doesNotMatch(stored, /PGP|correct horse/);
      assert.match(stored, /keypair/);
      const audits = JSON.stringify(await s.app.db('audit_events').select());
      assert.doesNotMatch(audits, /PGP PRIVATE|correct horse/);

      // The configuration read back and sent again (secrets null) keeps the key.
      const updated = await s.fetch('/service/rest/v1/repositories/yum/hosted/ysc', { method: 'PUT', headers: json, body: JSON.stringify(got) });
      assert.equal(updated.status, 204, await updated.text());
      const repomd = await bytes('/repository/ysc/repodata/repomd.xml');
      const key = (await bytes('/repository/ysc/repodata/repomd.xml.key')).toString();
      assert.ok(await verifies(key, await bytes('/repository/ysc/repodata/repomd.xml.asc'), repomd));
      const url = `${s.url}/repository/ysc/`;
      const root = path.join(work, `root-c-${db}`);
      await dnf(root, url, ['install', 'yumsig'], ['--setopt=r.repo_gpgcheck=1', `--setopt=r.gpgkey=${url}repodata/repomd.xml.key`, '--setopt=r.gpgcheck=0']);
      assert.match((await run('rpm', ['--root', root, '-q', 'yumsig'])).stdout, /yumsig-1.0-1/);

      // Without the section, the key is gone and repomd.xml is no longer signed.
      const dropped = await s.fetch('/service/rest/v1/repositories/yum/hosted/ysc', { method: 'PUT', headers: json, body: JSON.stringify(body) });
      assert.equal(dropped.status, 204);
      assert.equal((await s.fetch('/repository/ysc/repodata/repomd.xml')).status, 200);
      assert.equal((await s.fetch('/repository/ysc/repodata/repomd.xml.asc')).status, 404);
    });

    it('a group with a key signs its merged repomd.xml; dnf checks it', async () => {
      assert.equal((await s.fetch('/repository/ysg/repodata/repomd.xml.asc')).status, 404);
      assert.equal((await setKey('ysg', { keypair: secretKey, passphrase: PASS })).status, 204);
      const repomd = await bytes('/repository/ysg/repodata/repomd.xml');
      const asc = await bytes('/repository/ysg/repodata/repomd.xml.asc');
      const key = (await bytes('/repository/ysg/repodata/repomd.xml.key')).toString();
      assert.ok(await verifies(key, asc, repomd));
      const url = `${s.url}/repository/ysg/`;
      const root = path.join(work, `root-g-${db}`);
      await dnf(root, url, ['install', 'yumsig', 'yumsig2'], ['--setopt=r.repo_gpgcheck=1', `--setopt=r.gpgkey=${url}repodata/repomd.xml.key`, '--setopt=r.gpgcheck=0']);
      assert.match((await run('rpm', ['--root', root, '-q', 'yumsig2'])).stdout, /yumsig2-1.0-1/);
    });
  });
}
