/** METADATA read out of a wheel by ranged reads of its central directory and one entry. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { readWheelMetadata, WheelError } from '../../formats/pypi/wheel.js';
import { parseCoreMetadata } from '../../formats/pypi/core-metadata.js';
import { buildWheel } from '../helpers/pypi-dist.js';

describe('wheel METADATA', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(tmpdir(), 'pypi-wheel-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Opens ranges of `file`, recording each range read. */
  function opener(file: string, reads: Array<[number, number]>) {
    return async (start: number, end: number) => {
      reads.push([start, end]);
      return createReadStream(file, { start, end });
    };
  }

  it('reads METADATA with ranged reads only (never the whole wheel)', async () => {
    // A wheel with a large incompressible module: reading it whole would show in the bytes read.
    const code = `DATA = ${JSON.stringify(randomBytes(300_000).toString('base64'))}\n`;
    const file = buildWheel(dir, { name: 'Demo-Pkg', version: '1.0', requiresPython: '>=3.8', requiresDist: ['idna>=2'], code });
    const size = statSync(file).size;
    const reads: Array<[number, number]> = [];
    const bytes = await readWheelMetadata(opener(file, reads), size, 'Demo_Pkg', '1.0');
    const m = parseCoreMetadata(bytes.toString('utf8'));
    assert.equal(m.name, 'Demo-Pkg');
    assert.equal(m.requiresPython, '>=3.8');
    assert.deepEqual(m.requiresDist, ['idna>=2']);
    const total = reads.reduce((n, [s, e]) => n + (e - s + 1), 0);
    assert.ok(size > 200_000, `wheel is ${size} bytes`);
    assert.ok(total < 70_000, `read ${total} of ${size} bytes`);
  });

  it('refuses what is not a zip, a zip without METADATA, and a truncated zip', async () => {
    const junk = path.join(dir, 'junk.whl');
    writeFileSync(junk, 'this is not a zip file at all, just text');
    await assert.rejects(readWheelMetadata(opener(junk, []), statSync(junk).size, 'junk', '1.0'), (e) => e instanceof WheelError && /not a valid zip/.test(e.message));
    const none = buildWheel(path.join(dir, 'none'), { name: 'nometa', version: '1.0', noMetadata: true });
    await assert.rejects(
      readWheelMetadata(opener(none, []), statSync(none).size, 'nometa', '1.0'),
      (e) => e instanceof WheelError && /no nometa-1.0.dist-info\/METADATA/.test(e.message),
    );
    const good = buildWheel(path.join(dir, 'cut'), { name: 'cut', version: '1.0' });
    const cut = path.join(dir, 'cut.whl');
    writeFileSync(cut, readFileSync(good).subarray(0, statSync(good).size - 30));
    await assert.rejects(readWheelMetadata(opener(cut, []), statSync(cut).size, 'cut', '1.0'), WheelError);
  });

  it('matches the dist-info folder of the name and version asked for', async () => {
    const file = buildWheel(path.join(dir, 'v'), { name: 'vpkg', version: '2.0' });
    await assert.rejects(readWheelMetadata(opener(file, []), statSync(file).size, 'vpkg', '3.0'), WheelError);
    assert.ok((await readWheelMetadata(opener(file, []), statSync(file).size, 'VPKG', '2.0')).length > 0);
  });
});
