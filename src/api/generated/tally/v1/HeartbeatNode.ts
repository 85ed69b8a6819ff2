// Original file: proto/tally.proto


export interface HeartbeatNode {
  'id'?: (number);
  'clientAddress'?: (string);
  'peerAddress'?: (string);
  'zone'?: (string);
}

export interface HeartbeatNode__Output {
  'id': (number);
  'clientAddress': (string);
  'peerAddress': (string);
  'zone': (string);
}
