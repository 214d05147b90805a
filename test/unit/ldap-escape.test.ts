/**
 * LDAP syntax built from user input: filter values (RFC 4515) and DN values (RFC 4514) are
 * escaped so a user id never changes a filter's or a DN's shape; DNs are read back (group ids
 * from memberOf values) with escapes undone. The filter checks go through ldapts's own parser, the
 * one that sends them, so what is tested is what the server receives.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AndFilter, EqualityFilter, FilterParser, SubstringFilter } from 'ldapts';
import { escapeDnValue, escapeFilterValue, firstRdnValue, formatMember, isAttributeName, isDn, parseDn, underBase } from '../../src/security/ldap/escape.js';

describe('escapeFilterValue', () => {
  it('escapes the five RFC 4515 specials', () => {
    assert.equal(escapeFilterValue('a*b'), 'a\\2ab');
    assert.equal(escapeFilterValue('(x)'), '\\28x\\29');
    assert.equal(escapeFilterValue('back\\slash'), 'back\\5cslash');
    assert.equal(escapeFilterValue('nul\0'), 'nul\\00');
    assert.equal(escapeFilterValue('*)(uid=*))(|(uid=*'), '\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a');
  });

  it('leaves ordinary text, including non-ASCII, as it is', () => {
    assert.equal(escapeFilterValue('alice.smith-01@example.com'), 'alice.smith-01@example.com');
    assert.equal(escapeFilterValue('Zoë Ünïcødé 日本'), 'Zoë Ünïcødé 日本');
  });

  const hostile = ['*', 'al*', '*)(objectClass=*', 'a)(|(uid=b', 'x\\', '\\2a', 'r(o)b*,x', 'é*(ü)', 'nul\0byte', ')(', '|(uid=*)'];
  for (const v of hostile) {
    it(`round-trips ${JSON.stringify(v)} through ldapts as one equality assertion`, () => {
      const f = FilterParser.parseString(`(&(objectClass=inetOrgPerson)(uid=${escapeFilterValue(v)}))`);
      assert.ok(f instanceof AndFilter);
      assert.equal(f.filters.length, 2);
      const eq = f.filters[1];
      assert.ok(eq instanceof EqualityFilter, `${JSON.stringify(v)} must stay an equality filter, got ${eq.constructor.name}`);
      assert.equal(eq.attribute, 'uid');
      assert.equal(eq.value, v);
    });
  }

  it('a prefix search keeps its one trailing wildcard and nothing else', () => {
    const f = FilterParser.parseString(`(uid=${escapeFilterValue('a*b(')}*)`);
    assert.ok(f instanceof SubstringFilter);
    assert.equal(f.initial, 'a*b(');
    assert.deepEqual(f.any, []);
    assert.equal(f.final, '');
  });
});

describe('escapeDnValue', () => {
  it('escapes RFC 4514 specials, a leading space or #, a trailing space and NUL', () => {
    assert.equal(escapeDnValue('a,b'), 'a\\,b');
    assert.equal(escapeDnValue('a+b=c'), 'a\\+b\\=c');
    assert.equal(escapeDnValue('"q"<x>;'), '\\"q\\"\\<x\\>\\;');
    assert.equal(escapeDnValue('back\\slash'), 'back\\\\slash');
    assert.equal(escapeDnValue('#hash'), '\\#hash');
    assert.equal(escapeDnValue(' lead'), '\\ lead');
    assert.equal(escapeDnValue('trail '), 'trail\\ ');
    assert.equal(escapeDnValue(' '), '\\ ');
    assert.equal(escapeDnValue('mid#dle sp'), 'mid#dle sp');
    assert.equal(escapeDnValue('a\\ '), 'a\\\\\\ ');
    assert.equal(escapeDnValue('n\0l'), 'n\\00l');
    assert.equal(escapeDnValue('Zoë'), 'Zoë');
  });

  for (const v of ['a,b', 'x+y', 'cn=evil,dc=org', ' spaced ', '#1', 'q"uote', 'back\\', 'r(o)b*,x', 'é,ü', 'a\\ ']) {
    it(`reads back ${JSON.stringify(v)} as one RDN value`, () => {
      const rdns = parseDn(`uid=${escapeDnValue(v)},ou=people,dc=example,dc=com`);
      assert.ok(rdns, 'parses');
      assert.equal(rdns.length, 4);
      assert.deepEqual(rdns[0], [{ type: 'uid', value: v }]);
    });
  }
});

describe('parseDn / firstRdnValue (group ids from memberOf)', () => {
  it('takes the value of the first RDN', () => {
    assert.equal(firstRdnValue('cn=devs,ou=groups,dc=example,dc=com'), 'devs');
    assert.equal(firstRdnValue('CN=Domain Admins,CN=Users,DC=corp,DC=example'), 'Domain Admins');
    assert.equal(firstRdnValue('cn = spaced , ou=x'), 'spaced');
    assert.equal(firstRdnValue('cn=solo'), 'solo');
  });

  it('undoes backslash and hex escapes (UTF-8 hex pairs included)', () => {
    assert.equal(firstRdnValue('cn=R\\26D\\2C Europe,ou=groups,dc=x'), 'R&D, Europe');
    assert.equal(firstRdnValue('cn=a\\,b\\+c,dc=x'), 'a,b+c');
    assert.equal(firstRdnValue('cn=Caf\\C3\\A9,dc=x'), 'Café');
    assert.equal(firstRdnValue('cn=\\ lead and trail\\ ,dc=x'), ' lead and trail ');
    assert.equal(firstRdnValue('uid=r(o)b*\\2Cx,ou=people,dc=example,dc=com'), 'r(o)b*,x');
  });

  it('takes the first value of a multi-valued RDN', () => {
    assert.equal(firstRdnValue('cn=devs+gidNumber=5000,ou=groups,dc=x'), 'devs');
    assert.deepEqual(parseDn('cn=devs+gidNumber=5000,dc=x')?.[0], [
      { type: 'cn', value: 'devs' },
      { type: 'gidNumber', value: '5000' },
    ]);
  });

  it('accepts OID attribute types and semicolon separators', () => {
    assert.equal(firstRdnValue('2.5.4.3=oid-named,dc=x'), 'oid-named');
    assert.equal(parseDn('cn=a;dc=x')?.length, 2);
  });

  it('refuses what is not a DN', () => {
    for (const bad of ['devs', 'cn', '=x', 'cn=a,', 'cn=a,,dc=x', 'c n=a', 'cn=a\\', 'cn=<x>']) {
      assert.equal(parseDn(bad), null, JSON.stringify(bad));
      assert.equal(firstRdnValue(bad), null, JSON.stringify(bad));
      assert.equal(isDn(bad), false, JSON.stringify(bad));
    }
    assert.deepEqual(parseDn(''), []);
    assert.equal(firstRdnValue(''), null);
  });
});

describe('formatMember (static group member values)', () => {
  it('${dn} is the DN the directory returned', () => {
    assert.equal(formatMember('${dn}', 'alice', 'uid=alice,ou=people,dc=x'), 'uid=alice,ou=people,dc=x');
  });

  it('${username} alone is the bare id (posixGroup memberUid)', () => {
    assert.equal(formatMember('${username}', 'r(o)b*,x', 'ignored'), 'r(o)b*,x');
  });

  it('${username} inside a DN template is DN-escaped', () => {
    assert.equal(formatMember('uid=${username},ou=people,dc=x', 'r(o)b*,x', 'ignored'), 'uid=r(o)b*\\,x,ou=people,dc=x');
    assert.equal(firstRdnValue(formatMember('uid=${username},ou=people,dc=x', 'evil,ou=admins', '')), 'evil,ou=admins');
  });
});

describe('isAttributeName / underBase', () => {
  it('accepts names, options and OIDs; refuses anything that could reshape a filter', () => {
    for (const ok of ['uid', 'memberOf', 'sAMAccountName', 'x-custom-1', 'userCertificate;binary', '2.5.4.3']) assert.ok(isAttributeName(ok), ok);
    for (const bad of ['', 'uid)(x', 'u id', '*', 'uid=', '1uid', 'cn;', 'a\\b']) assert.equal(isAttributeName(bad), false, bad);
  });

  it('joins relative bases to the search base', () => {
    assert.equal(underBase('ou=people', 'dc=example,dc=com'), 'ou=people,dc=example,dc=com');
    assert.equal(underBase('', 'dc=example,dc=com'), 'dc=example,dc=com');
    assert.equal(underBase('  ', 'dc=example,dc=com'), 'dc=example,dc=com');
  });
});
