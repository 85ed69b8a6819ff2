// Original file: proto/tally.proto


export interface InternalResponse {
  'body'?: (Buffer | Uint8Array | string);
}

export interface InternalResponse__Output {
  'body': (Buffer);
}
