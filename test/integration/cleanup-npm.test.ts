/**
 * Cleanup of an npm hosted repository, seen by the npm CLI: versions ordered by semver (retain N),
 * prereleases by npm's rule, `latest` re-pointed to the highest remaining release (never to a
 * prerelease while a release is left) and tags naming a deleted version gone — the npm
 * maintenance hook at work on cleanup's deletes. Preview equals run; a group over the repository
 * keeps answering.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, DATABASES, startServer, type TestServer } from '../helpers/stowage.js';
import { NpmClient } from '../helpers/npm-cli.js';
import { publish } from '../helpers/npm-gen.js';
import { advance, createPolicy, json, label, previewAll, runPolicy } from '../helpers/cleanup.js';

const API = '/service/rest/v1';

for (const db of DATABASES) {
  describe(`cleanup of npm (${db})`, () => {
    let s: TestServer;
    let npm: NpmClient;
    let viaGroup: NpmClient;
    let reg: string;

    const view = async (client: NpmClient, what: string[]) => {
      const r = await client.run(['view', ...what, '--json']);
      assert.equal(r.code, 0, r.all);
      return JSON.parse(r.stdout) as unknown;
    };
    const usePolicies = (policyNames: string[]) =>
      json(s, `${API}/repositories/npm/hosted/npm-hosted`, {
        method: 'PUT',
        body: JSON.stringify({
          name: 'npm-hosted',
          online: true,
          storage: { blobStoreName: 'default', strictContentTypeValidation: true, writePolicy: 'ALLOW_ONCE' },
          cleanup: { policyNames },
        }),
      });

    before(async () => {
      s = await startServer({ db });
      await s.repo('npm', 'hosted', { name: 'npm-hosted' });
      await s.repo('npm', 'group', { name: 'npm-all', group: { memberNames: ['npm-hosted'] } });
      reg = `${s.url}/repository/npm-hosted/`;
      for (const v of ['1.0.0', '1.1.0', '2.0.0']) assert.equal((await publish(reg, { name: 'pkg', version: v }, ADMIN)).status, 200);
      assert.equal((await publish(reg, { name: 'pkg', version: '3.0.0-rc.1' }, ADMIN, { tag: 'next' })).status, 200);
      // Published out of version order: retain by version must not follow the dates (nor the text).
      for (const v of ['0.10.0', '0.1.0', '0.3.0', '0.2.0']) assert.equal((await publish(reg, { name: 'other', version: v }, ADMIN)).status, 200);
      npm = new NpmClient(reg);
      viaGroup = new NpmClient(`${s.url}/repository/npm-all/`);
    });
    after(async () => {
      npm?.cleanup();
      viaGroup?.cleanup();
      await s?.stop();
    });

    it('deleting the latest release moves latest to the highest remaining release, not to the newer prerelease', async () => {
      assert.deepEqual(await view(npm, ['pkg', 'dist-tags']), { latest: '2.0.0', next: '3.0.0-rc.1' });
      await createPolicy(s, { name: 'old-2', format: 'npm', criteriaLastBlobUpdated: 30, criteriaAssetRegex: '/pkg-2\\.0\\.0\\.tgz$' });
      assert.equal((await usePolicies(['old-2'])).status, 204);
      assert.deepEqual((await previewAll(s, 'old-2', 'npm-hosted')).items.length, 0, 'nothing is 30 days old yet');
      advance(s, 40);
      const preview = await previewAll(s, 'old-2', 'npm-hosted');
      assert.deepEqual(preview.items.map(label), ['pkg:2.0.0']);
      const run = await runPolicy(s, 'old-2');
      assert.equal(run.result, 'OK', run.message);
      assert.match(run.log, /npm-hosted: deleted 1 components and 1 assets/);
      assert.deepEqual(await view(npm, ['pkg', 'dist-tags']), { latest: '1.1.0', next: '3.0.0-rc.1' });
      assert.deepEqual(await view(npm, ['pkg', 'versions']), ['1.0.0', '1.1.0', '3.0.0-rc.1']);
      assert.deepEqual(await view(viaGroup, ['pkg', 'dist-tags']), { latest: '1.1.0', next: '3.0.0-rc.1' }, 'the group answers from what is left');
    });

    it('retains the newest N versions by semver; the preview names exactly what the run deletes', async () => {
      await createPolicy(s, { name: 'keep-2', format: 'npm', retain: 2, sortBy: 'version', criteriaReleaseType: 'RELEASES' });
      assert.equal((await usePolicies(['old-2', 'keep-2'])).status, 204);
      const preview = await previewAll(s, 'keep-2', 'npm-hosted', 1);
      // pkg: 3.0.0-rc.1 and 1.1.0 are its newest two; other: 0.10.0 and 0.3.0 by semver.
      assert.deepEqual(preview.items.map(label).sort(), ['other:0.1.0', 'other:0.2.0', 'pkg:1.0.0']);
      assert.equal(preview.totals.components, 3);
      assert.equal(preview.totals.assets, 3);
      assert.ok(preview.totals.bytes > 0);
      const run = await runPolicy(s, 'keep-2', 'npm-hosted');
      assert.equal(run.result, 'OK', run.message);
      assert.match(run.log, /npm-hosted: deleted 3 components and 3 assets/);
      assert.deepEqual(await view(npm, ['other', 'versions']), ['0.3.0', '0.10.0']);
      assert.deepEqual(await view(npm, ['other', 'dist-tags']), { latest: '0.10.0' }, 'latest (0.2.0) went: the highest release left');
      assert.deepEqual(await view(npm, ['pkg', 'versions']), ['1.1.0', '3.0.0-rc.1']);
      const installed = await npm.run(['install', '--no-save', 'other@latest'], { cwd: npm.project() });
      assert.equal(installed.code, 0, installed.all);
    });

    it('a prerelease policy removes prereleases and the tags naming them', async () => {
      await createPolicy(s, { name: 'pre', format: 'npm', criteriaReleaseType: 'PRERELEASES' });
      assert.equal((await usePolicies(['pre'])).status, 204);
      assert.deepEqual((await previewAll(s, 'pre', 'npm-hosted')).items.map(label), ['pkg:3.0.0-rc.1']);
      assert.equal((await runPolicy(s, 'pre')).result, 'OK');
      assert.deepEqual(await view(npm, ['pkg', 'dist-tags']), { latest: '1.1.0' });
    });
  });
}
