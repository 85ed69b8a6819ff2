// Original file: proto/tally.proto


export interface ShardChangePromoteAndRemove {
  'nodeId'?: (number);
  'removeId'?: (number);
}

export interface ShardChangePromoteAndRemove__Output {
  'nodeId': (number);
  'removeId': (number);
}
