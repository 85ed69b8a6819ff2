// Original file: proto/tally.proto


export interface DeclareHotRequest {
  'key'?: (Buffer | Uint8Array | string);
  'subCounters'?: (number);
}

export interface DeclareHotRequest__Output {
  'key': (Buffer);
  'subCounters': (number);
}
