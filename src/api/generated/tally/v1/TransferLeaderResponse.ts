// Original file: proto/tally.proto


export interface TransferLeaderResponse {
  'leaderId'?: (string);
}

export interface TransferLeaderResponse__Output {
  'leaderId': (string);
}
