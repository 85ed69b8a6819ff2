// Original file: proto/tally.proto


export interface ClusterMapRequest {
}

export interface ClusterMapRequest__Output {
}
