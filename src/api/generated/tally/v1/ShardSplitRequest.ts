// Original file: proto/tally.proto


export interface ShardSplitRequest {
  'shardId'?: (number);
  'atSlot'?: (number);
}

export interface ShardSplitRequest__Output {
  'shardId': (number);
  'atSlot': (number);
}
