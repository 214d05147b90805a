/**
 * parseJson, the REST API's one JSON reader: prototype keys are refused at any depth with a 400
 * naming them; everything else (such words as values, longer keys) is ordinary JSON.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseJson } from '../../src/api/body.js';
import { AppError } from '../../src/errors.js';

function refused(text: string, message: RegExp): void {
  assert.throws(
    () => parseJson(text),
    (e: unknown) => {
      assert.ok(e instanceof AppError, String(e));
      assert.equal(e.status, 400);
      assert.match(e.message, message);
      return true;
    },
    text,
  );
}

describe('parseJson', () => {
  it('refuses __proto__, constructor and prototype at any depth, naming them', () => {
    refused('{"__proto__":{"polluted":1}}', /^body: the key '__proto__' is not allowed$/);
    refused('{"a":{"b":[{"constructor":{}}]}}', /'constructor' is not allowed/);
    refused('[1,[2,{"prototype":null}]]', /'prototype' is not allowed/);
    refused('{"x":{"constructor":{"prototype":{}}}}', /keys 'prototype', 'constructor' are not allowed/);
  });

  it('leaves Object.prototype alone even when refusing', () => {
    refused('{"__proto__":{"pollutedByTest":1}}', /__proto__/);
    assert.equal(({} as Record<string, unknown>).pollutedByTest, undefined);
  });

  it('accepts the words as values and inside longer keys', () => {
    assert.deepEqual(parseJson('{"name":"__proto__","constructorName":"prototype","list":["constructor"]}'), {
      name: '__proto__',
      constructorName: 'prototype',
      list: ['constructor'],
    });
    assert.equal(parseJson('"constructor"'), 'constructor');
  });

  it('malformed JSON is a 400 that says so', () => {
    refused('{"a":', /^body: malformed JSON/);
  });
});
