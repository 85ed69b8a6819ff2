// Original file: proto/tally.proto


export interface FailoverRequest {
  'nodeId'?: (string);
}

export interface FailoverRequest__Output {
  'nodeId': (string);
}
