/**
 * The streaming tar reader and writer: round trips (ustar, pax long names), interoperability
 * with GNU tar in both directions (its gnu and pax formats), gzip, and malformed input refused
 * with a 400 naming the problem.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { readTar, tarLength, writeTar, normaliseEntryName, type TarWriteEntry } from '../../src/archive/tar.js';
import { AppError } from '../../src/errors.js';

async function collect(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Reads every entry, bodies included (optionally in tiny input chunks). */
async function readAll(data: Buffer, opts: { chunk?: number; gunzip?: boolean } = {}) {
  const chunks: Buffer[] = [];
  const step = opts.chunk ?? data.length;
  for (let i = 0; i < data.length; i += step) chunks.push(data.subarray(i, i + step));
  const out: Array<{ name: string; type: string; size: number; linkname: string; body: Buffer }> = [];
  for await (const e of readTar(Readable.from(chunks, { objectMode: false }), { gunzip: opts.gunzip })) {
    out.push({ name: e.header.name, type: e.header.type, size: e.header.size, linkname: e.header.linkname, body: await collect(e.body) });
  }
  return out;
}

const badTar = (pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof AppError, `expected an AppError, got ${String(e)}`);
  assert.equal(e.status, 400);
  assert.match(e.message, pattern);
  return true;
};

const longName = 'a'.repeat(60) + '/' + 'b'.repeat(70) + '/' + 'c'.repeat(120) + '.txt';

let work: string;
before(() => (work = mkdtempSync(path.join(tmpdir(), 'stowage-tar-'))));
after(() => rmSync(work, { recursive: true, force: true }));

describe('tar writer and reader', () => {
  const big = randomBytes(700_000);
  const entries: TarWriteEntry[] = [
    { name: 'dir', size: 0, type: 'directory' },
    { name: 'dir/small.txt', size: 5, body: Buffer.from('hello') },
    { name: 'dir/empty', size: 0, body: Buffer.alloc(0) },
    { name: 'x/'.repeat(60) + 'prefixed.bin', size: 3, body: Buffer.from('abc') },
    { name: longName, size: big.length, body: () => Readable.from([big.subarray(0, 1000), big.subarray(1000)]) },
    { name: 'link', size: 0, type: 'symlink', linkname: '../elsewhere/' + 'l'.repeat(120) },
    { name: 'blocky', size: 1024, body: Buffer.alloc(1024, 7) },
  ];

  it('round trips entries, long names via ustar prefix and pax, in any input chunking', async () => {
    const tar = await collect(writeTar(entries));
    assert.equal(tar.length % 512, 0);
    assert.equal(tar.length, tarLength(entries));
    for (const chunk of [tar.length, 1, 511, 513, 4096]) {
      const got = await readAll(tar, { chunk });
      assert.deepEqual(
        got.map((g) => [g.name, g.type, g.size]),
        [
          ['dir', 'directory', 0],
          ['dir/small.txt', 'file', 5],
          ['dir/empty', 'file', 0],
          ['x/'.repeat(60) + 'prefixed.bin', 'file', 3],
          [longName, 'file', big.length],
          ['link', 'symlink', 0],
          ['blocky', 'file', 1024],
        ],
      );
      assert.equal(got[1].body.toString(), 'hello');
      assert.ok(got[4].body.equals(big));
      assert.equal(got[5].linkname, '../elsewhere/' + 'l'.repeat(120));
      assert.ok(got[6].body.equals(Buffer.alloc(1024, 7)));
    }
  });

  it('writes archives GNU tar extracts', async () => {
    const file = path.join(work, 'ours.tar');
    writeFileSync(file, await collect(writeTar(entries)));
    const list = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
    assert.ok(list.includes(longName), list.join('\n'));
    const dest = path.join(work, 'extract');
    mkdirSync(dest);
    execFileSync('tar', ['-xf', file, '-C', dest]);
    assert.ok(readFileSync(path.join(dest, longName)).equals(big));
    assert.equal(readFileSync(path.join(dest, 'dir/small.txt'), 'utf8'), 'hello');
  });

  for (const format of ['gnu', 'pax', 'ustar']) {
    it(`reads GNU tar's ${format} format (long names: ${format === 'ustar' ? 'prefix' : format})`, async () => {
      const src = path.join(work, `src-${format}`);
      const name = format === 'ustar' ? 'p/'.repeat(50) + 'file.bin' : longName;
      mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
      const data = randomBytes(10_000);
      writeFileSync(path.join(src, name), data);
      const file = path.join(work, `gnu-${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-cf', file, '-C', src, name]);
      const got = await readAll(readFileSync(file), { chunk: 777 });
      const entry = got.find((g) => g.name === name);
      assert.ok(entry, got.map((g) => g.name).join(', '));
      assert.ok(entry.body.equals(data));
    });
  }

  it("reads GNU tar's hard links and symlinks as such", async () => {
    const src = path.join(work, 'links');
    mkdirSync(src);
    writeFileSync(path.join(src, 'target.txt'), 'target');
    execFileSync('ln', [path.join(src, 'target.txt'), path.join(src, 'hard.txt')]);
    execFileSync('ln', ['-s', 'target.txt', path.join(src, 'soft.txt')]);
    const file = path.join(work, 'links.tar');
    execFileSync('tar', ['-cf', file, '-C', src, 'target.txt', 'hard.txt', 'soft.txt']);
    const got = await readAll(readFileSync(file));
    assert.deepEqual(
      got.map((g) => [g.name, g.type, g.linkname, g.body.toString()]),
      [
        ['target.txt', 'file', '', 'target'],
        ['hard.txt', 'link', 'target.txt', ''],
        ['soft.txt', 'symlink', 'target.txt', ''],
      ],
    );
  });

  it('gunzips transparently when asked and the input starts with the gzip magic', async () => {
    const tar = await collect(writeTar(entries.slice(0, 3)));
    const got = await readAll(gzipSync(tar), { gunzip: true, chunk: 100 });
    assert.deepEqual(
      got.map((g) => g.name),
      ['dir', 'dir/small.txt', 'dir/empty'],
    );
    // Not gzip: read as is.
    assert.equal((await readAll(tar, { gunzip: true })).length, 3);
  });

  it('lets a consumer skip a body (the rest is drained)', async () => {
    const tar = await collect(writeTar(entries));
    const names: string[] = [];
    for await (const e of readTar(Readable.from([tar]))) {
      names.push(e.header.name);
      if (e.header.size > 0) e.body.read(0); // leave it unread
    }
    assert.equal(names.length, entries.length);
  });

  it('refuses a body of the wrong size when writing', async () => {
    await assert.rejects(collect(writeTar([{ name: 'f', size: 10, body: Buffer.from('short') }])), /expected 10 bytes, got 5/);
    await assert.rejects(collect(writeTar([{ name: 'f', size: 2, body: () => Readable.from([Buffer.from('longer')]) }])), /expected 2 bytes/);
  });
});

describe('tar reader: malformed input', () => {
  const one = async (name: string, body: Buffer) => collect(writeTar([{ name, size: body.length, body }]));

  it('refuses a header with a bad checksum', async () => {
    const tar = await one('ok.txt', Buffer.from('data'));
    const two = Buffer.concat([tar.subarray(0, 1024), tar]); // ok.txt, then a second copy
    two[1024 + 10] ^= 0xff; // corrupt the second header's name
    await assert.rejects(readAll(two), badTar(/bad header checksum in entry 1/));
  });

  it('refuses input that is not a tar archive', async () => {
    await assert.rejects(readAll(Buffer.from('{"this is": "json, not a tar"}')), badTar(/truncated header|not a tar/));
    await assert.rejects(readAll(randomBytes(2048)), badTar(/not a tar archive/));
    await assert.rejects(readAll(Buffer.alloc(0)), badTar(/empty input/));
    await assert.rejects(readAll(Buffer.alloc(1024)), badTar(/no entries/));
  });

  it('refuses a truncated entry body and a truncated header', async () => {
    const tar = await one('big.bin', randomBytes(5000));
    await assert.rejects(readAll(tar.subarray(0, 512 + 3000)), badTar(/truncated entry 0 \(big\.bin\)/));
    await assert.rejects(readAll(tar.subarray(0, 512 + 5120 + 100)), badTar(/truncated header/));
  });

  it('refuses names that escape the archive', async () => {
    for (const bad of ['../etc/passwd', 'a/../../b', 'x/..']) {
      const tar = await one('placeholder', Buffer.from('x'));
      // Write the bad name into the header and fix its checksum.
      const hdr = tar.subarray(0, 512);
      hdr.fill(0, 0, 100);
      hdr.write(bad, 0, 'utf8');
      hdr.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of hdr) sum += b;
      hdr.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
      await assert.rejects(readAll(tar), badTar(/contains '\.\.'/), bad);
    }
    assert.throws(() => normaliseEntryName('/abs/../x'), badTar(/'\.\.'/));
    assert.equal(normaliseEntryName('./a//b/'), 'a/b');
    assert.equal(normaliseEntryName('/abs/path'), 'abs/path');
  });

  it('refuses bad gzip data', async () => {
    const gz = gzipSync(await one('f', randomBytes(100_000)));
    await assert.rejects(readAll(gz.subarray(0, gz.length / 2), { gunzip: true }), badTar(/gzip|truncated/));
  });

  it('stores sha256 of GNU tar output identical to the input bytes', async () => {
    // Sanity for the hashing callers rely on: bodies come out byte-exact.
    const data = randomBytes(123_457);
    const tar = await one('blob', data);
    const [e] = await readAll(tar, { chunk: 1000 });
    assert.equal(createHash('sha256').update(e.body).digest('hex'), createHash('sha256').update(data).digest('hex'));
  });
});
