// Original file: proto/tally.proto


/**
 * The adds are durable in this node's buffer (unless cluster.eventual.fsync is false).
 */
export interface EventualAddResponse {
  'accepted'?: (number);
  'nodeId'?: (number);
}

/**
 * The adds are durable in this node's buffer (unless cluster.eventual.fsync is false).
 */
export interface EventualAddResponse__Output {
  'accepted': (number);
  'nodeId': (number);
}
