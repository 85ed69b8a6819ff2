import { pino, type DestinationStream, type Logger } from "pino";

/**
 * One root logger per process; components take child loggers (`logger.child({ component })`).
 * Level from TALLY_LOG_LEVEL; silent under vitest unless asked for. Lines are JSON on stdout until
 * a program picks another destination with setLogDestination (tallyd does, from its log format:
 * src/server/ops/log-format.ts). Every logger writes through `forward`, so the loggers modules made
 * at import time, before the program chose, follow the choice too.
 */
const defaultLevel = process.env.TALLY_LOG_LEVEL ?? (process.env.VITEST ? "silent" : "info");

let destination: DestinationStream & { flush?: (callback: (error?: Error) => void) => void } = pino.destination({ dest: 1, sync: false });

const forward = {
  write: (line: string): void => void destination.write(line),
  flush: (callback: (error?: Error) => void): void => (destination.flush ? destination.flush(callback) : callback()),
};

export const rootLogger: Logger = pino({ level: defaultLevel, base: { pid: process.pid } }, forward);

/** Where every logger's lines go from now on (a synchronous stream: nothing is lost at exit). */
export function setLogDestination(stream: DestinationStream): void {
  destination = stream;
}

export function componentLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger.child({ component, ...bindings });
}

export type { Logger };
