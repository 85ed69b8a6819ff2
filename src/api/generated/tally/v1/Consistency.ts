// Original file: proto/tally.proto

export const Consistency = {
  LINEARIZABLE: 'LINEARIZABLE',
  STALE: 'STALE',
} as const;

export type Consistency =
  | 'LINEARIZABLE'
  | 0
  | 'STALE'
  | 1

export type Consistency__Output = typeof Consistency[keyof typeof Consistency]
