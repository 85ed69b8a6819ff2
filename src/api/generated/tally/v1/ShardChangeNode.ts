// Original file: proto/tally.proto


export interface ShardChangeNode {
  'nodeId'?: (number);
}

export interface ShardChangeNode__Output {
  'nodeId': (number);
}
