// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface MapNode {
  'nodeId'?: (string);
  'clientAddress'?: (string);
  'peerAddress'?: (string);
  'zone'?: (string);
  /**
   * up, down, draining, removed
   */
  'state'?: (string);
  /**
   * heartbeat seen recently by the metadata leader
   */
  'alive'?: (boolean);
  'lastHeartbeatMsAgo'?: (number | string | Long);
  'replicas'?: (number);
  'leaders'?: (number);
  'opsPerSecond'?: (number | string);
  /**
   * the machine it runs on (its id unless cluster.yaml names one)
   */
  'host'?: (string);
}

export interface MapNode__Output {
  'nodeId': (string);
  'clientAddress': (string);
  'peerAddress': (string);
  'zone': (string);
  /**
   * up, down, draining, removed
   */
  'state': (string);
  /**
   * heartbeat seen recently by the metadata leader
   */
  'alive': (boolean);
  'lastHeartbeatMsAgo': (string);
  'replicas': (number);
  'leaders': (number);
  'opsPerSecond': (number);
  /**
   * the machine it runs on (its id unless cluster.yaml names one)
   */
  'host': (string);
}
