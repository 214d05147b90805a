/**
 * The ingest pool (src/blob/ingest-buffers.ts): a FileSink hands re-cut buffers back once written,
 * and reusing them never mixes the bytes of bodies written at the same time.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestStream } from '../../src/blob/digest-stream.js';
import { FileSink, freeIngestBuffers, giveIngestBuffer, takeIngestBuffer } from '../../src/blob/ingest-buffers.js';

const dir = mkdtempSync(path.join(tmpdir(), 'stowage-ingest-'));

/** Feeds `data` in uneven chunks, on later ticks, as a socket would. */
function body(data: Buffer): Readable {
  let off = 0;
  let i = 0;
  return new Readable({
    read() {
      setImmediate(() => {
        if (off >= data.length) return this.push(null);
        const n = 1 + ((i++ * 65_537) % 200_000);
        this.push(data.subarray(off, off + n));
        off += n;
      });
    },
  });
}

describe('ingest buffers', () => {
  it('only buffers of the pool are kept when handed back', () => {
    const before = freeIngestBuffers();
    giveIngestBuffer(Buffer.alloc(1024 * 1024));
    assert.equal(freeIngestBuffers(), before, 'a foreign buffer is not pooled');
    const b = takeIngestBuffer();
    giveIngestBuffer(b.subarray(0, 10));
    assert.equal(freeIngestBuffers(), before + 1, 'a view of a pool buffer brings the whole buffer back');
  });

  it('bodies written at once through re-cut streams and FileSinks come out intact, and the buffers go back', async () => {
    const bodies = Array.from({ length: 5 }, (_, i) => randomBytes(3 * 1024 * 1024 + i * 77_777));
    const files = bodies.map((_, i) => path.join(dir, `f${i}`));
    const digests = bodies.map(() => new DigestStream({}, true));
    await Promise.all(bodies.map((b, i) => pipeline(body(b), digests[i], new FileSink(files[i]))));
    bodies.forEach((b, i) => {
      assert.ok(readFileSync(files[i]).equals(b), `file ${i} differs`);
      assert.equal(digests[i].digests().size, b.length);
    });
    assert.ok(freeIngestBuffers() >= 5, `buffers handed back: ${freeIngestBuffers()}`);
  });

  it("FileSink appends with 'a' and reports the bytes written", async () => {
    const f = path.join(dir, 'append');
    const a = randomBytes(100_000);
    const b = randomBytes(2_500_000);
    const s1 = new FileSink(f);
    await pipeline(body(a), new DigestStream({}, true), s1);
    const s2 = new FileSink(f, 'a');
    await pipeline(body(b), new DigestStream({}, true), s2);
    assert.equal(s1.bytesWritten, a.length);
    assert.equal(s2.bytesWritten, b.length);
    assert.ok(readFileSync(f).equals(Buffer.concat([a, b])));
  });
});
