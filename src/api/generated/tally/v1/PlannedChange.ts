// Original file: proto/tally.proto


export interface PlannedChange {
  'kind'?: (string);
  'shardId'?: (number);
  'fromNode'?: (string);
  'toNode'?: (string);
  'reason'?: (string);
}

export interface PlannedChange__Output {
  'kind': (string);
  'shardId': (number);
  'fromNode': (string);
  'toNode': (string);
  'reason': (string);
}
