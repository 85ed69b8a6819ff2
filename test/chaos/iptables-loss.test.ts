/**
 * Real packet loss by iptables (test/support/iptables-loss.ts), the loss of the long region chaos
 * run: packets to and from one proxy port are dropped at random, TCP retransmits them (every byte
 * arrives, in order, later), the chain counts what it dropped, and teardown leaves no rule behind.
 * Skipped, with the reason printed, where iptables or root is missing (the short region chaos test
 * uses the proxy's emulated loss, so `npm test` never needs iptables).
 */
import { createServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../support/cluster.js";
import { IptablesLoss, unavailableReason } from "../support/iptables-loss.js";
import { echoParts } from "../support/echo-parts.js";
import { NodeProxy } from "../support/proxy.js";

const reason = unavailableReason();
if (reason !== undefined) console.log(`iptables loss tests skipped: ${reason}`);
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.skipIf(reason !== undefined)("iptables loss", () => {
  it(
    "drops packets on the given port only; TCP delivers every byte in order; teardown removes the chain",
    { timeout: 60_000 },
    async () => {
      const sockets = new Set<Socket>();
      const server = createServer((socket) => {
        sockets.add(socket);
        socket.setNoDelay(true);
        socket.on("error", () => undefined);
        socket.pipe(socket);
      });
      const target = await freePort();
      await new Promise<void>((r) => server.listen(target, "127.0.0.1", () => r()));
      cleanups.push(() => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))));
      const proxy = new NodeProxy(9, "127.0.0.1", await freePort(), "127.0.0.1", target, () => 1);
      await proxy.start();
      cleanups.push(() => proxy.close());

      // Bad input: refused before any rule exists.
      expect(() => IptablesLoss.install([proxy.listenPort], 1.5)).toThrow(/probability must be in \(0, 1\)/);
      expect(() => IptablesLoss.install([0], 0.1)).toThrow(/bad port 0/);
      expect(IptablesLoss.chainExists(`TALLY_LOSS_${process.pid}`)).toBe(false);

      const track = (socket: Socket): void => void cleanups.push(() => void socket.destroy());
      // The loss starts once the connection is up: a dropped SYN waits out a 1 s retransmission
      // timeout, during which every part would be written and then leave in one or two segments
      // (CI once counted exactly 10 packets). Data and acknowledgements are all subject to it.
      let installed: IptablesLoss | undefined;
      const connected = (): void => {
        installed = IptablesLoss.install([proxy.listenPort], 0.3);
        cleanups.push(() => installed!.remove());
      };
      const { sent, received } = await echoParts({ port: proxy.listenPort, parts: 60, gapMs: 5, deadlineMs: 45_000, track, connected });
      expect(received).toBe(sent);
      const loss = installed!;
      expect(IptablesLoss.chainExists(loss.chain)).toBe(true);
      const counters = loss.counters();
      expect(counters.packets).toBeGreaterThan(10);
      expect(counters.dropped).toBeGreaterThan(0);
      expect(counters.dropped).toBeLessThan(counters.packets);
      loss.remove();
      expect(IptablesLoss.chainExists(loss.chain)).toBe(false);
    },
  );
});
