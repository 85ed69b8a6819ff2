// Original file: proto/tally.proto

import type { AddOp as _tally_v1_AddOp, AddOp__Output as _tally_v1_AddOp__Output } from '../../tally/v1/AddOp.js';
import type { SetOp as _tally_v1_SetOp, SetOp__Output as _tally_v1_SetOp__Output } from '../../tally/v1/SetOp.js';
import type { ResetOp as _tally_v1_ResetOp, ResetOp__Output as _tally_v1_ResetOp__Output } from '../../tally/v1/ResetOp.js';
import type { CompareAndSetOp as _tally_v1_CompareAndSetOp, CompareAndSetOp__Output as _tally_v1_CompareAndSetOp__Output } from '../../tally/v1/CompareAndSetOp.js';
import type { WindowAddOp as _tally_v1_WindowAddOp, WindowAddOp__Output as _tally_v1_WindowAddOp__Output } from '../../tally/v1/WindowAddOp.js';
import type { TryAcquireOp as _tally_v1_TryAcquireOp, TryAcquireOp__Output as _tally_v1_TryAcquireOp__Output } from '../../tally/v1/TryAcquireOp.js';
import type { UniqueAddOp as _tally_v1_UniqueAddOp, UniqueAddOp__Output as _tally_v1_UniqueAddOp__Output } from '../../tally/v1/UniqueAddOp.js';

export interface BatchOp {
  'add'?: (_tally_v1_AddOp | null);
  'set'?: (_tally_v1_SetOp | null);
  'reset'?: (_tally_v1_ResetOp | null);
  'compareAndSet'?: (_tally_v1_CompareAndSetOp | null);
  'windowAdd'?: (_tally_v1_WindowAddOp | null);
  'tryAcquire'?: (_tally_v1_TryAcquireOp | null);
  'uniqueAdd'?: (_tally_v1_UniqueAddOp | null);
  'op'?: "add"|"set"|"reset"|"compareAndSet"|"windowAdd"|"tryAcquire"|"uniqueAdd";
}

export interface BatchOp__Output {
  'add'?: (_tally_v1_AddOp__Output | null);
  'set'?: (_tally_v1_SetOp__Output | null);
  'reset'?: (_tally_v1_ResetOp__Output | null);
  'compareAndSet'?: (_tally_v1_CompareAndSetOp__Output | null);
  'windowAdd'?: (_tally_v1_WindowAddOp__Output | null);
  'tryAcquire'?: (_tally_v1_TryAcquireOp__Output | null);
  'uniqueAdd'?: (_tally_v1_UniqueAddOp__Output | null);
  'op'?: "add"|"set"|"reset"|"compareAndSet"|"windowAdd"|"tryAcquire"|"uniqueAdd";
}
