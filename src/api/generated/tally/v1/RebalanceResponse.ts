// Original file: proto/tally.proto

import type { PlannedChange as _tally_v1_PlannedChange, PlannedChange__Output as _tally_v1_PlannedChange__Output } from '../../tally/v1/PlannedChange.js';

export interface RebalanceResponse {
  'changes'?: (_tally_v1_PlannedChange)[];
  'summary'?: (string);
}

export interface RebalanceResponse__Output {
  'changes': (_tally_v1_PlannedChange__Output)[];
  'summary': (string);
}
