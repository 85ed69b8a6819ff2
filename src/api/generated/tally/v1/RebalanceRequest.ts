// Original file: proto/tally.proto


export interface RebalanceRequest {
  'apply'?: (boolean);
}

export interface RebalanceRequest__Output {
  'apply': (boolean);
}
