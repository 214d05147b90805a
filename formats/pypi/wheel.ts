/**
 * Reading `{name}-{version}.dist-info/METADATA` out of a wheel without holding the wheel: yauzl
 * reads the zip's end record and central directory, then the one entry, through ranged reads of
 * the stored bytes (a blob, a file: whatever `read` opens). Pure apart from those reads.
 */
import { PassThrough, type Readable } from 'node:stream';
import type yauzl from 'yauzl';
import { lazyRequire } from '../../src/lazy-require.js';
import { normalizeName } from './names.js';

/** Largest METADATA read (long READMEs live in it; PyPI's largest are a few hundred KB). */
export const MAX_METADATA_BYTES = 4 * 1024 * 1024;

export class WheelError extends Error {}

/** Opens bytes `start`..`end` (inclusive) of the wheel. */
export type RangeOpener = (start: number, end: number) => Promise<Readable>;

/** Loaded with the first wheel read: most servers never see one. */
const zipLib = lazyRequire<typeof yauzl>('yauzl');

type RangeReader = yauzl.RandomAccessReader;
let RangeReaderClass: (new (open: RangeOpener) => RangeReader) | undefined;

/** A yauzl reader of the wheel's bytes through `open` (the class made once yauzl is loaded). */
function rangeReader(open: RangeOpener): RangeReader {
  RangeReaderClass ??= class extends zipLib().RandomAccessReader {
    constructor(private readonly open: RangeOpener) {
      super();
    }
    override _readStreamForRange(start: number, end: number): Readable {
      const out = new PassThrough();
      if (end <= start) {
        out.end();
        return out;
      }
      this.open(start, end - 1).then(
        (s) => {
          s.on('error', (e) => out.destroy(e));
          s.pipe(out);
        },
        (e: Error) => out.destroy(e),
      );
      return out;
    }
  };
  return new RangeReaderClass(open);
}

function openZip(reader: RangeReader, size: number): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    zipLib().fromRandomAccessReader(reader, size, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: false }, (err, zip) =>
      err ? reject(err) : resolve(zip),
    ),
  );
}

/** The entry for which `pick` is true, or null once the central directory ends. */
function findEntry(zip: yauzl.ZipFile, pick: (name: string) => boolean): Promise<yauzl.Entry | null> {
  return new Promise((resolve, reject) => {
    const onEntry = (e: yauzl.Entry) => {
      if (pick(e.fileName)) {
        done();
        resolve(e);
      } else zip.readEntry();
    };
    const onEnd = () => {
      done();
      resolve(null);
    };
    const onError = (e: Error) => {
      done();
      reject(e);
    };
    const done = () => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

async function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, max: number): Promise<Buffer> {
  if (entry.uncompressedSize > max) throw new WheelError(`${entry.fileName} is larger than ${max} bytes`);
  const stream = await new Promise<Readable>((resolve, reject) => zip.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s))));
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > max) {
      stream.destroy();
      throw new WheelError(`${entry.fileName} is larger than ${max} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * The METADATA bytes of the wheel of `name` `version` (`size` bytes, read through `open`). Throws
 * WheelError when the zip is malformed or has no `.dist-info/METADATA` of that name and version.
 */
export async function readWheelMetadata(open: RangeOpener, size: number, name: string, version: string): Promise<Buffer> {
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(rangeReader(open), size);
  } catch (e) {
    throw new WheelError(`not a valid zip archive (${(e as Error).message})`);
  }
  try {
    // The spec names the folder `{name}-{version}.dist-info` with the file name's escaping; tools
    // vary on case and separators, so match it normalised.
    const want = `${normalizeName(name)}-${version.toLowerCase()}.dist-info`;
    const pick = (f: string) => {
      const m = /^([^/]+)\.dist-info\/METADATA$/.exec(f);
      if (!m) return false;
      const dash = m[1].lastIndexOf('-');
      return dash > 0 && `${normalizeName(m[1].slice(0, dash))}-${m[1].slice(dash + 1).toLowerCase()}.dist-info` === want;
    };
    let entry: yauzl.Entry | null;
    try {
      entry = await findEntry(zip, pick);
    } catch (e) {
      throw new WheelError(`its zip directory cannot be read (${(e as Error).message})`);
    }
    if (!entry) throw new WheelError(`it has no ${name}-${version}.dist-info/METADATA`);
    try {
      return await readEntry(zip, entry, MAX_METADATA_BYTES);
    } catch (e) {
      if (e instanceof WheelError) throw e;
      throw new WheelError(`its METADATA cannot be read (${(e as Error).message})`);
    }
  } finally {
    zip.close();
  }
}
