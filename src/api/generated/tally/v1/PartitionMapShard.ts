// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface PartitionMapShard {
  'id'?: (number);
  /**
   * inclusive
   */
  'slotStart'?: (number);
  /**
   * exclusive
   */
  'slotEnd'?: (number);
  'epoch'?: (number | string | Long);
  'voters'?: (number)[];
  'learners'?: (number)[];
  'votersOutgoing'?: (number)[];
}

export interface PartitionMapShard__Output {
  'id': (number);
  /**
   * inclusive
   */
  'slotStart': (number);
  /**
   * exclusive
   */
  'slotEnd': (number);
  'epoch': (string);
  'voters': (number)[];
  'learners': (number)[];
  'votersOutgoing': (number)[];
}
