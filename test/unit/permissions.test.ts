/**
 * Privileges as permissions: built-in names understood by name, wildcard implication (Shiro
 * semantics), and the built-in list Nexus shows.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { builtinPrivilege, builtinPrivileges, implies, isListedBuiltin, parseWildcard, permissionOf, type Permission } from '../../src/security/permissions.js';

const perm = (name: string): Permission => {
  const p = builtinPrivilege(name);
  assert.ok(p, `${name} is a built-in`);
  return permissionOf(p)!;
};

describe('privilege permissions', () => {
  it('reads built-in names', () => {
    assert.deepEqual(builtinPrivilege('nx-repository-view-raw-team-files-read'), {
      type: 'repository-view',
      format: 'raw',
      repository: 'team-files',
      actions: ['read'],
      name: 'nx-repository-view-raw-team-files-read',
      description: builtinPrivilege('nx-repository-view-raw-team-files-read')!.description,
      readOnly: true,
    });
    assert.equal(builtinPrivilege('nx-repository-admin-*-*-*')?.type, 'repository-admin');
    assert.deepEqual(permissionOf(builtinPrivilege('nx-users-all')!), [['nexus'], ['users'], ['*']]);
    assert.deepEqual(permissionOf(builtinPrivilege('nx-all')!), [['nexus'], ['*']]);
    assert.equal(builtinPrivilege('nx-repository-view-raw-x-publish'), null);
    assert.equal(builtinPrivilege('my-privilege'), null);
    assert.equal(builtinPrivilege('nx-userschangepw')?.type, 'application');
  });

  const table: Array<[string, string, boolean]> = [
    ['nx-all', 'nx-users-read', true],
    ['nx-all', 'nx-repository-view-raw-r-delete', true],
    ['nx-users-all', 'nx-users-delete', true],
    ['nx-users-read', 'nx-users-update', false],
    ['nx-users-read', 'nx-roles-read', false],
    ['nx-repository-view-*-*-read', 'nx-repository-view-raw-r-read', true],
    ['nx-repository-view-*-*-read', 'nx-repository-view-raw-r-browse', false],
    ['nx-repository-view-raw-*-*', 'nx-repository-view-raw-r-delete', true],
    ['nx-repository-view-raw-*-*', 'nx-repository-view-npm-r-read', false],
    ['nx-repository-view-raw-r-*', 'nx-repository-view-raw-r2-read', false],
    ['nx-repository-view-raw-r-read', 'nx-repository-view-raw-r-edit', false],
    ['nx-repository-view-*-*-*', 'nx-repository-admin-raw-r-read', false],
    ['nx-repository-admin-raw-r-*', 'nx-repository-admin-raw-r-edit', true],
    ['nx-repository-admin-raw-r-*', 'nx-repository-view-raw-r-read', false],
  ];
  for (const [granted, requested, expected] of table) {
    it(`${granted} ${expected ? 'implies' : 'does not imply'} ${requested}`, () => {
      assert.equal(implies(perm(granted), perm(requested)), expected);
    });
  }

  it('evaluates wildcard patterns as Shiro does', () => {
    const w = (p: string) => parseWildcard(p)!;
    assert.ok(implies(w('nexus:repository-view:raw:*:read,browse'), perm('nx-repository-view-raw-x-browse')));
    assert.ok(!implies(w('nexus:repository-view:raw:*:read,browse'), perm('nx-repository-view-raw-x-add')));
    assert.ok(implies(w('nexus:repository-view'), perm('nx-repository-view-npm-x-add')));
    assert.ok(!implies(w('nexus:repository-view:raw:x:read:extra'), perm('nx-repository-view-raw-x-read')));
    assert.ok(implies(w('nexus:repository-view:raw:x:read:*'), perm('nx-repository-view-raw-x-read')));
    assert.equal(parseWildcard('a::b'), null);
    assert.equal(parseWildcard(''), null);
  });

  it('lists built-ins for repositories, formats and everything', () => {
    const list = builtinPrivileges([{ name: 'files', format: 'raw' }], ['raw']);
    const names = list.map((p) => p.name);
    for (const n of [
      'nx-all',
      'nx-users-read',
      'nx-users-all',
      'nx-userschangepw',
      'nx-repository-view-raw-files-read',
      'nx-repository-admin-raw-files-*',
      'nx-repository-view-raw-*-browse',
      'nx-repository-view-*-*-*',
    ]) {
      assert.ok(names.includes(n), n);
    }
    assert.deepEqual(names, [...names].sort());
    assert.ok(isListedBuiltin('nx-repository-view-raw-not-yet-read', ['raw']));
    assert.ok(!isListedBuiltin('nx-repository-view-nuget-x-read', ['raw']));
    assert.ok(!isListedBuiltin('nx-frobnicate-read', ['raw']));
  });
});
