// Original file: proto/tally.proto


/**
 * host "" = the node's own id (every node its own host); no shard keeps two replicas on one host.
 */
export interface NodeAddRequest {
  'nodeId'?: (string);
  'clientAddress'?: (string);
  'peerAddress'?: (string);
  'zone'?: (string);
  'host'?: (string);
}

/**
 * host "" = the node's own id (every node its own host); no shard keeps two replicas on one host.
 */
export interface NodeAddRequest__Output {
  'nodeId': (string);
  'clientAddress': (string);
  'peerAddress': (string);
  'zone': (string);
  'host': (string);
}
