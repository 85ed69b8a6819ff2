// Original file: proto/tally.proto


export interface RecoverUnsafeRequest {
  'shardId'?: (number);
  'iUnderstandDataLoss'?: (boolean);
}

export interface RecoverUnsafeRequest__Output {
  'shardId': (number);
  'iUnderstandDataLoss': (boolean);
}
