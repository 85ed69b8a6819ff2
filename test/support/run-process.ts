import { spawn } from "node:child_process";

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** True when the deadline passed and the process (or its group) was killed. */
  killed: boolean;
}

export interface RunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  deadlineMs: number;
  /** Run in a process group of its own and SIGKILL the whole group at the deadline (a shell's children too). */
  group?: boolean;
}

/** Runs `command ...args` to its end, collecting its output; SIGKILL at the deadline. */
export function runProcess(command: string, args: string[], options: RunOptions): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: options.group === true,
    });
    let stdout = "";
    let stderr = "";
    let killed = false;
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      killed = true;
      if (options.group !== true || child.pid === undefined) {
        child.kill("SIGKILL");
        return;
      }
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // The group is gone already.
      }
    }, options.deadlineMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, killed });
    });
  });
}

/** Runs `node ...args` to completion, collecting its output; SIGKILL at the deadline. */
export function runNodeProcess(args: string[], options: Omit<RunOptions, "group">): Promise<ProcessResult> {
  return runProcess(process.execPath, args, options);
}
