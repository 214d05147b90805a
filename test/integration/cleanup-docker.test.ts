/**
 * Cleanup of a docker hosted repository with skopeo: a component is a tag; `retain` keeps the
 * newest N tags of each image by push date; the run deletes the other tags, then — in the same
 * run — the manifests no tag names any more and the layers only they used, so the blob store's
 * usage drops by those bytes before the run ends; the kept tags still pull byte-exact.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ADMIN_PASSWORD, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { skopeo } from '../helpers/oci.js';
import { advance, createPolicy, json, label, previewAll, runPolicy } from '../helpers/cleanup.js';

const run = promisify(execFile);
const API = '/service/rest/v1';
const TAGS = ['1.0', '1.1', '2.0'];
const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

let work: string;
let layout: string;

function blob(digest: string): Buffer {
  return readFileSync(path.join(layout, 'blobs', ...digest.split(':')));
}

/** The layout's image `tag`: its manifest digest and every blob it names (config, layers). */
function image(tag: string): { manifest: string; blobs: string[] } {
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const d = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!.digest;
  const m = JSON.parse(blob(d).toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
  return { manifest: d, blobs: [m.config.digest, ...m.layers.map((l) => l.digest)] };
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'stowage-cleanup-docker-'));
  layout = path.join(work, 'img');
  const umoci = (...args: string[]) => run('umoci', args, { cwd: work });
  await umoci('init', '--layout', 'img');
  await umoci('new', '--image', 'img:base');
  await umoci('unpack', '--rootless', '--image', 'img:base', 'b0');
  writeFileSync(path.join(work, 'b0/rootfs/base.bin'), randomBytes(300_000));
  await umoci('repack', '--image', 'img:base', 'b0');
  for (const [i, tag] of TAGS.entries()) {
    await umoci('unpack', '--rootless', '--image', 'img:base', `b-${i}`);
    writeFileSync(path.join(work, `b-${i}/rootfs/own.bin`), randomBytes(200_000 + i * 1000));
    await umoci('repack', '--image', `img:${tag}`, `b-${i}`);
  }
});
after(() => rmSync(work, { recursive: true, force: true }));

for (const db of DATABASES) {
  describe(`cleanup of docker (${db})`, () => {
    let s: TestServer;
    let host: string;
    const creds = `admin:${ADMIN_PASSWORD}`;

    before(async () => {
      s = await startServer({ db });
      host = s.url.replace(/^http:\/\//, '');
      await createPolicy(s, { name: 'keep-2-tags', format: 'docker', retain: 2, sortBy: 'date' });
      await s.repo('docker', 'hosted', {
        name: 'images',
        storage: { blobStoreName: 'default', writePolicy: 'ALLOW' },
        docker: { v1Enabled: false, forceBasicAuth: false },
        cleanup: { policyNames: ['keep-2-tags'] },
      });
      for (const tag of TAGS) {
        const r = await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:${tag}`, `docker://${host}/images/app:${tag}`);
        assert.ok(r.ok, r.stderr);
        // Push dates apart, so "newest by date" is unambiguous.
        await new Promise((res) => setTimeout(res, 20));
      }
    });
    after(() => s?.stop());

    const usage = async () => (await json<Array<{ name: string; totalSizeInBytes: number; blobCount: number }>>(s, `${API}/blobstores`)).body.find((b) => b.name === 'default')!;

    it('keeps the newest 2 tags by push date; the old tag, its manifest and its own layer go in the same run', async () => {
      const preview = await previewAll(s, 'keep-2-tags', 'images');
      assert.deepEqual(preview.items.map(label), ['app:1.0']);

      const old = image('1.0');
      // What only 1.0 used: its manifest, config and own layer (the base layer is shared).
      const shared = new Set([...image('1.1').blobs, ...image('2.0').blobs]);
      const own = [old.manifest, ...old.blobs.filter((d) => !shared.has(d))];
      const ownBytes = own.reduce((n, d) => n + blob(d).length, 0);
      assert.equal(own.length, 3);

      const before = await usage();
      // Past the grace period (uploads in flight): the layers are old enough to go.
      advance(s, 2);
      const result = await runPolicy(s, 'keep-2-tags');
      assert.equal(result.result, 'OK', result.message);
      assert.match(result.log, /images: deleted 1 components and 4 assets \(3 reclaimed after them\); removed 3 blobs, reclaimed (\d+) bytes/);
      const reclaimed = Number(/reclaimed (\d+) bytes/.exec(result.log)![1]);
      assert.equal(reclaimed, ownBytes, 'the manifest, config and layer only 1.0 used');
      const afterRun = await usage();
      assert.equal(before.totalSizeInBytes - afterRun.totalSizeInBytes, ownBytes, 'blob store usage drops in the same run');

      const tags = await json<{ tags: string[] }>(s, '/repository/images/v2/app/tags/list');
      assert.deepEqual(tags.body.tags.sort(), ['1.1', '2.0']);
      const gone = await skopeo('inspect', '--tls-verify=false', '--creds', creds, `docker://${host}/images/app:1.0`);
      assert.equal(gone.ok, false);
      for (const tag of ['1.1', '2.0']) {
        const out = path.join(work, `pull-${db}-${tag}`);
        const r = await skopeo('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/images/app:${tag}`, `oci:${out}:x`);
        assert.ok(r.ok, r.stderr);
        for (const d of image(tag).blobs) assert.equal(sha256(readFileSync(path.join(out, 'blobs', ...d.split(':')))), d, `${tag}: ${d}`);
      }
      const audit = await s.app.db('audit_events').where({ domain: 'repository.cleanup', context: 'images' }).first('attributes');
      assert.equal(JSON.parse(String(audit.attributes)).bytesReclaimed, ownBytes);
    });

    it('selects tags by regex (on the tag asset’s path); the image’s other tags are untouched', async () => {
      await createPolicy(s, { name: 'drop-1x', format: 'docker', criteriaAssetRegex: '/manifests/1\\.[0-9]+$' });
      const repo = await s.app.repositories.require('images');
      await s.app.repositories.update('images', { ...repo.config, cleanup: { policyNames: ['keep-2-tags', 'drop-1x'] } });
      assert.deepEqual((await previewAll(s, 'drop-1x', 'images')).items.map(label), ['app:1.1']);
      const own = image('1.1').blobs.filter((d) => !image('2.0').blobs.includes(d));
      const ownBytes = [image('1.1').manifest, ...own].reduce((n, d) => n + blob(d).length, 0);
      const result = await runPolicy(s, 'drop-1x');
      assert.equal(result.result, 'OK', result.message);
      assert.equal(Number(/reclaimed (\d+) bytes/.exec(result.log)![1]), ownBytes);
      assert.deepEqual((await json<{ tags: string[] }>(s, '/repository/images/v2/app/tags/list')).body.tags, ['2.0']);
    });

    it('a second run finds nothing more to delete', async () => {
      assert.equal((await previewAll(s, 'keep-2-tags', 'images')).totals.components, 0);
      const result = await runPolicy(s, 'keep-2-tags');
      assert.match(result.log, /images: deleted 0 components and 0 assets; removed 0 blobs, reclaimed 0 bytes/);
    });
  });
}
