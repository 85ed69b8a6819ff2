// Original file: proto/tally.proto

import type { WindowPoint as _tally_v1_WindowPoint, WindowPoint__Output as _tally_v1_WindowPoint__Output } from '../../tally/v1/WindowPoint.js';
import type { Fence as _tally_v1_Fence, Fence__Output as _tally_v1_Fence__Output } from '../../tally/v1/Fence.js';
import type { Long } from '@grpc/proto-loader';

export interface WindowRangeResponse {
  'points'?: (_tally_v1_WindowPoint)[];
  /**
   * the tier that answered
   */
  'resolutionMs'?: (number | string | Long);
  /**
   * 0 when the key does not exist
   */
  'version'?: (number | string | Long);
  'fence'?: (_tally_v1_Fence | null);
  'appliedIndex'?: (number | string | Long);
}

export interface WindowRangeResponse__Output {
  'points': (_tally_v1_WindowPoint__Output)[];
  /**
   * the tier that answered
   */
  'resolutionMs': (string);
  /**
   * 0 when the key does not exist
   */
  'version': (string);
  'fence': (_tally_v1_Fence__Output | null);
  'appliedIndex': (string);
}
