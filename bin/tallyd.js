#!/usr/bin/env node
import { runBundled } from "./bundle.js";
await runBundled("src/server/main.ts", "tallyd");
