// Types of bin/bundle.js for the TypeScript scripts that call it (scripts/start.ts, scripts/chaos.ts, bench/).
export declare const BUNDLES: Readonly<Record<"tallyd" | "tallyctl", string>>;
export declare function buildBundle(entry: string, name: string): string;
export declare function ensureBundle(entry: string, name: string): string;
export declare function ensureBundles(): void;
export declare function buildLibrary(): void;
export declare function buildAll(): void;
export declare function runtimePackageDirs(name: string): string[];
