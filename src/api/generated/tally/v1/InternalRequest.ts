// Original file: proto/tally.proto


/**
 * The msgpack body older versions' node-to-node calls carried (Heartbeat, ShardChange and
 * ForwardWrite); no method takes it now. Field 1 is reserved in the messages that replaced it.
 */
export interface InternalRequest {
  'body'?: (Buffer | Uint8Array | string);
}

/**
 * The msgpack body older versions' node-to-node calls carried (Heartbeat, ShardChange and
 * ForwardWrite); no method takes it now. Field 1 is reserved in the messages that replaced it.
 */
export interface InternalRequest__Output {
  'body': (Buffer);
}
