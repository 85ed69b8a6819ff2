// Original file: proto/tally.proto


export interface MetaMembership {
  'voters'?: (number)[];
  'learners'?: (number)[];
  'votersOutgoing'?: (number)[];
}

export interface MetaMembership__Output {
  'voters': (number)[];
  'learners': (number)[];
  'votersOutgoing': (number)[];
}
