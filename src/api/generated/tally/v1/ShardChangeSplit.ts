// Original file: proto/tally.proto


export interface ShardChangeSplit {
  'splitSlot'?: (number);
  'newShardId'?: (number);
}

export interface ShardChangeSplit__Output {
  'splitSlot': (number);
  'newShardId': (number);
}
