/**
 * Worker thread that hashes chunks of many concurrent streams for the main thread, so the
 * digests of one upload are computed on two cores at once. The bytes arrive in slots of shared
 * memory the main thread registers once ('slot'); a 'data' message names a slot and a length,
 * and the slot goes back with the acknowledgement as soon as it is hashed.
 */
import { parentPort } from 'node:worker_threads';
import { runningHash, type DigestAlgorithm, type RunningHash } from './digest-set.js';

type Msg =
  | { op: 'start'; id: number; algorithms: DigestAlgorithm[] }
  | { op: 'slot'; slot: number; shared: SharedArrayBuffer }
  | { op: 'drop'; slot: number }
  | { op: 'data'; id: number; slot: number; length: number }
  | { op: 'end'; id: number }
  | { op: 'abort'; id: number };

interface Stream {
  names: DigestAlgorithm[];
  hashes: RunningHash[];
  /** Its messages received before its hashes exist (a BLAKE2b instance being made), in order. */
  waiting?: Msg[];
}
const streams = new Map<number, Stream>();
const slots = new Map<number, Uint8Array>();

function handle(m: Msg): void {
  const waiting = m.op !== 'start' && 'id' in m ? streams.get(m.id)?.waiting : undefined;
  if (waiting) {
    waiting.push(m);
    return;
  }
  switch (m.op) {
    case 'start': {
      const made = m.algorithms.map((a) => runningHash(a));
      const s: Stream = { names: m.algorithms, hashes: [] };
      if (made.some((h) => h instanceof Promise)) {
        const queue: Msg[] = (s.waiting = []);
        void Promise.all(made).then((hs) => {
          s.hashes = hs;
          s.waiting = undefined;
          for (const q of queue) handle(q);
        });
      } else s.hashes = made as RunningHash[];
      streams.set(m.id, s);
      break;
    }
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
      s?.hashes.forEach((h, i) => (digests[s.names[i]] = h.digest()));
      streams.delete(m.id);
      parentPort!.postMessage({ op: 'done', id: m.id, digests });
      break;
    }
    case 'abort':
      streams.delete(m.id);
      break;
  }
}

parentPort!.on('message', handle);
