import { cpuUsage } from "node:process";
function t(label: string, f: () => number) {
  for (let i = 0; i < 200; i++) f();
  const c0 = cpuUsage(); let s = 0; for (let i = 0; i < 2000; i++) s += f(); const c = cpuUsage(c0);
  console.log(label.padEnd(24), (((c.user + c.system) * 1000) / 2000 / 1000).toFixed(1), "ns per element");
}
const u = new Uint8Array(4096);
t("slice 21", () => { let n = 0; for (let i = 0; i < 1000; i++) n += u.slice(0, 21).length; return n; });
t("subarray 21", () => { let n = 0; for (let i = 0; i < 1000; i++) n += u.subarray(0, 21).length; return n; });
t("new+loop 21", () => { let n = 0; for (let i = 0; i < 1000; i++) { const o = new Uint8Array(21); for (let j = 0; j < 21; j++) o[j] = u[j]!; n += o.length; } return n; });
t("new+set(sub) 21", () => { let n = 0; for (let i = 0; i < 1000; i++) { const o = new Uint8Array(21); o.set(u.subarray(0, 21)); n += o.length; } return n; });
t("Uint8Array.prototype.slice.call", () => { let n = 0; for (let i = 0; i < 1000; i++) n += Uint8Array.prototype.slice.call(u, 0, 21).length; return n; });
