// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface PartitionMapNode {
  'id'?: (number);
  'clientAddress'?: (string);
  'peerAddress'?: (string);
  'zone'?: (string);
  /**
   * up, down, draining, removed
   */
  'state'?: (string);
  /**
   * the leader-stamped time of the last state change
   */
  'sinceMs'?: (number | string | Long);
  /**
   * "" = the record has none (maps from before hosts): its id
   */
  'host'?: (string);
}

export interface PartitionMapNode__Output {
  'id': (number);
  'clientAddress': (string);
  'peerAddress': (string);
  'zone': (string);
  /**
   * up, down, draining, removed
   */
  'state': (string);
  /**
   * the leader-stamped time of the last state change
   */
  'sinceMs': (string);
  /**
   * "" = the record has none (maps from before hosts): its id
   */
  'host': (string);
}
