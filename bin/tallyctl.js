#!/usr/bin/env node
import { runBundled } from "./bundle.js";
await runBundled("src/cli/main.ts", "tallyctl");
