/** Where RPMs may go (repodataDepth, deployPolicy) and which repodata lists them. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkDeployPath, isYumMetadata, repodataBase, rpmComponentOfPath } from '../../formats/yum/paths.js';
import { planYumUpload } from '../../formats/yum/upload.js';

describe('yum paths', () => {
  it('puts an RPM into the repodata of its directory at the configured depth', () => {
    assert.equal(repodataBase('x.rpm', 0), '');
    assert.equal(repodataBase('Packages/x/x.rpm', 0), '');
    assert.equal(repodataBase('el9/x.rpm', 1), 'el9/');
    assert.equal(repodataBase('el9/os/Packages/x.rpm', 2), 'el9/os/');
    assert.equal(repodataBase('x.rpm', 1), null);
  });

  it('STRICT takes RPMs at the repodata depth only; PERMISSIVE takes any file; nobody writes repodata', () => {
    const strict = { repodataDepth: 1, deployPolicy: 'STRICT' as const };
    const permissive = { repodataDepth: 1, deployPolicy: 'PERMISSIVE' as const };
    assert.doesNotThrow(() => checkDeployPath('el9/x.rpm', strict));
    assert.throws(() => checkDeployPath('el9/a/x.rpm', strict), /must be 1 directory deep/);
    assert.throws(() => checkDeployPath('x.rpm', strict), /must be 1 directory deep/);
    assert.throws(() => checkDeployPath('el9/comps.xml', strict), /only RPMs/);
    assert.doesNotThrow(() => checkDeployPath('el9/a/b/x.rpm', permissive));
    assert.doesNotThrow(() => checkDeployPath('el9/comps.xml', permissive));
    assert.throws(() => checkDeployPath('el9/repodata/repomd.xml', permissive), /generated/);
  });

  it('revalidates repomd.xml and its signature; everything else is content', () => {
    assert.ok(isYumMetadata('repodata/repomd.xml'));
    assert.ok(isYumMetadata('el9/repodata/repomd.xml.asc'));
    assert.ok(!isYumMetadata(`repodata/${'ab'.repeat(32)}-primary.xml.gz`));
    assert.ok(isYumMetadata('repodata/primary.xml.gz'), 'a file without a digest in its name changes in place');
    assert.ok(!isYumMetadata('Packages/x-1-1.noarch.rpm'));
  });

  it("reads a component from an RPM's conventional file name", () => {
    assert.deepEqual(rpmComponentOfPath('Packages/b/bash-5.2.15-2.el9.x86_64.rpm'), { name: 'bash', version: '5.2.15-2.el9', attributes: { arch: 'x86_64' } });
    assert.deepEqual(rpmComponentOfPath('python3-dnf-plugins-core-4.3.0-1.noarch.rpm'), { name: 'python3-dnf-plugins-core', version: '4.3.0-1', attributes: { arch: 'noarch' } });
    assert.equal(rpmComponentOfPath('repodata/repomd.xml'), null);
  });

  it('plans the Nexus upload from yum.asset, yum.asset.filename and yum.directory', () => {
    const form = (fields: Record<string, string>, files = ['yum.asset']) => ({ fields: new Map(Object.entries(fields)), files: new Map(files.map((f) => [f, { size: 1 }])) });
    assert.deepEqual(
      planYumUpload(form({ 'yum.asset.filename': 'x-1-1.noarch.rpm', 'yum.directory': '/el9/os/' })).map((u) => u.path),
      ['el9/os/x-1-1.noarch.rpm'],
    );
    assert.throws(() => planYumUpload(form({ 'yum.asset.filename': 'x.rpm', 'yum.directory': '../x' })), /yum.directory/);
    assert.throws(() => planYumUpload(form({ 'yum.asset.filename': 'a/x.rpm' })), /without directories/);
    assert.throws(() => planYumUpload(form({})), /yum.asset.filename/);
    assert.throws(() => planYumUpload(form({ 'yum.asset.filename': 'x.rpm' }, ['yum.asset', 'raw.asset1'])), /unexpected file field/);
  });
});
