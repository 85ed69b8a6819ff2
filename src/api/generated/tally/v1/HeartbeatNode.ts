// Original file: proto/tally.proto


/**
 * host "" = none named (older nodes, or the default): the node's own id.
 */
export interface HeartbeatNode {
  'id'?: (number);
  'clientAddress'?: (string);
  'peerAddress'?: (string);
  'zone'?: (string);
  'host'?: (string);
}

/**
 * host "" = none named (older nodes, or the default): the node's own id.
 */
export interface HeartbeatNode__Output {
  'id': (number);
  'clientAddress': (string);
  'peerAddress': (string);
  'zone': (string);
  'host': (string);
}
