// Original file: proto/tally.proto


export interface NodeAddRequest {
  'nodeId'?: (string);
  'clientAddress'?: (string);
  'peerAddress'?: (string);
  'zone'?: (string);
}

export interface NodeAddRequest__Output {
  'nodeId': (string);
  'clientAddress': (string);
  'peerAddress': (string);
  'zone': (string);
}
