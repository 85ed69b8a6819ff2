#!/usr/bin/env node
// tallyctl: runs the TypeScript CLI (src/cli/main.ts) through tsx's loader; no build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
