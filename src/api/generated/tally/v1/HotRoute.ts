// Original file: proto/tally.proto


/**
 * A hot counter: sub-counter i is `key` itself for tags[i] = 0, else key + "\0hot:" + tags[i]
 * (decimal). Reads sum all tags; writers use the first `writable` (src/meta/hot.ts).
 */
export interface HotRoute {
  'key'?: (Buffer | Uint8Array | string);
  'tags'?: (number)[];
  'writable'?: (number);
}

/**
 * A hot counter: sub-counter i is `key` itself for tags[i] = 0, else key + "\0hot:" + tags[i]
 * (decimal). Reads sum all tags; writers use the first `writable` (src/meta/hot.ts).
 */
export interface HotRoute__Output {
  'key': (Buffer);
  'tags': (number)[];
  'writable': (number);
}
