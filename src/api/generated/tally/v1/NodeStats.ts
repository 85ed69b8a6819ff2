// Original file: proto/tally.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Counters since the process started: fsyncs per committed entry = syncs / entries_written.
 */
export interface NodeStats {
  'loopIterations'?: (number | string | Long);
  'syncs'?: (number | string | Long);
  'entriesWritten'?: (number | string | Long);
  'entriesApplied'?: (number | string | Long);
  'leaderChanges'?: (number | string | Long);
  'inboundDropped'?: (number | string | Long);
  'snapshotsInstalled'?: (number | string | Long);
  'snapshotsTaken'?: (number | string | Long);
}

/**
 * Counters since the process started: fsyncs per committed entry = syncs / entries_written.
 */
export interface NodeStats__Output {
  'loopIterations': (string);
  'syncs': (string);
  'entriesWritten': (string);
  'entriesApplied': (string);
  'leaderChanges': (string);
  'inboundDropped': (string);
  'snapshotsInstalled': (string);
  'snapshotsTaken': (string);
}
