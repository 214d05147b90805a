import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IngestOwner, LIVE_WINDOW_MS } from '../../src/blob/ingest-owner.js';
import { GzipEndCheck, isCloseDelimited } from '../../src/proxy/body-check.js';

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('IngestOwner: what blob GC may take', () => {
  const now = Date.now();
  const old = now - 5_000;

  it('never what this owner has open, whatever the grace; what it closed, past the grace', () => {
    const o = new IngestOwner();
    const name = `content/ab/cd/0123-${o.tag}`;
    o.add(name);
    assert.equal(o.collectable(name, old, 0, now), false);
    o.delete(name);
    assert.equal(o.collectable(name, old, 0, now), true);
    assert.equal(o.collectable(name, old, 10_000, now), false, 'the grace still applies');
  });

  it('what a process of this machine that has exited left behind, at once', () => {
    const o = new IngestOwner();
    const host = o.tag.split('-')[0];
    if (host === 'xxxxxxxx') return; // no /proc: PIDs are never judged
    assert.equal(o.collectable(`abc-${host}-${deadPid()}-abcdef`, old, 0, now), true);
  });

  it('a live process, another node, or an untagged name: only past the live window', () => {
    const o = new IngestOwner();
    const other = new IngestOwner(); // same process, another blob service: cannot know what it has open
    for (const name of [`x-${other.tag}`, 'x-0badc0de-1-abcdef', 'content/ab/cd/0123456789abcdef']) {
      assert.equal(o.collectable(name, old, 0, now), false, name);
      assert.equal(o.collectable(name, now - LIVE_WINDOW_MS - 1, 0, now), true, name);
    }
  });
});

async function gzipEnd(body: Buffer, pieces = 7): Promise<string> {
  const check = new GzipEndCheck();
  const step = Math.ceil(body.length / pieces) || 1;
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; i += step) chunks.push(body.subarray(i, i + step));
  let out = 0;
  await pipeline(Readable.from(chunks), check, new Writable({ write: (c: Buffer, _e, cb) => ((out += c.length), cb()) }));
  assert.equal(out, body.length, 'passes every byte through');
  return check.result;
}

describe('GzipEndCheck', () => {
  const gz = gzipSync(Buffer.from('some text, '.repeat(50_000)));
  it('a whole gzip stream is complete, a cut one truncated, anything else not gzip', async () => {
    assert.equal(await gzipEnd(gz), 'complete');
    assert.equal(await gzipEnd(gz.subarray(0, gz.length - 4)), 'truncated');
    assert.equal(await gzipEnd(gz.subarray(0, Math.floor(gz.length / 2))), 'truncated');
    assert.equal(await gzipEnd(Buffer.from('plain text')), 'not-gzip');
    assert.equal(await gzipEnd(Buffer.from([0x1f, 0x8b, 0xff, 0xff, 0x00, 0x01])), 'not-gzip');
    assert.equal(await gzipEnd(gz, gz.length), 'complete', 'one byte at a time');
  });
  it('close-delimited: neither a Content-Length nor chunked', () => {
    assert.equal(isCloseDelimited({}), true);
    assert.equal(isCloseDelimited({ 'content-length': '3' }), false);
    assert.equal(isCloseDelimited({ 'transfer-encoding': 'chunked' }), false);
    assert.equal(isCloseDelimited({ 'transfer-encoding': 'gzip, chunked' }), false);
  });
});
