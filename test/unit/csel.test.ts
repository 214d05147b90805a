/**
 * Content selector expressions (the Nexus CSEL subset): parsing, evaluation and errors with
 * their position, from fixtures.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CselError, compileCsel, MAX_REGEX_LENGTH, parseCsel } from '../../src/security/csel.js';

interface Case {
  expression: string;
  /** [format, path, expected] */
  checks: Array<[string, string, boolean]>;
}

const CASES: Case[] = [
  {
    expression: 'format == "raw"',
    checks: [
      ['raw', '/a', true],
      ['npm', '/a', false],
    ],
  },
  {
    expression: "format != 'raw'",
    checks: [
      ['raw', '/a', false],
      ['maven2', '/a', true],
    ],
  },
  {
    expression: 'path =^ "/team-a/"',
    checks: [
      ['raw', '/team-a/x.txt', true],
      ['raw', '/team-a/', true],
      ['raw', '/team-b/x', false],
      ['raw', '/team-a', false],
    ],
  },
  {
    expression: 'format == "maven2" and path =^ "/org/acme/"',
    checks: [
      ['maven2', '/org/acme/lib/1.0/lib-1.0.jar', true],
      ['raw', '/org/acme/x', false],
      ['maven2', '/org/other/x', false],
    ],
  },
  {
    expression: 'path =~ "/team-a/.*"',
    checks: [
      ['raw', '/team-a/x/y', true],
      ['raw', '/x/team-a/y', false],
    ],
  },
  // =~ matches the whole path, like Java's matches(): no implicit .* around the pattern.
  {
    expression: 'path =~ "team-a"',
    checks: [
      ['raw', '/team-a', false],
      ['raw', 'team-a', true],
    ],
  },
  // An escape JEXL does not know keeps its backslash: ".*\.jar" is the regex .*\.jar …
  {
    expression: String.raw`path =~ ".*\.jar"`,
    checks: [
      ['maven2', '/a/b.jar', true],
      ['maven2', '/a/bxjar', false],
    ],
  },
  {
    expression: String.raw`path =~ ".*\.pom|.*\.xml"`,
    checks: [
      ['maven2', '/a.pom', true],
      ['maven2', '/a.xml', true],
      ['maven2', '/a.jar', false],
    ],
  },
  // … and so is ".*\\.jar" (the backslash escaped, as JEXL also allows).
  {
    expression: String.raw`path =~ ".*\\.jar"`,
    checks: [
      ['maven2', '/a/b.jar', true],
      ['maven2', '/a/bxjar', false],
    ],
  },
  {
    expression: 'format == "raw" and (path =^ "/a/" or path =^ "/b/")',
    checks: [
      ['raw', '/a/1', true],
      ['raw', '/b/1', true],
      ['raw', '/c/1', false],
      ['npm', '/a/1', false],
    ],
  },
  // and binds tighter than or.
  {
    expression: 'path =^ "/a/" or path =^ "/b/" and format == "npm"',
    checks: [
      ['raw', '/a/1', true],
      ['raw', '/b/1', false],
      ['npm', '/b/1', true],
    ],
  },
  {
    expression: 'path =^ "/a/" || format == "npm" && path == "/x"',
    checks: [
      ['raw', '/a/1', true],
      ['npm', '/x', true],
      ['npm', '/y', false],
    ],
  },
  { expression: '((format == "raw"))', checks: [['raw', '/', true]] },
  {
    expression: 'path == "/it\'s" or path == \'/say "hi"\'',
    checks: [
      ['raw', "/it's", true],
      ['raw', '/say "hi"', true],
    ],
  },
  { expression: "path == '/it\\'s'", checks: [['raw', "/it's", true]] },
  { expression: 'path == "/\\u0041"', checks: [['raw', '/A', true]] },
  {
    expression: '  format=="raw"and path!="/x"  ',
    checks: [
      ['raw', '/y', true],
      ['raw', '/x', false],
    ],
  },
];

interface ErrorCase {
  expression: string;
  position: number;
  message: RegExp;
}

const ERRORS: ErrorCase[] = [
  { expression: '', position: 0, message: /Empty expression/ },
  { expression: 'format = "raw"', position: 7, message: /Unexpected character/ },
  { expression: 'format == raw', position: 10, message: /Expected a quoted string/ },
  { expression: 'name == "x"', position: 0, message: /Unknown identifier 'name'/ },
  { expression: 'coordinate.groupId == "x"', position: 0, message: /Unknown identifier/ },
  { expression: 'format == "raw" and', position: 19, message: /end of expression/ },
  { expression: '(format == "raw"', position: 16, message: /Expected '\)'/ },
  { expression: 'format == "raw")', position: 15, message: /Unexpected '\)'/ },
  { expression: 'format == "raw', position: 10, message: /Unterminated string/ },
  { expression: 'path =~ "[a-"', position: 8, message: /Invalid regular expression/ },
  { expression: 'path =~ "(a+)+"', position: 8, message: /nested unbounded quantifier/ },
  { expression: 'path =~ "(.*)*x"', position: 8, message: /nested unbounded quantifier/ },
  { expression: 'path =~ "((a|b)+c)*"', position: 8, message: /nested unbounded quantifier/ },
  { expression: `path =~ "${'a'.repeat(MAX_REGEX_LENGTH + 1)}"`, position: 8, message: /longer than/ },
  { expression: 'format == "raw" path == "/x"', position: 16, message: /Unexpected 'path'/ },
  { expression: 'format "raw"', position: 7, message: /Expected an operator/ },
];

describe('CSEL content selectors', () => {
  for (const c of CASES) {
    it(`evaluates ${c.expression}`, () => {
      const sel = compileCsel(c.expression);
      for (const [format, path, expected] of c.checks) {
        assert.equal(sel.matches({ format, path }), expected, `${c.expression} on ${format} ${path}`);
      }
    });
  }

  for (const e of ERRORS) {
    it(`refuses ${e.expression.slice(0, 40) || '(empty)'} at ${e.position}`, () => {
      assert.throws(
        () => parseCsel(e.expression),
        (err: unknown) => {
          assert.ok(err instanceof CselError, String(err));
          assert.match(err.message, e.message);
          assert.equal(err.position, e.position, err.message);
          assert.match(err.message, new RegExp(`at position ${e.position}$`));
          return true;
        },
      );
    });
  }

  it('accepts bounded quantifiers around groups and quantifiers inside them', () => {
    for (const re of ['(ab)+', '(a|b)*', '(a+)?', '/(x/)?.*', '([a-z]+\\.)?jar', '(a{1,3})+']) {
      assert.doesNotThrow(() => parseCsel(`path =~ "${re}"`), re);
    }
  });

  it('runs a long path against a regex quickly', () => {
    const sel = compileCsel('path =~ "/a(b|c)*d"');
    const start = Date.now();
    assert.equal(sel.matches({ format: 'raw', path: '/a' + 'b'.repeat(100_000) }), false);
    assert.ok(Date.now() - start < 1000);
  });
});
