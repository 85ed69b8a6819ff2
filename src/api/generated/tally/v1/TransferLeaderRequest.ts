// Original file: proto/tally.proto


export interface TransferLeaderRequest {
  'shardId'?: (number);
  'toNode'?: (string);
}

export interface TransferLeaderRequest__Output {
  'shardId': (number);
  'toNode': (string);
}
