// Original file: proto/tally.proto


export interface RoutesRequest {
}

export interface RoutesRequest__Output {
}
