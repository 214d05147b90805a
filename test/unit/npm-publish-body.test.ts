import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { scanPublishBody, type StreamedAttachment } from '../../formats/npm/publish-body.js';
import { publishBody } from '../helpers/npm-gen.js';

/** The body cut into chunks of the given sizes (cycled). */
function chunked(buf: Buffer, sizes: number[]): Readable {
  const parts: Buffer[] = [];
  for (let i = 0, k = 0; i < buf.length; k++) {
    const n = sizes[k % sizes.length];
    parts.push(buf.subarray(i, i + n));
    i += n;
  }
  return Readable.from(parts);
}

async function scan(body: Buffer, sizes: number[], max = 1 << 20) {
  let got = null as Promise<Buffer> | null;
  let key = '';
  const r = await scanPublishBody(chunked(body, sizes), max, (a: StreamedAttachment) => {
    key = a.key;
    got = (async () => {
      const out: Buffer[] = [];
      for await (const c of a.stream) out.push(c as Buffer);
      return Buffer.concat(out);
    })();
    got.catch(() => undefined); // a refused body fails the stream too; the scan reports why
  });
  return { r, key, bytes: got ? await got : null };
}

describe('npm publish body scanner', () => {
  const tarball = randomBytes(70_001);
  const body = Buffer.from(
    JSON.stringify(publishBody({ name: '@s/n', version: '1.0.0', manifest: { description: 'quote " and \\\\ and "data": "x"' } }, 'http://r/', { tarball })),
  );

  for (const sizes of [[1], [3, 7], [4096], [body.length]]) {
    it(`streams the tarball out and keeps the rest (chunks ${sizes.join(',')})`, async () => {
      const { r, key, bytes } = await scan(body, sizes);
      assert.equal(key, '@s/n-1.0.0.tgz');
      assert.ok(bytes && bytes.equals(tarball));
      assert.equal(r.attachment!.size, tarball.length);
      const doc = r.doc as { _attachments: Record<string, { data: string; length: number }>; versions: Record<string, { description: string }> };
      assert.equal(doc._attachments['@s/n-1.0.0.tgz'].data, '');
      assert.equal(doc._attachments['@s/n-1.0.0.tgz'].length, tarball.length);
      assert.equal(doc.versions['1.0.0'].description, 'quote " and \\\\ and "data": "x"');
    });
  }

  it('refuses truncated bodies, bad JSON, escapes in the data, and oversized documents', async () => {
    await assert.rejects(scan(body.subarray(0, body.length - 40_000), [1000]), /ends inside the tarball/);
    await assert.rejects(scan(body.subarray(0, body.length - 3), [1000]), /ends early/);
    await assert.rejects(scan(Buffer.from('{"_attachments":{"a.tgz":{"data":"QU\\/B"}}}'), [5]), /escape/);
    await assert.rejects(scan(Buffer.from('{"a":1,}x'), [5]), /not valid JSON/);
    await assert.rejects(scan(body, [4096], 100), /exceeds/);
  });

  it('leaves bodies without a tarball to the caller', async () => {
    const { r, bytes } = await scan(Buffer.from('{"name":"x","versions":{"1.0.0":{"deprecated":"old"}}}'), [2]);
    assert.equal(bytes, null);
    assert.equal(r.attachment, null);
    assert.deepEqual(r.doc, { name: 'x', versions: { '1.0.0': { deprecated: 'old' } } });
  });
});
