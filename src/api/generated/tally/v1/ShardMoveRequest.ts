// Original file: proto/tally.proto


export interface ShardMoveRequest {
  'shardId'?: (number);
  'fromNode'?: (string);
  'toNode'?: (string);
}

export interface ShardMoveRequest__Output {
  'shardId': (number);
  'fromNode': (string);
  'toNode': (string);
}
