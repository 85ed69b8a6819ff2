// Original file: proto/tally.proto

import type { Consistency as _tally_v1_Consistency, Consistency__Output as _tally_v1_Consistency__Output } from '../../tally/v1/Consistency.js';
import type { Long } from '@grpc/proto-loader';

export interface UniqueCountRequest {
  /**
   * all in one shard
   */
  'keys'?: (Buffer | Uint8Array | string)[];
  'consistency'?: (_tally_v1_Consistency);
  'minIndex'?: (number | string | Long);
  'shardId'?: (number);
  'epoch'?: (number | string | Long);
  /**
   * also return the merged sketch's bytes
   */
  'withSketch'?: (boolean);
}

export interface UniqueCountRequest__Output {
  /**
   * all in one shard
   */
  'keys': (Buffer)[];
  'consistency': (_tally_v1_Consistency__Output);
  'minIndex': (string);
  'shardId': (number);
  'epoch': (string);
  /**
   * also return the merged sketch's bytes
   */
  'withSketch': (boolean);
}
