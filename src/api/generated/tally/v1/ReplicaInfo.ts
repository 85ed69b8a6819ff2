// Original file: proto/tally.proto


export interface ReplicaInfo {
  'nodeId'?: (string);
  'address'?: (string);
  'role'?: (string);
}

export interface ReplicaInfo__Output {
  'nodeId': (string);
  'address': (string);
  'role': (string);
}
