// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface MapShard {
  'shardId'?: (number);
  'slotStart'?: (number);
  'slotEnd'?: (number);
  'epoch'?: (number | string | Long);
  'voters'?: (string)[];
  'learners'?: (string)[];
  'votersOutgoing'?: (string)[];
  'leaderId'?: (string);
  'opsPerSecond'?: (number | string);
}

export interface MapShard__Output {
  'shardId': (number);
  'slotStart': (number);
  'slotEnd': (number);
  'epoch': (string);
  'voters': (string)[];
  'learners': (string)[];
  'votersOutgoing': (string)[];
  'leaderId': (string);
  'opsPerSecond': (number);
}
