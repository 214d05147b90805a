/**
 * The RPM file layout (rpm's `lib/header.c`, `lib/package.c`): a 96-byte lead, the signature
 * header (padded to 8 bytes), the main header, then the compressed payload. A header is an
 * intro (magic, entry count, data size), index entries (tag, type, offset, count) and a data
 * store. Pure: bytes in, tag values out; `RpmInspector` finds the header in a stream.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** A file that is not an RPM, or whose lead or headers are corrupt. */
export class RpmFormatError extends Error {
  override name = 'RpmFormatError';
}

const LEAD_SIZE = 96;
const LEAD_MAGIC = 0xedabeedb;
const HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01]);
/** rpm refuses headers with more entries or data than this (`hdrchkTags`, `hdrchkData`). */
const MAX_ENTRIES = 0x10000;
const MAX_DATA = 256 * 1024 * 1024;
/** What a stream inspector buffers at most to find the headers (real headers are far smaller). */
export const MAX_HEADERS_BYTES = 64 * 1024 * 1024;

export type TagValue = string | string[] | number[] | Buffer;

enum Type {
  NULL = 0,
  CHAR = 1,
  INT8 = 2,
  INT16 = 3,
  INT32 = 4,
  INT64 = 5,
  STRING = 6,
  BIN = 7,
  STRING_ARRAY = 8,
  I18NSTRING = 9,
}

/** One header's tags; numbers as arrays, strings as strings, string arrays as arrays. */
export class RpmHeader {
  constructor(private readonly tags: Map<number, TagValue>) {}

  has(tag: number): boolean {
    return this.tags.has(tag);
  }
  string(tag: number): string | undefined {
    const v = this.tags.get(tag);
    if (typeof v === 'string') return v;
    if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
    return undefined;
  }
  strings(tag: number): string[] {
    const v = this.tags.get(tag);
    if (typeof v === 'string') return [v];
    if (Array.isArray(v) && (v.length === 0 || typeof v[0] === 'string')) return v as string[];
    return [];
  }
  numbers(tag: number): number[] {
    const v = this.tags.get(tag);
    if (Array.isArray(v) && (v.length === 0 || typeof v[0] === 'number')) return v as number[];
    return [];
  }
  number(tag: number): number | undefined {
    return this.numbers(tag)[0];
  }
}

/** Where the parts of an RPM lie (byte offsets from the start of the file). */
export interface RpmLayout {
  signature: RpmHeader;
  header: RpmHeader;
  /** `rpm:header-range`: the main header's first byte and the byte after it. */
  headerStart: number;
  headerEnd: number;
}

/** Bytes a header at `at` occupies (intro, index, data), or null when `buf` does not yet hold its intro. */
function headerSize(buf: Buffer, at: number): number | null {
  if (buf.length < at + 16) return null;
  if (!buf.subarray(at, at + 4).equals(HEADER_MAGIC)) throw new RpmFormatError('Not an RPM: bad header magic');
  const entries = buf.readUInt32BE(at + 8);
  const data = buf.readUInt32BE(at + 12);
  if (entries < 1 || entries > MAX_ENTRIES || data > MAX_DATA) throw new RpmFormatError('Corrupt RPM header: impossible size');
  return 16 + entries * 16 + data;
}

/**
 * How many leading bytes of the file hold the lead and both headers, given its first bytes:
 * a number once it is known, null while `buf` is too short to tell. Throws RpmFormatError.
 */
export function headersLength(buf: Buffer): number | null {
  if (buf.length < LEAD_SIZE) return null;
  if (buf.readUInt32BE(0) !== LEAD_MAGIC) throw new RpmFormatError('Not an RPM: bad lead magic');
  if (buf.readUInt8(4) !== 3 && buf.readUInt8(4) !== 4) throw new RpmFormatError(`Unsupported RPM version ${buf.readUInt8(4)}`);
  if (buf.readUInt16BE(78) !== 5) throw new RpmFormatError('Unsupported RPM signature type');
  const sig = headerSize(buf, LEAD_SIZE);
  if (sig === null) return null;
  const start = LEAD_SIZE + sig + ((8 - (sig % 8)) % 8);
  const main = headerSize(buf, start);
  return main === null ? null : start + main;
}

function readHeader(buf: Buffer, at: number): { header: RpmHeader; end: number } {
  const size = headerSize(buf, at);
  if (size === null || buf.length < at + size) throw new RpmFormatError('Truncated RPM header');
  const entries = buf.readUInt32BE(at + 8);
  const dataStart = at + 16 + entries * 16;
  const dataEnd = at + size;
  const tags = new Map<number, TagValue>();
  for (let i = 0; i < entries; i++) {
    const e = at + 16 + i * 16;
    const tag = buf.readUInt32BE(e);
    const type = buf.readUInt32BE(e + 4);
    const offset = buf.readInt32BE(e + 8);
    const count = buf.readUInt32BE(e + 12);
    if (offset < 0 || dataStart + offset > dataEnd) throw new RpmFormatError(`Corrupt RPM header: tag ${tag} lies outside the data`);
    tags.set(tag, readValue(buf, type, dataStart + offset, count, dataEnd, tag));
  }
  return { header: new RpmHeader(tags), end: dataEnd };
}

function readValue(buf: Buffer, type: number, pos: number, count: number, end: number, tag: number): TagValue {
  const bad = () => new RpmFormatError(`Corrupt RPM header: tag ${tag} overruns the data`);
  const need = (n: number) => {
    if (pos + n > end || count > end) throw bad();
  };
  const strings = (n: number): string[] => {
    const out: string[] = [];
    let p = pos;
    for (let i = 0; i < n; i++) {
      const z = buf.indexOf(0, p);
      if (z < 0 || z >= end) throw bad();
      out.push(buf.toString('utf8', p, z));
      p = z + 1;
    }
    return out;
  };
  switch (type) {
    case Type.NULL:
      return [];
    case Type.CHAR:
    case Type.INT8:
    case Type.BIN:
      need(count);
      return type === Type.BIN ? Buffer.from(buf.subarray(pos, pos + count)) : [...buf.subarray(pos, pos + count)];
    case Type.INT16:
      need(count * 2);
      return Array.from({ length: count }, (_, i) => buf.readUInt16BE(pos + i * 2));
    case Type.INT32:
      need(count * 4);
      return Array.from({ length: count }, (_, i) => buf.readUInt32BE(pos + i * 4));
    case Type.INT64:
      need(count * 8);
      return Array.from({ length: count }, (_, i) => Number(buf.readBigUInt64BE(pos + i * 8)));
    case Type.STRING:
      return strings(1)[0];
    case Type.STRING_ARRAY:
    case Type.I18NSTRING:
      return strings(count);
    default:
      throw new RpmFormatError(`Corrupt RPM header: tag ${tag} has unknown type ${type}`);
  }
}

/** The lead and both headers of an RPM whose first bytes are `buf` (at least `headersLength(buf)` of them). */
export function readRpmHeaders(buf: Buffer): RpmLayout {
  const len = headersLength(buf);
  if (len === null || buf.length < len) throw new RpmFormatError('Truncated RPM: the headers are incomplete');
  const sig = readHeader(buf, LEAD_SIZE);
  const headerStart = sig.end + ((8 - ((sig.end - LEAD_SIZE) % 8)) % 8);
  const main = readHeader(buf, headerStart);
  return { signature: sig.header, header: main.header, headerStart, headerEnd: main.end };
}

/**
 * A pass-through stream that reads the RPM headers off the bytes going by: `result` resolves with
 * them once they have passed (or rejects with RpmFormatError), `size` counts every byte. Buffers
 * only the headers; the payload streams on untouched. A stream that ends before the headers do,
 * or whose payload is shorter than the signature's size says, fails `result` (a truncated file).
 */
export class RpmInspector extends Transform {
  size = 0;
  private head: Buffer[] = [];
  private headBytes = 0;
  private layout: RpmLayout | null = null;
  /** Why the bytes are no (complete) RPM, once known. */
  failure: Error | null = null;
  readonly result: Promise<RpmLayout>;
  private settle!: { resolve: (l: RpmLayout) => void; reject: (e: Error) => void };

  constructor() {
    super();
    this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // Handled by whoever awaits it; a stream that errors first must not leave it unhandled.
    this.result.catch(() => undefined);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (!this.layout && !this.failure) {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      try {
        const buf = Buffer.concat(this.head);
        this.head = [buf];
        const len = headersLength(buf);
        if (len !== null && len > MAX_HEADERS_BYTES) throw new RpmFormatError('RPM headers larger than 64 MiB are not accepted');
        if (len === null && this.headBytes > MAX_HEADERS_BYTES) throw new RpmFormatError('Not an RPM: no header in the first 64 MiB');
        if (len !== null && buf.length >= len) {
          this.layout = readRpmHeaders(buf);
          this.head = [];
        }
      } catch (e) {
        // Fail the stream at once: a body that is no RPM is not read (nor stored) to its end.
        this.failure = e as Error;
        this.head = [];
        this.settle.reject(this.failure);
        cb(this.failure);
        return;
      }
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.failure) this.settle.reject(this.failure);
    else if (!this.layout) this.settle.reject(new RpmFormatError('Truncated RPM: the file ends inside its headers'));
    else {
      // SIGTAG_SIZE (1000) is the size of the main header plus the payload.
      const declared = this.layout.signature.number(1000) ?? this.layout.signature.number(270);
      if (declared !== undefined && this.layout.headerStart + declared !== this.size) {
        this.settle.reject(new RpmFormatError(`Truncated or damaged RPM: ${this.size} bytes, its signature header says ${this.layout.headerStart + declared}`));
      } else this.settle.resolve(this.layout);
    }
    cb();
  }
}
