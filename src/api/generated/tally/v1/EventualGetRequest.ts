// Original file: proto/tally.proto

import type { Consistency as _tally_v1_Consistency, Consistency__Output as _tally_v1_Consistency__Output } from '../../tally/v1/Consistency.js';

export interface EventualGetRequest {
  'key'?: (Buffer | Uint8Array | string);
  /**
   * STALE: this node's replica as it is; LINEARIZABLE: after this node's flush of the key
   */
  'consistency'?: (_tally_v1_Consistency);
  /**
   * add this node's unflushed delta of the key to value
   */
  'includePending'?: (boolean);
}

export interface EventualGetRequest__Output {
  'key': (Buffer);
  /**
   * STALE: this node's replica as it is; LINEARIZABLE: after this node's flush of the key
   */
  'consistency': (_tally_v1_Consistency__Output);
  /**
   * add this node's unflushed delta of the key to value
   */
  'includePending': (boolean);
}
