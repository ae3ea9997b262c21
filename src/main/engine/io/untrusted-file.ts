/**
 * Reading a text file that came from somewhere else (a dataset, a checkpoint's tokenizer or config). A path may be a
 * symlink to /dev/zero (endless), a FIFO (blocks forever on open or read), a folder, or simply huge; and its bytes
 * may not be UTF-8. So: only a regular file after resolving links, opened without blocking, checked on the open
 * handle (no swap between check and read), at most `maxBytes`, and decoded strictly, naming the first bad line.
 */
import fs from 'node:fs';
import { CliffscopeError, type ErrorCode } from '../errors.js';

export interface UntrustedReadOptions {
  /** Refuse files larger than this. */
  maxBytes: number;
  /** What the file is, for messages: "dataset file", "tokenizer file". */
  what: string;
  /** The error code for a file that is not a regular file, too large, or not UTF-8. */
  code: ErrorCode;
  /** How the user can raise the limit, for the message (e.g. "pass --max-mb 2048"). */
  raiseHint?: string;
}

const MB = 1024 * 1024;

function mb(bytes: number): string {
  return bytes >= MB ? `${Math.round((bytes / MB) * 10) / 10} MB` : `${bytes} bytes`;
}

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a pipe (FIFO)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The index of the first byte that is not part of valid UTF-8, or -1. Decoding replaces each invalid sequence with
 * U+FFFD; everything before the first one re-encodes to the same bytes, so the first difference is where it is.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return -1;
  } catch {
    const again = Buffer.from(new TextDecoder('utf-8').decode(bytes), 'utf8');
    let i = 0;
    while (i < bytes.length && i < again.length && bytes[i] === again[i]) i++;
    return i;
  }
}

/** Strict UTF-8 → string (a leading BOM is kept; callers strip it). Throws `code` naming the first bad line. */
export function decodeUtf8(bytes: Uint8Array, file: string, what: string, code: ErrorCode): string {
  const bad = firstInvalidUtf8(bytes);
  if (bad < 0) return new TextDecoder('utf-8').decode(bytes);
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
  let line = 1;
  for (let i = 0; i < bad; i++) if (bytes[i] === 0x0a) line++;
  throw new CliffscopeError(code, `${file}: line ${line} is not valid UTF-8 (byte ${bad} of the ${what})`, {
    file,
    hint: utf16 ? 'the file is UTF-16; save it as UTF-8' : 'save the file as UTF-8 (it looks like another encoding, e.g. Latin-1 or Windows-1252)',
  });
}

/** Read `file` as UTF-8 text under the rules above. A missing file is a 'missing-file' error. */
export function readUntrustedText(file: string, opts: UntrustedReadOptions): string {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CliffscopeError('missing-file', `${file}: ${opts.what} not found`, { file });
    if (code === 'EISDIR') throw new CliffscopeError(opts.code, `${file}: is a folder, not a ${opts.what}`, { file });
    throw new CliffscopeError('missing-file', `${file}: cannot open the ${opts.what} (${code ?? (e as Error).message})`, { file });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      throw new CliffscopeError(opts.code, `${file}: is ${kindOf(st)}, not a ${opts.what}`, {
        file,
        hint: 'only regular files are read (a link is followed to what it points at)',
      });
    }
    if (st.size > opts.maxBytes) {
      throw new CliffscopeError(opts.code, `${file}: the ${opts.what} is ${mb(st.size)}, over the limit of ${mb(opts.maxBytes)}`, {
        file,
        hint: opts.raiseHint ?? 'this is far larger than such a file should be',
      });
    }
    // Read what the handle holds, never more than the size checked above (a file that grows meanwhile is cut there).
    const bytes = Buffer.allocUnsafe(st.size);
    let done = 0;
    while (done < bytes.length) {
      const got = fs.readSync(fd, bytes, done, bytes.length - done, done);
      if (got === 0) break;
      done += got;
    }
    return decodeUtf8(bytes.subarray(0, done), file, opts.what, opts.code);
  } finally {
    fs.closeSync(fd);
  }
}
