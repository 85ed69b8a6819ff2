import { Packr } from "msgpackr";
const p = new Packr({ useRecords: false, int64AsType: "bigint", moreTypes: false } as any);
const a = p.pack([1, 2n, 9007199254740993n, -(2n**63n), 2n**64n-1n, 1700000000000, new Uint8Array([1,2,3])]);
const b = p.pack([5]);
console.log(a, b, a.buffer === b.buffer, Buffer.isBuffer(a));
console.log(p.unpack(a));
try { console.log(p.unpack(new Uint8Array([...a, 0x01]))); } catch (e) { console.log("trailing:", (e as Error).message); }
try { console.log(p.unpack(a.subarray(0, 5))); } catch (e) { console.log("trunc:", (e as Error).message); }
try { console.log(p.pack([2n**64n])); } catch (e) { console.log("big:", (e as Error).message); }
try { console.log(p.unpack(new Uint8Array([]))); } catch (e) { console.log("empty:", (e as Error).message); }
console.log(p.unpack(new Uint8Array([0xd4, 0xff, 0x00])));
