/**
 * tallyctl's entry point (bin/tallyctl.js loads it through tsx). The exit code is set, not forced,
 * so stdout is flushed and a leaked handle would show up as a hang in tests rather than be hidden;
 * the unref'd timer is only a safety net for an operator's shell.
 */
import { defaultCliIo, runCli } from "./cli.js";

const code = await runCli(process.argv.slice(2), defaultCliIo());
process.exitCode = code;
setTimeout(() => process.exit(code), 2_000).unref();
