// Original file: proto/tally.proto

import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from '../../tally/v1/Fence.js';
import type { Long } from '@grpc/proto-loader';

export interface EventualGetResponse {
  /**
   * committed (+ pending_delta when include_pending)
   */
  'value'?: (number | string | Long);
  /**
   * the shard's value as read
   */
  'committed'?: (number | string | Long);
  /**
   * this node's unflushed delta of the key (always reported)
   */
  'pendingDelta'?: (number | string | Long);
  /**
   * age of this node's oldest unflushed add of the key (0: none)
   */
  'stalenessMs'?: (number | string | Long);
  'version'?: (number | string | Long);
  'appliedIndex'?: (number | string | Long);
  'fence'?: (_tally_v1_Fence | null);
  'nodeId'?: (number);
}

export interface EventualGetResponse__Output {
  /**
   * committed (+ pending_delta when include_pending)
   */
  'value': (string);
  /**
   * the shard's value as read
   */
  'committed': (string);
  /**
   * this node's unflushed delta of the key (always reported)
   */
  'pendingDelta': (string);
  /**
   * age of this node's oldest unflushed add of the key (0: none)
   */
  'stalenessMs': (string);
  'version': (string);
  'appliedIndex': (string);
  'fence': (_tally_v1_Fence__Output | null);
  'nodeId': (number);
}
