import { createRequire } from 'node:module';

/**
 * glibc malloc settings through the optional native helper (native/malloc.c, built into
 * dist/native/ by `npm run build`; without it, or on another libc, nothing changes). main.ts
 * imports this module before the rest of the server, so the settings hold before the first
 * password hash.
 *
 * A fixed mmap threshold stops glibc from raising it after scrypt's first 16 MiB block is freed;
 * raised, each later hash left 16 MiB resident in the arena of its libuv thread (idle RSS 108 →
 * 89 MB on a fresh start, and up to 4 × 16 MiB more once users log in). The trim threshold is
 * kept low (1 MiB; glibc's 128 KiB default ends up at up to 32 MiB once the threshold is raised):
 * background threads (V8's compilers, libuv's pool) free a few MiB each in their arenas after
 * start, kept resident with a higher one (8 MiB: idle RSS 102 MB instead of 86 MB). Blocks freed
 * on the hot paths are pooled (ingest-buffers.ts, send-file.ts), so trimming stays rare. Environment settings of glibc's (MALLOC_MMAP_THRESHOLD_,
 * GLIBC_TUNABLES) win: the helper leaves malloc alone when one is set.
 */
interface NativeMalloc {
  setThresholds(mmapBytes: number, trimBytes: number): boolean;
  trim(): boolean;
}

const MMAP_THRESHOLD = 4 * 1024 * 1024;
const TRIM_THRESHOLD = 1024 * 1024;

let native: NativeMalloc | null = null;
try {
  native = createRequire(import.meta.url)('../native/malloc.node') as NativeMalloc;
} catch {
  // Not built (no compiler at build time): malloc keeps its defaults.
}
const userSet = Object.keys(process.env).some((k) => k.startsWith('MALLOC_') || k === 'GLIBC_TUNABLES');
if (native && !userSet) native.setThresholds(MMAP_THRESHOLD, TRIM_THRESHOLD);

/** Returns the free pages start-up left in malloc's arenas to the system (called once the server is ready). */
export function releaseFreeMemory(): void {
  native?.trim();
}
