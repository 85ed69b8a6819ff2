// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A hot counter as the map holds it (src/meta/hot.ts HotRecord).
 */
export interface PartitionMapHot {
  'key'?: (Buffer | Uint8Array | string);
  'tags'?: (number)[];
  'writable'?: (number);
  'declaredVersion'?: (number | string | Long);
  'updatedMs'?: (number | string | Long);
}

/**
 * A hot counter as the map holds it (src/meta/hot.ts HotRecord).
 */
export interface PartitionMapHot__Output {
  'key': (Buffer);
  'tags': (number)[];
  'writable': (number);
  'declaredVersion': (string);
  'updatedMs': (string);
}
