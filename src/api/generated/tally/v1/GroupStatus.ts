// Original file: proto/tally.proto

import type { PeerLag as _tally_v1_PeerLag, PeerLag__Output as _tally_v1_PeerLag__Output } from '../../tally/v1/PeerLag.js';
import type { Long } from '@grpc/proto-loader';

export interface GroupStatus {
  'groupId'?: (number);
  'role'?: (string);
  'term'?: (number | string | Long);
  'leaderId'?: (string);
  'commit'?: (number | string | Long);
  'applied'?: (number | string | Long);
  'lastIndex'?: (number | string | Long);
  'leaseValid'?: (boolean);
  'epoch'?: (number | string | Long);
  'peers'?: (_tally_v1_PeerLag)[];
}

export interface GroupStatus__Output {
  'groupId': (number);
  'role': (string);
  'term': (string);
  'leaderId': (string);
  'commit': (string);
  'applied': (string);
  'lastIndex': (string);
  'leaseValid': (boolean);
  'epoch': (string);
  'peers': (_tally_v1_PeerLag__Output)[];
}
