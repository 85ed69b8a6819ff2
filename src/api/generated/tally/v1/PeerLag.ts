// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface PeerLag {
  'nodeId'?: (string);
  'match'?: (number | string | Long);
  'lag'?: (number | string | Long);
  'state'?: (string);
}

export interface PeerLag__Output {
  'nodeId': (string);
  'match': (string);
  'lag': (string);
  'state': (string);
}
