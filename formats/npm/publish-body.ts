/**
 * Reads an npm publish body (JSON holding the tarball as base64 in `_attachments.<file>.tgz.data`)
 * as it arrives: the tarball string is base64-decoded straight into a stream (to the blob store)
 * (ingest computes its sha512, npm's integrity), never held whole; the rest of the document, small, is kept
 * with that string emptied and parsed at the end. A byte-level scanner, so only JSON's structure
 * (ASCII) is interpreted; strings are copied untouched.
 */
import { PassThrough, type Readable } from 'node:stream';
import { AppError } from '../../src/errors.js';
import { NpmInputError } from './packument.js';
import { parseClientJson } from './safe-json.js';

export interface StreamedAttachment {
  /** The `_attachments` key (e.g. `@scope/name-1.0.0.tgz`). */
  key: string;
  /** Decoded bytes (ends when the string ends; fails when the body does). */
  stream: Readable;
}

export interface ScannedPublish {
  /** The document with the tarball's `data` emptied. */
  doc: unknown;
  /** `head`: the tarball's first bytes, for the content type check. */
  attachment: { key: string; size: number; head: Buffer } | null;
}

interface Frame {
  obj: boolean;
  key: string | null;
  expectKey: boolean;
}

/** Decoded tarball bytes kept for the content type check (as many as the core's guard reads). */
const HEAD_BYTES = 512;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Scans `body`; calls `onAttachment` once when the tarball string begins (its consumer must read
 * the stream). `maxRest` caps everything but the tarball (413 beyond it).
 */
export async function scanPublishBody(body: Readable, maxRest: number, onAttachment: (a: StreamedAttachment) => void): Promise<ScannedPublish> {
  const rest: Buffer[] = [];
  let restSize = 0;
  const keep = (b: Buffer) => {
    restSize += b.length;
    if (restSize > maxRest) throw new AppError('PAYLOAD_TOO_LARGE', `Publish document (without the tarball) exceeds ${maxRest} bytes`);
    rest.push(b);
  };
  const stack: Frame[] = [];
  let inString = false;
  let escape = false;
  let isKey = false;
  let keyParts: Buffer[] | null = null;
  let keyFrom = 0;
  let keySize = 0;
  let streaming: { out: PassThrough; key: string; carry: string; size: number; head: Buffer[] } | null = null;
  let result: ScannedPublish['attachment'] = null;

  const fail = (msg: string): never => {
    throw new AppError('BAD_REQUEST', `Publish body is not valid JSON: ${msg}`);
  };

  const emit = async (s: string) => {
    if (!streaming || s.length === 0) return;
    if (!/^[A-Za-z0-9+/=\r\n]*$/.test(s)) fail('the tarball is not base64');
    const all = (streaming.carry + s).replace(/[\r\n]/g, '');
    const usable = all.length - (all.length % 4);
    streaming.carry = all.slice(usable);
    if (usable === 0) return;
    const buf = Buffer.from(all.slice(0, usable), 'base64');
    if (streaming.size < HEAD_BYTES) streaming.head.push(buf.subarray(0, HEAD_BYTES - streaming.size));
    streaming.size += buf.length;
    const out = streaming.out;
    // The consumer (the blob store) failed: stop with its error instead of waiting for it.
    if (out.destroyed) throw out.errored ?? new AppError('BAD_REQUEST', 'Tarball upload was aborted');
    if (!out.write(buf)) {
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          out.off('drain', done);
          out.off('close', done);
          if (out.destroyed) reject(out.errored ?? new AppError('BAD_REQUEST', 'Tarball upload was aborted'));
          else resolve();
        };
        out.on('drain', done);
        out.on('close', done);
      });
    }
  };

  try {
    for await (const c of body) {
      const chunk = c as Buffer;
      let segStart = 0;
      let i = 0;
      while (i < chunk.length) {
        if (streaming) {
          // Inside the tarball string: find its end quickly.
          const q = chunk.indexOf(QUOTE, i);
          const end = q < 0 ? chunk.length : q;
          const bs = chunk.indexOf(BACKSLASH, i);
          if (bs >= 0 && bs < end) fail('escape inside the tarball data');
          await emit(chunk.toString('latin1', i, end));
          if (q < 0) {
            i = chunk.length;
            segStart = chunk.length;
            break;
          }
          if (streaming.carry.length > 0) await emit('===='.slice(0, 4 - streaming.carry.length));
          result = { key: streaming.key, size: streaming.size, head: Buffer.concat(streaming.head) };
          streaming.out.end();
          streaming = null;
          inString = false;
          segStart = q; // the closing quote is kept
          i = q + 1;
          continue;
        }
        const b = chunk[i];
        if (inString) {
          if (escape) escape = false;
          else if (b === BACKSLASH) escape = true;
          else if (b === QUOTE) {
            inString = false;
            if (isKey && keyParts) {
              keyParts.push(chunk.subarray(keyFrom, i + 1));
              const raw = Buffer.concat(keyParts).toString('utf8');
              keyParts = null;
              try {
                stack[stack.length - 1].key = JSON.parse(raw) as string;
              } catch {
                fail('bad key');
              }
            }
          }
          i++;
          continue;
        }
        switch (b) {
          case 0x7b: // {
            stack.push({ obj: true, key: null, expectKey: true });
            break;
          case 0x5b: // [
            stack.push({ obj: false, key: null, expectKey: false });
            break;
          case 0x7d: // }
          case 0x5d: // ]
            if (!stack.pop()) fail('unbalanced brackets');
            break;
          case 0x3a: // :
            if (stack.length) stack[stack.length - 1].expectKey = false;
            break;
          case 0x2c: // ,
            if (stack.length && stack[stack.length - 1].obj) stack[stack.length - 1].expectKey = true;
            break;
          case QUOTE: {
            const top = stack[stack.length - 1];
            inString = true;
            isKey = !!top?.obj && top.expectKey;
            if (isKey) {
              keyParts = [];
              keyFrom = i;
              keySize = 0;
            } else if (stack.length === 3 && stack[0].key === '_attachments' && typeof stack[1].key === 'string' && stack[1].key.endsWith('.tgz') && stack[2].key === 'data') {
              if (result) fail('more than one tarball attachment');
              keep(chunk.subarray(segStart, i + 1));
              const out = new PassThrough();
              streaming = { out, key: stack[1].key, carry: '', size: 0, head: [] };
              onAttachment({ key: stack[1].key, stream: out });
              segStart = i + 1;
            }
            break;
          }
        }
        i++;
      }
      if (keyParts && inString && isKey) {
        keySize += chunk.length - keyFrom;
        if (keySize > 64 * 1024) fail('a key longer than 64 KiB');
        keyParts.push(chunk.subarray(keyFrom));
      }
      keyFrom = 0;
      if (segStart < chunk.length) keep(chunk.subarray(segStart));
    }
    if (streaming) fail('the body ends inside the tarball data');
    if (inString || stack.length) fail('the body ends early');
  } catch (e) {
    const s = streaming as { out: PassThrough } | null;
    if (s) s.out.destroy(e as Error);
    throw e;
  }
  let doc: unknown;
  try {
    doc = parseClientJson(Buffer.concat(rest).toString('utf8'));
  } catch (e) {
    if (e instanceof NpmInputError) throw new AppError('BAD_REQUEST', `Publish body refused: ${e.message}`);
    fail('syntax error');
  }
  return { doc, attachment: result };
}
