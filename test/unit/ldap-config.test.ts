/**
 * LDAP server configurations as the REST API receives them (Nexus LdapServerXO field names):
 * defaults, validation errors naming the field, the write-only bind password (kept on update only
 * for the same server and account), the read shape without it, and the password-attribute check.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AppError } from '../../src/errors.js';
import { auditAttributes, ldapServerXO, parseServerConfig, serverUrl } from '../../src/security/ldap/config.js';
import { passwordMatches } from '../../src/security/ldap/password-attribute.js';

const minimal = { name: 'corp', host: 'ldap.example.com', searchBase: 'dc=example,dc=com' };
const simple = { ...minimal, protocol: 'ldap', port: 389, authScheme: 'SIMPLE', authUsername: 'cn=svc,dc=example,dc=com', authPassword: 's3cret' };

function refused(body: unknown, field: string, stored?: Parameters<typeof parseServerConfig>[1]): void {
  assert.throws(
    () => parseServerConfig(body, stored),
    (e: unknown) => {
      assert.ok(e instanceof AppError, `expected AppError, got ${String(e)}`);
      assert.equal(e.status, 400);
      assert.equal(e.detail?.field, field, `field of: ${e.message}`);
      return true;
    },
  );
}

describe('parseServerConfig', () => {
  it('fills Nexus-like defaults around the required fields', () => {
    const c = parseServerConfig(minimal);
    assert.equal(c.protocol, 'ldap');
    assert.equal(c.port, 389);
    assert.equal(c.authScheme, 'NONE');
    assert.equal(c.authPassword, '');
    assert.equal(c.userIdAttribute, 'uid');
    assert.equal(c.groupType, 'static');
    assert.equal(c.groupMemberFormat, '${dn}');
    assert.equal(c.connectionTimeoutSeconds, 30);
    assert.equal(parseServerConfig({ ...minimal, protocol: 'ldaps' }).port, 636);
  });

  it('accepts Nexus spellings case-insensitively and normalises them', () => {
    const c = parseServerConfig({ ...simple, protocol: 'LDAPS', authScheme: 'simple', groupType: 'DYNAMIC' });
    assert.equal(c.protocol, 'ldaps');
    assert.equal(c.authScheme, 'SIMPLE');
    assert.equal(c.groupType, 'dynamic');
  });

  it('wraps a user filter without parentheses and checks it parses', () => {
    assert.equal(parseServerConfig({ ...minimal, userLdapFilter: 'mail=*@example.com' }).userLdapFilter, '(mail=*@example.com)');
    assert.equal(parseServerConfig({ ...minimal, userLdapFilter: '(|(a=1)(b=2))' }).userLdapFilter, '(|(a=1)(b=2))');
    for (const bad of ['(|(a=1)(b=2)', '(a=1)(b=2)', '(a=1))(|(b=2)', 'a=1)(b=2', '(a=1)x', '(cn=a\\)']) refused({ ...minimal, userLdapFilter: bad }, 'userLdapFilter');
    assert.equal(parseServerConfig({ ...minimal, userLdapFilter: '(cn=a\\29b)' }).userLdapFilter, '(cn=a\\29b)');
  });

  it('names the field of every validation error', () => {
    refused({ host: 'h', searchBase: 'dc=x' }, 'name');
    refused({ ...minimal, name: 'a/b' }, 'name');
    refused({ name: 'x', searchBase: 'dc=x' }, 'host');
    refused({ ...minimal, host: 'bad host' }, 'host');
    refused({ name: 'x', host: 'h' }, 'searchBase');
    refused({ ...minimal, searchBase: 'not a dn' }, 'searchBase');
    refused({ ...minimal, port: 0 }, 'port');
    refused({ ...minimal, port: 70000 }, 'port');
    refused({ ...minimal, port: 'abc' }, 'port');
    refused({ ...minimal, protocol: 'http' }, 'protocol');
    refused({ ...minimal, authScheme: 'DIGEST_MD5' }, 'authScheme');
    refused({ ...minimal, authScheme: 'KERBEROS' }, 'authScheme');
    refused({ ...minimal, authScheme: 'SIMPLE', authPassword: 'x' }, 'authUsername');
    refused({ ...minimal, authScheme: 'SIMPLE', authUsername: 'cn=svc' }, 'authPassword');
    refused({ ...minimal, connectionTimeoutSeconds: 0 }, 'connectionTimeoutSeconds');
    refused({ ...minimal, connectionRetryDelaySeconds: -1 }, 'connectionRetryDelaySeconds');
    refused({ ...minimal, maxIncidentsCount: 1.5 }, 'maxIncidentsCount');
    refused({ ...minimal, userIdAttribute: 'uid)(x' }, 'userIdAttribute');
    refused({ ...minimal, groupMemberAttribute: 'member=*' }, 'groupMemberAttribute');
    refused({ ...minimal, userBaseDn: 'people' }, 'userBaseDn');
    refused({ ...minimal, groupType: 'nested' }, 'groupType');
    refused({ ...minimal, groupMemberFormat: 'uid=x' }, 'groupMemberFormat');
    refused({ ...minimal, userSubtree: 'yes' }, 'userSubtree');
    refused({ ...minimal, authPassword: 42 }, 'authPassword');
    refused([], 'body');
  });

  it('keeps the stored bind password only for the same server and account', () => {
    const stored = parseServerConfig(simple);
    const { authPassword: _omit, ...withoutPassword } = simple;
    assert.equal(parseServerConfig(withoutPassword, stored).authPassword, 's3cret');
    assert.equal(parseServerConfig({ ...withoutPassword, authPassword: null }, stored).authPassword, 's3cret');
    assert.equal(parseServerConfig({ ...withoutPassword, userIdAttribute: 'cn' }, stored).authPassword, 's3cret');
    assert.equal(parseServerConfig({ ...simple, authPassword: 'new' }, stored).authPassword, 'new');
    // Pointing the configuration elsewhere needs the password again.
    refused({ ...withoutPassword, host: 'evil.example.org' }, 'authPassword', stored);
    refused({ ...withoutPassword, port: 1389 }, 'authPassword', stored);
    refused({ ...withoutPassword, protocol: 'ldaps', port: 389 }, 'authPassword', stored);
    refused({ ...withoutPassword, authUsername: 'cn=other,dc=example,dc=com' }, 'authPassword', stored);
  });

  it('drops credentials with authScheme NONE', () => {
    const c = parseServerConfig({ ...simple, authScheme: 'NONE' });
    assert.equal(c.authUsername, '');
    assert.equal(c.authPassword, '');
  });
});

describe('read shape and audit attributes', () => {
  it('never carry the bind password', () => {
    const c = parseServerConfig(simple);
    const xo = ldapServerXO(7, 2, c);
    assert.equal(xo.id, '7');
    assert.equal(xo.order, 2);
    assert.equal(xo.name, 'corp');
    assert.ok(!('authPassword' in xo));
    assert.ok(!JSON.stringify(xo).includes('s3cret'));
    const changed = auditAttributes(parseServerConfig({ ...simple, authPassword: 'other', port: 1389 }), c);
    assert.deepEqual((changed.changed as string[]).sort(), ['authPassword', 'port']);
    assert.ok(!JSON.stringify(changed).includes('s3cret') && !JSON.stringify(changed).includes('other'));
    assert.equal(serverUrl(c), 'ldap://ldap.example.com:389');
    assert.equal(serverUrl({ protocol: 'ldaps', host: '::1', port: 636 }), 'ldaps://[::1]:636');
  });
});

describe('passwordMatches (userPasswordAttribute mode)', () => {
  const salted = (scheme: string, alg: string, pw: string) => {
    const salt = Buffer.from('saltsalt');
    return `{${scheme}}` + Buffer.concat([createHash(alg).update(pw).update(salt).digest(), salt]).toString('base64');
  };
  const plain = (scheme: string, alg: string, pw: string) => `{${scheme}}` + createHash(alg).update(pw).digest('base64');

  it('verifies the RFC 2307 schemes and clear text', () => {
    for (const [scheme, alg] of [
      ['SSHA', 'sha1'],
      ['SSHA256', 'sha256'],
      ['SSHA512', 'sha512'],
      ['SMD5', 'md5'],
    ]) {
      assert.ok(passwordMatches('pw', salted(scheme, alg, 'pw')), scheme);
      assert.ok(passwordMatches('pw', salted(scheme.toLowerCase(), alg, 'pw')), scheme + ' lower case');
      assert.equal(passwordMatches('wrong', salted(scheme, alg, 'pw')), false, scheme);
    }
    for (const [scheme, alg] of [
      ['SHA', 'sha1'],
      ['SHA256', 'sha256'],
      ['MD5', 'md5'],
    ]) {
      assert.ok(passwordMatches('pw', plain(scheme, alg, 'pw')), scheme);
      assert.equal(passwordMatches('wrong', plain(scheme, alg, 'pw')), false, scheme);
    }
    assert.ok(passwordMatches('clear', 'clear'));
    assert.ok(passwordMatches('clear', Buffer.from('clear')));
    assert.equal(passwordMatches('clear', 'Clear'), false);
  });

  it('never matches empty passwords, unknown schemes or truncated digests', () => {
    assert.equal(passwordMatches('', ''), false);
    assert.equal(passwordMatches('', '{SSHA}'), false);
    assert.equal(passwordMatches('x', ''), false);
    assert.equal(passwordMatches('pw', '{CRYPT}$6$abc$def'), false);
    assert.equal(passwordMatches('pw', '{SSHA}AAAA'), false);
    assert.equal(passwordMatches('pw', '{SHA}' + Buffer.alloc(25).toString('base64')), false);
  });
});
