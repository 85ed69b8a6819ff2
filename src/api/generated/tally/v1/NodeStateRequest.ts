// Original file: proto/tally.proto


export interface NodeStateRequest {
  'nodeId'?: (string);
  'state'?: (string);
}

export interface NodeStateRequest__Output {
  'nodeId': (string);
  'state': (string);
}
