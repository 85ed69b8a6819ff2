#!/usr/bin/env node
import { runBundle } from "./launch.js";
await runBundle("tallyd");
