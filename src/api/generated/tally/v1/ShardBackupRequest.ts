// Original file: proto/tally.proto


export interface ShardBackupRequest {
  'shardId'?: (number);
}

export interface ShardBackupRequest__Output {
  'shardId': (number);
}
