// Original file: proto/tally.proto

import type { GetResponse as _tally_v1_GetResponse, GetResponse__Output as _tally_v1_GetResponse__Output } from '../../tally/v1/GetResponse.js';

export interface GetManyResponse {
  'values'?: (_tally_v1_GetResponse)[];
}

export interface GetManyResponse__Output {
  'values': (_tally_v1_GetResponse__Output)[];
}
