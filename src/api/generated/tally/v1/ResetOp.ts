// Original file: proto/tally.proto


export interface ResetOp {
  'key'?: (Buffer | Uint8Array | string);
}

export interface ResetOp__Output {
  'key': (Buffer);
}
