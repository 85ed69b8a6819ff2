/**
 * tallyd's log format: readable lines on a terminal, JSON lines otherwise (a file, a pipe, a log
 * shipper). TALLY_LOG_FORMAT=pretty|json forces one; unset, a terminal on stdout means pretty.
 *
 * Pretty lines are made by pino-pretty's prettyFactory in this thread and written with a
 * synchronous write, never through pino's worker-thread transport: a transport thread can hold a
 * stopping process open, and lines buffered for it are lost on process.exit.
 */
import type { DestinationStream } from "pino";
import { pino } from "pino";
import { prettyFactory } from "pino-pretty";

export type LogFormat = "pretty" | "json";

export const LOG_FORMATS: readonly LogFormat[] = ["pretty", "json"];

/** The format for this process; throws with a readable message for an unknown TALLY_LOG_FORMAT. */
export function chooseLogFormat(env: Record<string, string | undefined>, stdoutIsTerminal: boolean): LogFormat {
  const forced = env["TALLY_LOG_FORMAT"]?.trim();
  if (forced === undefined || forced === "") return stdoutIsTerminal ? "pretty" : "json";
  if ((LOG_FORMATS as readonly string[]).includes(forced)) return forced as LogFormat;
  throw new Error(`TALLY_LOG_FORMAT must be ${LOG_FORMATS.join(" or ")}, got ${JSON.stringify(forced)}`);
}

/** pino JSON lines in, one short colorized line each out to `fd` (the time, level, component, message, then the fields). */
export function prettyDestination(options: { colorize: boolean; fd?: number }): DestinationStream {
  const format = prettyFactory({
    colorize: options.colorize,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname,component,node",
    messageFormat: "{if node}n{node} {end}{if component}{component}: {end}{msg}",
    singleLine: true,
  });
  const out = pino.destination({ dest: options.fd ?? 1, sync: true });
  return { write: (line: string) => out.write(format(line)) };
}
