/**
 * Real packet loss on loopback for the region chaos run (the box has no tc netem): iptables drops
 * packets to and from the given TCP ports on `lo` at random (`-m statistic --mode random`), so the
 * kernel's TCP retransmits them (RTO of 200 ms at least, doubling) exactly as on a lossy wire.
 *
 * Only ports the caller opened (the inter-region proxies' listening ports) are touched, through a
 * chain of this process's own (TALLY_LOSS_<pid>) jumped to from INPUT; remove() deletes the jumps
 * and the chain, and an exit handler does it too if the process ends without remove(). Needs root
 * and iptables: unavailableReason() says why not, and the caller falls back to the proxy's
 * emulated loss (test/support/proxy.ts, LinkShape.lossRate).
 */
import { execFileSync } from "node:child_process";

const IPTABLES = "iptables";
const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

function iptables(...args: string[]): string {
  return execFileSync(IPTABLES, ["-w", "5", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10_000 });
}

/** Why real loss cannot be injected here (undefined: it can). */
export function unavailableReason(): string | undefined {
  if (process.platform !== "linux") return `iptables loss needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return "iptables loss needs root (uid 0)";
  try {
    iptables("-S", "INPUT");
  } catch (error) {
    return `iptables is missing or unusable: ${(error as Error).message.split("\n")[0]}`;
  }
  return undefined;
}

export interface LossCounters {
  /** Packets to or from the ports that reached the chain, and the ones it dropped. */
  packets: number;
  dropped: number;
}

export class IptablesLoss {
  private removed = false;
  private readonly onExit = (): void => this.remove();
  /** Ctrl-C or a kill does not run "exit" handlers: remove the rules, then die of the signal as before. */
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.remove();
    process.kill(process.pid, signal);
  };

  private constructor(
    readonly chain: string,
    private readonly jumps: string[][],
  ) {
    process.once("exit", this.onExit);
    for (const signal of SIGNALS) process.once(signal, this.onSignal);
  }

  /** Drops packets to and from each port on lo with `probability`; throws (changing nothing) when it cannot. */
  static install(ports: readonly number[], probability: number): IptablesLoss {
    if (!(probability > 0 && probability < 1)) throw new RangeError(`iptables loss: probability must be in (0, 1), got ${probability}`);
    for (const port of ports)
      if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new RangeError(`iptables loss: bad port ${port}`);
    const reason = unavailableReason();
    if (reason !== undefined) throw new Error(reason);
    const chain = `TALLY_LOSS_${process.pid}`;
    const jumps = ports.flatMap((port) => [
      ["INPUT", "-i", "lo", "-p", "tcp", "--dport", String(port), "-j", chain],
      ["INPUT", "-i", "lo", "-p", "tcp", "--sport", String(port), "-j", chain],
    ]);
    iptables("-N", chain);
    const loss = new IptablesLoss(chain, []);
    try {
      iptables("-A", chain); // no target: counts every packet that enters the chain
      iptables("-A", chain, "-m", "statistic", "--mode", "random", "--probability", String(probability), "-j", "DROP");
      for (const jump of jumps) {
        iptables("-I", ...jump);
        loss.jumps.push(jump);
      }
    } catch (error) {
      loss.remove();
      throw error;
    }
    return loss;
  }

  /** The chain's packet counters (its first rule counts, its second drops). */
  counters(): LossCounters {
    const rows = iptables("-L", this.chain, "-v", "-x", "-n")
      .split("\n")
      .slice(2)
      .filter((line) => line.trim() !== "")
      .map((line) => Number(line.trim().split(/\s+/)[0]));
    return { packets: rows[0] ?? 0, dropped: rows[1] ?? 0 };
  }

  /** Deletes the jumps and the chain (idempotent; errors are reported, never thrown past the first). */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    process.removeListener("exit", this.onExit);
    for (const signal of SIGNALS) process.removeListener(signal, this.onSignal);
    const failures: string[] = [];
    for (const jump of this.jumps.splice(0)) {
      try {
        iptables("-D", ...jump);
      } catch (error) {
        failures.push((error as Error).message.split("\n")[0]!);
      }
    }
    for (const args of [
      ["-F", this.chain],
      ["-X", this.chain],
    ]) {
      try {
        iptables(...args);
      } catch (error) {
        failures.push((error as Error).message.split("\n")[0]!);
      }
    }
    if (failures.length > 0) process.stderr.write(`iptables loss: teardown of ${this.chain}: ${failures.join("; ")}\n`);
  }

  /** True while the chain exists (tests check teardown). */
  static chainExists(chain: string): boolean {
    try {
      iptables("-S", chain);
      return true;
    } catch {
      return false;
    }
  }
}
