// Original file: proto/tally.proto


export interface StatusRequest {
  'localOnly'?: (boolean);
}

export interface StatusRequest__Output {
  'localOnly': (boolean);
}
