/**
 * A node's eventual buffer on disk: one append-only file, <dataDir>/eventual/buffer.log, of framed
 * records (u32 LE payload length, u32 LE CRC-32C of the payload, payload).
 *
 * Group commit: append() queues a record; one writer at a time writes everything queued as one
 * synchronized write, then resolves every record of that group. Records that arrive while a sync
 * runs form the next group, so one sync covers every add that came in during the previous one,
 * and the sync rate is bounded by the disk, not by the add rate. With fsync on, the file is open
 * with O_DSYNC (where the platform has it), so the write returns once its data is on disk: one
 * system call and one trip through libuv's thread pool per group, where a write and then an
 * fdatasync took two (a third less CPU per durable append on the box of docs/benchmarks.md);
 * without O_DSYNC, a write and an fdatasync.
 *
 * Why a file of our own and not the node's LevelDB: the buffer is written on every eventual add and
 * trimmed wholesale, and a synchronized append is the cheapest durable write there is; sharing the
 * Raft log's LevelDB would put these syncs in the same queue as the shards' commits (ADR 0010).
 *
 * Replay (open): records are read in order up to the first frame that is short or fails its
 * checksum; everything from there is a torn tail (a write the crash cut), never acknowledged,
 * and is cut off. Compaction (rewrite) writes the folded state as records to a temporary file,
 * syncs it, renames it over the log and syncs the directory, between two groups.
 * Invariant: a record's `durable` callback runs in file order, after the record is on disk
 * (or written to the page cache when fsync is off).
 */
import { constants, mkdirSync, readFileSync, existsSync } from "node:fs";
import { open, rename, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { syncDirectory } from "../../storage/checkpoint-store.js";
import { crc32c } from "../../storage/crc32c.js";
import { AmbiguousError, UnavailableError } from "../../util/errors.js";
import type { EventualTrace } from "../core/stage-trace.js";

const FRAME_HEADER_BYTES = 8;
const NO_BYTES = new Uint8Array(0);
/** O_DSYNC where the platform defines it (Linux, macOS); undefined elsewhere (a write, then an fdatasync). */
const O_DSYNC: number | undefined = constants.O_DSYNC;
/** open(2) flags of the log (or of its rewrite, with O_TRUNC): read-write, created, O_DSYNC when synced writes are asked for. */
function openFlags(fsync: boolean, truncate: boolean): number {
  return constants.O_RDWR | constants.O_CREAT | (truncate ? constants.O_TRUNC : 0) | (fsync && O_DSYNC !== undefined ? O_DSYNC : 0);
}
/** A record larger than this is a corrupt length, not a record (a flush is at most ~maxEntryBytes). */
export const RECORD_BYTES_MAX = 64 * 1024 * 1024;

export interface ReplayResult {
  records: Uint8Array[];
  /** Bytes cut off the end: a torn or corrupt tail. */
  tornBytes: number;
}

interface Queued {
  /** The frame's header and head; `body` (maybe empty) follows it in the file. */
  frame: Uint8Array;
  body: Uint8Array;
  durable: () => void;
  resolve: () => void;
  reject: (error: Error) => void;
  trace: EventualTrace | undefined;
}

export class BufferLog {
  private queue: Queued[] = [];
  private writing = false;
  private failure: Error | undefined;
  private pendingRewrite: { records: () => Uint8Array[]; resolve: () => void; reject: (error: Error) => void } | undefined;
  /** Groups written and synced since open (tests and metrics read it). */
  groupsWritten = 0;
  /** Called after each group is durable: its write + sync time (s) and its records. */
  onGroup: ((seconds: number, records: number) => void) | undefined;

  private constructor(
    private readonly directory: string,
    private handle: FileHandle,
    private size: number,
    private readonly fsync: boolean,
  ) {}

  /** Opens (creating) the log in `directory`, replays it and cuts a torn tail off. */
  static async open(directory: string, fsync: boolean): Promise<{ log: BufferLog; replay: ReplayResult }> {
    mkdirSync(directory, { recursive: true });
    const path = join(directory, "buffer.log");
    const existed = existsSync(path);
    const bytes = existed ? readFileSync(path) : Buffer.alloc(0);
    const { records, validBytes } = readFrames(bytes);
    const handle = await open(path, openFlags(fsync, false));
    // A new file's name is durable only once its directory is synced: without it a crash could
    // take the file, and the adds it acknowledged, away.
    if (!existed && fsync) await syncDirectory(directory);
    if (validBytes < bytes.length) {
      await handle.truncate(validBytes);
      await handle.sync();
    }
    return { log: new BufferLog(directory, handle, validBytes, fsync), replay: { records, tornBytes: bytes.length - validBytes } };
  }

  get sizeBytes(): number {
    return this.size;
  }

  /**
   * Appends one record; resolves when its group is durable. `durable` runs first, synchronously, in
   * file order with the other records' callbacks: that is where the caller applies it in memory.
   */
  append(payload: Uint8Array, durable: () => void, trace?: EventualTrace): Promise<void> {
    return this.appendParts(payload, NO_BYTES, durable, trace);
  }

  /**
   * append(head + body) without copying `body` into a new payload: the frame's head is built
   * around `head` and `body` is written from where it is (it must not change until resolved).
   */
  appendParts(head: Uint8Array, body: Uint8Array, durable: () => void, trace?: EventualTrace): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (trace !== undefined) trace.queuedAt = performance.now();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame: frameHead(head, body), body, durable, resolve, reject, trace });
      if (!this.writing) void this.drain();
    });
  }

  /** Replaces the file by `records()` (called between groups, so it sees every applied record and no other). */
  rewrite(records: () => Uint8Array[]): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.pendingRewrite !== undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.pendingRewrite = { records, resolve, reject };
      if (!this.writing) void this.drain();
    });
  }

  async close(): Promise<void> {
    while (this.writing) await new Promise((resolve) => setTimeout(resolve, 1));
    this.failure ??= new UnavailableError("the eventual buffer is closed");
    await this.handle.close();
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.failure === undefined && (this.queue.length > 0 || this.pendingRewrite !== undefined)) {
        if (this.pendingRewrite !== undefined) await this.runRewrite();
        else await this.writeGroup();
      }
    } finally {
      this.writing = false;
    }
  }

  private async writeGroup(): Promise<void> {
    const group = this.queue;
    this.queue = [];
    const parts: Uint8Array[] = [];
    let length = 0;
    for (const item of group) {
      parts.push(item.frame);
      length += item.frame.length;
      if (item.body.length > 0) {
        parts.push(item.body);
        length += item.body.length;
      }
    }
    const startedMs = performance.now();
    for (const item of group) if (item.trace !== undefined) item.trace.writeAt = startedMs;
    try {
      await writeAll(this.handle, parts, length, this.size);
      if (this.fsync && O_DSYNC === undefined) await this.handle.datasync();
    } catch (error) {
      // The file may hold part of the group now, or all of it: whether these adds count is decided
      // by the replay at the next start, so their callers get AMBIGUOUS (a retry with the same
      // request id to this node is safe), and nothing more is appended until then.
      this.fail(new AmbiguousError(`eventual buffer write failed: ${(error as Error).message}`, { cause: error }), group);
      return;
    }
    this.size += length;
    this.groupsWritten++;
    const durableMs = performance.now();
    this.onGroup?.((durableMs - startedMs) / 1000, group.length);
    for (const item of group) if (item.trace !== undefined) item.trace.durableAt = durableMs;
    for (const item of group) item.durable();
    for (const item of group) item.resolve();
  }

  private async runRewrite(): Promise<void> {
    const rewrite = this.pendingRewrite!;
    this.pendingRewrite = undefined;
    const path = join(this.directory, "buffer.log");
    const temporary = join(this.directory, "buffer.log.tmp");
    try {
      const bytes = Buffer.concat(rewrite.records().map(frame));
      const next = await open(temporary, openFlags(this.fsync, true));
      await next.write(bytes, 0, bytes.length, 0);
      await next.sync();
      await rename(temporary, path);
      await syncDirectory(this.directory);
      await this.handle.close();
      this.handle = next;
      this.size = bytes.length;
      rewrite.resolve();
    } catch (error) {
      const failure = new UnavailableError(`eventual buffer compaction failed: ${(error as Error).message}`, { cause: error });
      rewrite.reject(failure);
      this.fail(failure, []);
    }
  }

  private fail(error: Error, group: Queued[]): void {
    this.failure = new UnavailableError(`the eventual buffer stopped after a failed write: ${error.message}; restart the node`);
    for (const item of group) item.reject(error);
    for (const item of this.queue) item.reject(this.failure);
    this.queue = [];
  }
}

/** One record's whole frame (header and payload). */
function frame(payload: Uint8Array): Uint8Array {
  return frameHead(payload, NO_BYTES);
}

/** The frame of head + body, without body: its header and `head` (the checksum covers both). */
function frameHead(head: Uint8Array, body: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + head.length);
  out.writeUInt32LE(head.length + body.length, 0);
  out.writeUInt32LE(crc32c(body, crc32c(head)), 4);
  out.set(head, FRAME_HEADER_BYTES);
  return out;
}

/** Writes `parts` back to back at `position`: one writev, or a copy into one write when small. */
async function writeAll(handle: FileHandle, parts: Uint8Array[], length: number, position: number): Promise<void> {
  if (parts.length === 1 || length < 64 * 1024) {
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
    const { bytesWritten } = await handle.write(bytes, 0, bytes.length, position);
    if (bytesWritten !== bytes.length) throw new Error(`short write: ${bytesWritten} of ${bytes.length} bytes`);
    return;
  }
  const { bytesWritten } = await handle.writev(parts, position);
  if (bytesWritten !== length) throw new Error(`short write: ${bytesWritten} of ${length} bytes`);
}

/** The records of `bytes` up to the first incomplete or corrupt frame. */
export function readFrames(bytes: Uint8Array): { records: Uint8Array[]; validBytes: number } {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let at = 0;
  while (at + FRAME_HEADER_BYTES <= buffer.length) {
    const length = buffer.readUInt32LE(at);
    if (length > RECORD_BYTES_MAX || at + FRAME_HEADER_BYTES + length > buffer.length) break;
    const payload = buffer.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length);
    if (crc32c(payload) !== buffer.readUInt32LE(at + 4)) break;
    records.push(payload);
    at += FRAME_HEADER_BYTES + length;
  }
  return { records, validBytes: at };
}
