/** Maven's version order (formats/maven/version.ts) against Maven 3.8's own ComparableVersionTest cases. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonical, compareComponentVersions, compareVersions, highest, isSnapshot } from '../../formats/maven/version.js';

// ComparableVersionTest.VERSIONS_QUALIFIER and VERSIONS_NUMBER: each strictly before the next.
const VERSIONS_QUALIFIER = [
  '1-alpha2snapshot',
  '1-alpha2',
  '1-alpha-123',
  '1-beta-2',
  '1-beta123',
  '1-m2',
  '1-m11',
  '1-rc',
  '1-cr2',
  '1-rc123',
  '1-SNAPSHOT',
  '1',
  '1-sp',
  '1-sp2',
  '1-sp123',
  '1-abc',
  '1-def',
  '1-pom-1',
  '1-1-snapshot',
  '1-1',
  '1-2',
  '1-123',
];
const VERSIONS_NUMBER = [
  '2.0',
  '2-1',
  '2.0.a',
  '2.0.0.a',
  '2.0.2',
  '2.0.123',
  '2.1.0',
  '2.1-a',
  '2.1b',
  '2.1-c',
  '2.1-1',
  '2.1.0.1',
  '2.2',
  '2.123',
  '11.a2',
  '11.a11',
  '11.b2',
  '11.b11',
  '11.m2',
  '11.m11',
  '11',
  '11.a',
  '11b',
  '11c',
  '11m',
];

function checkOrder(versions: string[]): void {
  for (let i = 0; i < versions.length; i++) {
    for (let j = i + 1; j < versions.length; j++) {
      assert.ok(compareVersions(versions[i], versions[j]) < 0, `${versions[i]} < ${versions[j]}`);
      assert.ok(compareVersions(versions[j], versions[i]) > 0, `${versions[j]} > ${versions[i]}`);
    }
  }
}

function checkEqual(a: string, b: string): void {
  assert.equal(compareVersions(a, b), 0, `${a} == ${b}`);
  assert.equal(compareVersions(b, a), 0, `${b} == ${a}`);
  assert.equal(canonical(a), canonical(b), `canonical ${a} == ${b}`);
}

describe('Maven ComparableVersion', () => {
  it('orders qualifiers (VERSIONS_QUALIFIER)', () => checkOrder(VERSIONS_QUALIFIER));
  it('orders numbers (VERSIONS_NUMBER)', () => checkOrder(VERSIONS_NUMBER));

  it('holds equal what Maven holds equal (testVersionsEqual)', () => {
    const pairs = [
      ['1', '1'],
      ['1', '1.0'],
      ['1', '1.0.0'],
      ['1.0', '1.0.0'],
      ['1', '1-0'],
      ['1', '1.0-0'],
      ['1.0', '1.0-0'],
      ['1a', '1-a'],
      ['1a', '1.0-a'],
      ['1a', '1.0.0-a'],
      ['1.0a', '1-a'],
      ['1.0.0a', '1-a'],
      ['1x', '1-x'],
      ['1x', '1.0-x'],
      ['1x', '1.0.0-x'],
      ['1.0x', '1-x'],
      ['1.0.0x', '1-x'],
      ['1ga', '1'],
      ['1release', '1'],
      ['1final', '1'],
      ['1cr', '1rc'],
      ['1a1', '1-alpha-1'],
      ['1b2', '1-beta-2'],
      ['1m3', '1-milestone-3'],
      ['1X', '1x'],
      ['1A', '1a'],
      ['1B', '1b'],
      ['1M', '1m'],
      ['1Ga', '1'],
      ['1GA', '1'],
      ['1RELEASE', '1'],
      ['1FINAL', '1'],
      ['1Cr', '1Rc'],
      ['1cR', '1rC'],
      ['1m3', '1Milestone3'],
      ['1m3', '1MileStone3'],
      ['1m3', '1MILESTONE3'],
    ];
    for (const [a, b] of pairs) checkEqual(a, b);
  });

  it('compares as testVersionComparing does', () => {
    const pairs = [
      ['1', '2'],
      ['1.5', '2'],
      ['1', '2.5'],
      ['1.0', '1.1'],
      ['1.1', '1.2'],
      ['1.0.0', '1.1'],
      ['1.0.1', '1.1'],
      ['1.1', '1.2.0'],
      ['1.0-alpha-1', '1.0'],
      ['1.0-alpha-1', '1.0-alpha-2'],
      ['1.0-alpha-1', '1.0-beta-1'],
      ['1.0-beta-1', '1.0-SNAPSHOT'],
      ['1.0-SNAPSHOT', '1.0'],
      ['1.0-alpha-1-SNAPSHOT', '1.0-alpha-1'],
      ['1.0', '1.0-1'],
      ['1.0-1', '1.0-2'],
      ['1.0.0', '1.0-1'],
      ['2.0-1', '2.0.1'],
      ['2.0.1-klm', '2.0.1-lmn'],
      ['2.0.1', '2.0.1-xyz'],
      ['2.0.1', '2.0.1-123'],
      ['2.0.1-xyz', '2.0.1-123'],
    ];
    for (const [a, b] of pairs) checkOrder([a, b]);
  });

  it('is transitive where MNG-5568 found it was not', () => checkOrder(['6.1.0rc3', '6.1.0', '6.1H.5-beta']));

  it('compares numbers of any length (MNG-6572)', () => checkOrder(['20190126.230843', '1234567890.12345', '123456789012345.1H.5-beta', '12345678901234567890.1H.5-beta']));

  it('ignores leading zeros', () => {
    checkEqual('0.7', '00.7');
    checkEqual('1.010', '1.10');
    checkOrder(['1.09', '1.10']);
  });

  it('orders timestamped snapshots of one version by build (after the release, as Maven does: they are numbers)', () => {
    checkOrder(['1.0-SNAPSHOT', '1.0', '1.0-20261201.120000-3', '1.0-20261201.130000-4']);
  });

  it('ranks a timestamped build as its -SNAPSHOT base version for components (retain N), builds by timestamp then number', () => {
    const order = ['1.0-alpha', '1.0-20261201.120000-3', '1.0-20261201.130000-4', '1.0-20261202.010000-5', '1.0', '1.9', '1.10-SNAPSHOT', '1.10-20261101.100000-1', '1.10'];
    for (let i = 0; i < order.length; i++)
      for (let j = 0; j < order.length; j++) assert.equal(Math.sign(compareComponentVersions(order[i], order[j])), Math.sign(i - j), `${order[i]} vs ${order[j]}`);
  });

  it('knows snapshots and the highest version', () => {
    assert.equal(isSnapshot('1.0-SNAPSHOT'), true);
    assert.equal(isSnapshot('1.0-20261201.120000-3'), true);
    assert.equal(isSnapshot('1.0'), false);
    assert.equal(isSnapshot('1.0-snapshot-x'), false);
    assert.equal(highest(['1.9', '1.10', '1.10-SNAPSHOT', '1.2']), '1.10');
    assert.equal(highest([]), null);
  });
});
