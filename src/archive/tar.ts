/**
 * Streaming tar: a reader yielding one entry at a time with its body as a stream (nothing held
 * in memory beyond one chunk), and a writer producing an archive from entries whose bodies are
 * opened lazily. ustar, with pax extended headers (`x`) and GNU long names (`L`, `K`) on read,
 * pax for long names and large sizes on write. 512-byte blocks. Malformed input (bad checksum,
 * truncated entry, an unsafe name) is an AppError 400 naming the entry.
 */
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { AppError } from '../errors.js';

export const BLOCK = 512;

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'link' | 'other';

export interface TarHeader {
  /** Normalised path: no leading `./` or `/`, no `..` component, no trailing `/`. */
  name: string;
  type: TarEntryType;
  size: number;
  mode: number;
  mtime: number;
  /** Target of a symlink (as written) or hard link (archive path). */
  linkname: string;
}

export interface TarEntry {
  header: TarHeader;
  /** The entry's bytes; the reader drains whatever is left unread before the next entry. */
  body: Readable;
}

export interface TarReadOptions {
  /** Transparently gunzip an input starting with the gzip magic. */
  gunzip?: boolean;
  /** Cap on a pax / GNU long-name header's data (default 1 MiB). */
  maxExtendedHeader?: number;
}

export function tarError(message: string): AppError {
  return new AppError('BAD_REQUEST', `Invalid tar archive: ${message}`);
}

/** Pulls exact byte counts out of a chunked async source. */
class ByteSource {
  private chunk: Buffer = Buffer.alloc(0);
  private done = false;
  /** Bytes consumed so far (for messages). */
  offset = 0;

  constructor(private readonly it: AsyncIterator<Buffer | string>) {}

  private async fill(): Promise<boolean> {
    while (this.chunk.length === 0) {
      if (this.done) return false;
      let r: IteratorResult<Buffer | string>;
      try {
        r = await this.it.next();
      } catch (e) {
        if (e instanceof AppError) throw e;
        throw tarError(`the archive could not be read completely (${(e as Error).message})`);
      }
      if (r.done) {
        this.done = true;
        return false;
      }
      this.chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    }
    return true;
  }

  /** Up to `max` bytes (at least one), or null at the end of input. */
  async some(max: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null;
    const n = Math.min(max, this.chunk.length);
    const out = this.chunk.subarray(0, n);
    this.chunk = this.chunk.subarray(n);
    this.offset += n;
    return out;
  }

  /** Exactly `n` bytes; null when the input ends before the first byte; throws when it ends midway. */
  async exact(n: number, what: string): Promise<Buffer | null> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const c = await this.some(n - got);
      if (!c) {
        if (got === 0) return null;
        throw tarError(`truncated ${what}`);
      }
      parts.push(c);
      got += c.length;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
  }

  async skip(n: number, what: string): Promise<void> {
    let left = n;
    while (left > 0) {
      const c = await this.some(left);
      if (!c) throw tarError(`truncated ${what}`);
      left -= c.length;
    }
  }

  async drain(): Promise<void> {
    while (await this.some(1 << 20));
  }
}

/** The input, gunzipped when it starts with the gzip magic. */
async function maybeGunzip(input: Readable): Promise<AsyncIterator<Buffer | string>> {
  const it = inputIterator(input) as AsyncIterator<Buffer>;
  const first = await it.next().catch((e: Error) => {
    throw tarError(`the archive could not be read (${e.message})`);
  });
  async function* rest(): AsyncGenerator<Buffer> {
    if (!first.done) yield first.value;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (first.done || first.value.length < 2 || first.value[0] !== 0x1f || first.value[1] !== 0x8b) return rest();
  const gunzip = createGunzip();
  const src = Readable.from(rest());
  src.on('error', (e) => gunzip.destroy(e));
  src.pipe(gunzip);
  const gz = gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return {
    next: () =>
      gz.next().catch((e: Error) => {
        throw e instanceof AppError ? e : tarError(`bad gzip data (${e.message})`);
      }),
    return: async () => {
      src.destroy();
      gunzip.destroy();
      return { done: true, value: undefined };
    },
  };
}

/**
 * Iterates the input without destroying it when reading stops early: a server that refuses an
 * archive half way can still drain the request and answer, instead of resetting the connection.
 */
function inputIterator(input: Readable): AsyncIterator<Buffer | string> {
  return input.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer | string>;
}

function cstring(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('utf8');
}

/** An octal field, or GNU base-256 (high bit of the first byte set). */
function numeric(b: Buffer, field: string, entry: string): number {
  if (b[0] & 0x80) {
    if (b[0] !== 0x80) throw tarError(`${entry}: negative or huge ${field}`);
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i];
    if (!Number.isSafeInteger(n)) throw tarError(`${entry}: ${field} too large`);
    return n;
  }
  const s = cstring(b).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw tarError(`${entry}: invalid ${field} field`);
  return parseInt(s, 8);
}

function checksumOf(block: Buffer): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return { unsigned, signed };
}

/**
 * A safe relative path: `./` and leading `/` stripped, empty components dropped; a `..`
 * component, a NUL byte or an empty result is refused.
 */
export function normaliseEntryName(raw: string): string {
  if (raw.includes('\0')) throw tarError(`entry name contains a NUL byte: ${JSON.stringify(raw)}`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw tarError(`entry name escapes the archive (contains '..'): ${raw}`);
  if (parts.length === 0) throw tarError(`empty entry name: ${JSON.stringify(raw)}`);
  return parts.join('/');
}

/** pax records `"<len> key=value\n"`. */
function parsePax(data: Buffer, entry: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break;
    const sp = data.indexOf(0x20, i);
    if (sp < 0) throw tarError(`${entry}: malformed pax header`);
    const len = Number(data.subarray(i, sp).toString('ascii'));
    if (!Number.isInteger(len) || len <= sp - i + 1 || i + len > data.length) throw tarError(`${entry}: malformed pax record`);
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq < 0 || data[i + len - 1] !== 0x0a) throw tarError(`${entry}: malformed pax record`);
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

/**
 * Reads a tar archive entry by entry. Each entry's body must be consumed (or is drained) before
 * asking for the next. Ends at the end-of-archive marker (the rest of the input is drained) or
 * at the end of input exactly on a header boundary; throws a 400 AppError on malformed input.
 */
export async function* readTar(input: Readable, opts: TarReadOptions = {}): AsyncGenerator<TarEntry> {
  const maxExt = opts.maxExtendedHeader ?? 1 << 20;
  const it = opts.gunzip ? await maybeGunzip(input) : inputIterator(input);
  const src = new ByteSource(it);
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let index = 0;
  let sawEntry = false;
  try {
    for (;;) {
      const at = src.offset;
      const block = await src.exact(BLOCK, `header at offset ${at}`);
      if (!block) {
        if (!sawEntry) throw tarError('empty input (not a tar archive)');
        // Some writers omit the end-of-archive marker; ending on a header boundary is tolerated.
        if (longName !== undefined || longLink !== undefined || pax.size) throw tarError('truncated: an extended header has no entry after it');
        return;
      }
      if (block.every((b) => b === 0)) {
        if (!sawEntry) throw tarError('the archive holds no entries');
        await src.drain();
        return;
      }
      const rawName = cstring(block.subarray(0, 100));
      const shown = /^[\x20-\x7e]*$/.test(rawName) ? rawName : JSON.stringify(rawName.slice(0, 40));
      const label = `entry ${index} (${shown || 'unnamed'}) at offset ${at}`;
      let stored = -1;
      try {
        stored = numeric(block.subarray(148, 156), 'checksum', label);
      } catch (e) {
        if (sawEntry) throw e;
      }
      const sum = checksumOf(block);
      if (stored !== sum.unsigned && stored !== sum.signed) {
        throw tarError(index === 0 && !sawEntry ? 'not a tar archive (header checksum mismatch)' : `bad header checksum in ${label}`);
      }
      sawEntry = true;
      const size = numeric(block.subarray(124, 136), 'size', label);
      const flag = String.fromCharCode(block[156] || 0x30);
      const magic = block.subarray(257, 263).toString('latin1');
      // POSIX ustar splits long names into prefix + name; GNU ('ustar  ') uses that area otherwise.
      const prefix = magic === 'ustar\0' ? cstring(block.subarray(345, 500)) : '';

      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        if (size > maxExt) throw tarError(`${label}: extended header of ${size} bytes exceeds ${maxExt}`);
        const data = (await src.exact(size, `extended header data of ${label}`)) ?? Buffer.alloc(0);
        if (size > 0 && data.length < size) throw tarError(`truncated ${label}`);
        await src.skip(padding(size), `padding of ${label}`);
        if (flag === 'x') pax = parsePax(data, label);
        else if (flag === 'L') longName = cstring(data);
        else if (flag === 'K') longLink = cstring(data);
        // 'g' (global pax) carries nothing an entry's name or size depends on here.
        continue;
      }

      const name = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${rawName}` : rawName);
      const linkname = pax.get('linkpath') ?? longLink ?? cstring(block.subarray(157, 257));
      let realSize = size;
      if (pax.has('size')) {
        const s = Number(pax.get('size'));
        if (!Number.isSafeInteger(s) || s < 0) throw tarError(`${label}: invalid pax size`);
        realSize = s;
      }
      pax = new Map();
      longName = longLink = undefined;
      const type: TarEntryType = flag === '0' || flag === '7' ? 'file' : flag === '5' ? 'directory' : flag === '2' ? 'symlink' : flag === '1' ? 'link' : 'other';
      const bodySize = realSize;
      if (type === 'directory' && name.split('/').every((p) => p === '' || p === '.')) {
        // The archive's root folder (`./`, as `tar -C dir .` writes): nothing to report.
        await src.skip(bodySize + padding(bodySize), label);
        index++;
        continue;
      }
      const header: TarHeader = {
        name: normaliseEntryName(name),
        type,
        size: bodySize,
        mode: numeric(block.subarray(100, 108), 'mode', label),
        mtime: numeric(block.subarray(136, 148), 'mtime', label),
        linkname,
      };
      index++;
      let left = bodySize;
      let failed: Error | undefined;
      let inflight: Promise<void> | null = null;
      const body = new Readable({
        highWaterMark: 64 * 1024,
        read() {
          if (left === 0) return void this.push(null);
          inflight = src.some(Math.min(left, 256 * 1024)).then(
            (c) => {
              inflight = null;
              if (!c) {
                failed = tarError(`truncated ${label}: ${left} of ${bodySize} bytes missing`);
                this.destroy(failed);
                return;
              }
              left -= c.length;
              if (this.destroyed) return;
              this.push(c);
              if (left === 0) this.push(null);
            },
            (e: Error) => {
              inflight = null;
              failed = e;
              this.destroy(e);
            },
          );
        },
      });
      yield { header, body };
      if (inflight) await inflight;
      if (failed) throw failed;
      if (left > 0) {
        // The consumer left part of the body unread: skip it.
        if (!body.destroyed) body.destroy();
        await src.skip(left, label);
        left = 0;
      }
      await src.skip(padding(bodySize), `padding of ${label}`);
    }
  } finally {
    await it.return?.();
  }
}

// ---- writer -------------------------------------------------------------------------------

export interface TarWriteEntry {
  name: string;
  size: number;
  type?: 'file' | 'directory' | 'symlink';
  mode?: number;
  /** Seconds since the epoch (default 0, for reproducible archives). */
  mtime?: number;
  linkname?: string;
  /** The bytes: a buffer, or opened when the entry is written (a stream of exactly `size` bytes). */
  body?: Buffer | (() => Promise<Readable> | Readable);
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

const MAX_OCTAL_SIZE = 0o77777777777; // 11 octal digits

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return Buffer.from(`${len}${body}`, 'utf8');
}

function headerBlock(e: { name: string; size: number; flag: string; mode: number; mtime: number; linkname: string; prefix?: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(e.name, 0, 100, 'utf8');
  b.write(octal(e.mode & 0o7777777, 8), 100, 'ascii');
  b.write(octal(0, 8), 108, 'ascii');
  b.write(octal(0, 8), 116, 'ascii');
  b.write(octal(e.size, 12), 124, 'ascii');
  b.write(octal(Math.max(0, Math.floor(e.mtime)), 12), 136, 'ascii');
  b.write(e.flag, 156, 'ascii');
  b.write(e.linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'ascii');
  if (e.prefix) b.write(e.prefix, 345, 155, 'utf8');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(octal(sum, 7) + ' ', 148, 'ascii');
  return b;
}

/** ustar split of a long name into prefix (≤155 bytes) and name (≤100 bytes), or null. */
function splitName(name: string): { prefix: string; name: string } | null {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest) return { prefix, name: rest };
  }
  return null;
}

/** The header blocks (with a pax header when a name, link or size does not fit ustar). */
function headersFor(e: TarWriteEntry): Buffer {
  const type = e.type ?? 'file';
  const name = normaliseEntryName(e.name) + (type === 'directory' ? '/' : '');
  const linkname = e.linkname ?? '';
  const size = type === 'file' ? e.size : 0;
  const split = splitName(name);
  const records: Buffer[] = [];
  if (!split) records.push(paxRecord('path', name));
  if (Buffer.byteLength(linkname) > 100) records.push(paxRecord('linkpath', linkname));
  if (size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(size)));
  const main = headerBlock({
    name: split ? split.name : name.slice(0, 99),
    prefix: split?.prefix,
    size: Math.min(size, MAX_OCTAL_SIZE),
    flag: type === 'directory' ? '5' : type === 'symlink' ? '2' : '0',
    mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
    mtime: e.mtime ?? 0,
    linkname: linkname.slice(0, 100),
  });
  if (records.length === 0) return main;
  const data = Buffer.concat(records);
  const paxHeader = headerBlock({ name: 'PaxHeader', size: data.length, flag: 'x', mode: 0o644, mtime: e.mtime ?? 0, linkname: '' });
  return Buffer.concat([paxHeader, data, Buffer.alloc(padding(data.length)), main]);
}

/** Bytes `writeTar` produces for these entries (for Content-Length). */
export function tarLength(entries: Iterable<Pick<TarWriteEntry, 'name' | 'size' | 'type' | 'linkname'>>): number {
  let n = 0;
  for (const e of entries) {
    const size = (e.type ?? 'file') === 'file' ? e.size : 0;
    n += headersFor({ ...e }).length + size + padding(size);
  }
  return n + 2 * BLOCK;
}

/**
 * An archive of the given entries, streamed: each body is opened only when its turn comes and
 * must deliver exactly its declared size (otherwise the stream fails, never a corrupt archive).
 */
export function writeTar(entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    for await (const e of entries) {
      yield headersFor(e);
      const type = e.type ?? 'file';
      if (type !== 'file') continue;
      let written = 0;
      if (Buffer.isBuffer(e.body)) {
        written = e.body.length;
        if (written === e.size) yield e.body;
      } else if (e.body) {
        const stream = await e.body();
        for await (const c of stream) {
          const chunk = c as Buffer;
          written += chunk.length;
          if (written > e.size) {
            stream.destroy();
            break;
          }
          yield chunk;
        }
      }
      if (written !== e.size) throw new AppError('INTERNAL', `tar entry ${e.name}: expected ${e.size} bytes, got ${written}`);
      const pad = padding(e.size);
      if (pad) yield Buffer.alloc(pad);
    }
    yield Buffer.alloc(2 * BLOCK);
  }
  return Readable.from(generate(), { objectMode: false });
}
