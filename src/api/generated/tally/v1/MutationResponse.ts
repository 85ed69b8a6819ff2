// Original file: proto/tally.proto

import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from '../../tally/v1/Fence.js';
import type { Long } from '@grpc/proto-loader';

export interface MutationResponse {
  /**
   * the counter's value after the mutation
   */
  'value'?: (number | string | Long);
  /**
   * log index of the counter's last change
   */
  'version'?: (number | string | Long);
  'fence'?: (_tally_v1_Fence | null);
}

export interface MutationResponse__Output {
  /**
   * the counter's value after the mutation
   */
  'value': (string);
  /**
   * log index of the counter's last change
   */
  'version': (string);
  'fence': (_tally_v1_Fence__Output | null);
}
