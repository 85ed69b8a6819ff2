// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

export interface PeerMatch {
  'nodeId'?: (number);
  'match'?: (number | string | Long);
}

export interface PeerMatch__Output {
  'nodeId': (number);
  'match': (string);
}
