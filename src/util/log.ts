import { pino, type Logger } from "pino";

/**
 * One root logger per process; components take child loggers (`logger.child({ component })`).
 * Level from TALLY_LOG_LEVEL; silent under vitest unless asked for.
 */
const defaultLevel = process.env.TALLY_LOG_LEVEL ?? (process.env.VITEST ? "silent" : "info");

export const rootLogger: Logger = pino({ level: defaultLevel, base: { pid: process.pid } });

export function componentLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger.child({ component, ...bindings });
}

export type { Logger };
