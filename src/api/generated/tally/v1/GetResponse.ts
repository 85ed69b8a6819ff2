// Original file: proto/tally.proto

import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from '../../tally/v1/Fence.js';
import type { Long } from '@grpc/proto-loader';

export interface GetResponse {
  /**
   * 0 when the counter does not exist
   */
  'value'?: (number | string | Long);
  /**
   * 0 when the counter does not exist
   */
  'version'?: (number | string | Long);
  'exists'?: (boolean);
  'fence'?: (_tally_v1_Fence | null);
  /**
   * the replica's applied index the answer reflects
   */
  'appliedIndex'?: (number | string | Long);
}

export interface GetResponse__Output {
  /**
   * 0 when the counter does not exist
   */
  'value': (string);
  /**
   * 0 when the counter does not exist
   */
  'version': (string);
  'exists': (boolean);
  'fence': (_tally_v1_Fence__Output | null);
  /**
   * the replica's applied index the answer reflects
   */
  'appliedIndex': (string);
}
