/**
 * Worker thread that hashes chunks of many concurrent streams for the main thread, so the
 * digests of one upload are computed on two cores at once. The bytes arrive in slots of shared
 * memory the main thread registers once ('slot'); a 'data' message names a slot and a length,
 * and the slot goes back with the acknowledgement as soon as it is hashed.
 */
import { parentPort } from 'node:worker_threads';
import { createHash, type Hash } from 'node:crypto';

type Msg =
  | { op: 'start'; id: number; algorithms: string[] }
  | { op: 'slot'; slot: number; shared: SharedArrayBuffer }
  | { op: 'drop'; slot: number }
  | { op: 'data'; id: number; slot: number; length: number }
  | { op: 'end'; id: number }
  | { op: 'abort'; id: number };

const streams = new Map<number, { names: string[]; hashes: Hash[] }>();
const slots = new Map<number, Uint8Array>();

parentPort!.on('message', (m: Msg) => {
  switch (m.op) {
    case 'start':
      streams.set(m.id, { names: m.algorithms, hashes: m.algorithms.map((a) => createHash(a)) });
      break;
    case 'slot':
      slots.set(m.slot, new Uint8Array(m.shared));
      break;
    case 'drop':
      slots.delete(m.slot);
      break;
    case 'data': {
      const s = streams.get(m.id);
      const view = slots.get(m.slot);
      if (s && view) {
        const bytes = view.subarray(0, m.length);
        for (const h of s.hashes) h.update(bytes);
      }
      // Always hand the slot back, even for an aborted stream.
      parentPort!.postMessage({ op: 'ack', id: m.id, slot: m.slot });
      break;
    }
    case 'end': {
      const s = streams.get(m.id);
      const digests: Record<string, string> = {};
      s?.hashes.forEach((h, i) => (digests[s.names[i]] = h.digest('hex')));
      streams.delete(m.id);
      parentPort!.postMessage({ op: 'done', id: m.id, digests });
      break;
    }
    case 'abort':
      streams.delete(m.id);
      break;
  }
});
