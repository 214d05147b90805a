/**
 * contentDisposition: an ASCII `filename=` every client reads, plus `filename*=UTF-8''…`
 * (RFC 6266 / RFC 8187) when the name is not plain ASCII; always a valid Node header value.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { contentDisposition } from '../../src/http/content-disposition.js';

const FIXTURES: Array<[string, string]> = [
  ['report.pdf', 'attachment; filename="report.pdf"'],
  ['a b (1).txt', 'attachment; filename="a b (1).txt"'],
  ['say "hi"\\.txt', `attachment; filename="say _hi__.txt"; filename*=UTF-8''say%20%22hi%22%5C.txt`],
  ['café.txt', `attachment; filename="caf_.txt"; filename*=UTF-8''caf%C3%A9.txt`],
  ['日本語.txt', `attachment; filename="___.txt"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt`],
  ['€ 100%.bin', `attachment; filename="_ 100%.bin"; filename*=UTF-8''%E2%82%AC%20100%25.bin`],
  ["it's(*).zip\n", `attachment; filename="it's(*).zip_"; filename*=UTF-8''it%27s%28%2A%29.zip%0A`],
  ['🙂.png', `attachment; filename="_.png"; filename*=UTF-8''%F0%9F%99%82.png`],
  ['lone\ud800.bin', `attachment; filename="lone_.bin"; filename*=UTF-8''lone%EF%BF%BD.bin`],
];

describe('contentDisposition', () => {
  for (const [name, expected] of FIXTURES) {
    it(`encodes ${JSON.stringify(name)}`, () => {
      const value = contentDisposition('attachment', name);
      assert.equal(value, expected);
      // Node accepts it as a header value (it refuses characters above U+00FF and CR/LF).
      assert.doesNotThrow(() => http.validateHeaderValue('Content-Disposition', value));
      // filename* decodes back to the name (lone surrogates excepted).
      const ext = /filename\*=UTF-8''(.*)$/.exec(value)?.[1];
      if (ext && !name.includes('\ud800')) assert.equal(decodeURIComponent(ext), name);
    });
  }

  it('inline keeps the same encoding', () => {
    assert.equal(contentDisposition('inline', 'ü'), `inline; filename="_"; filename*=UTF-8''%C3%BC`);
  });
});
