// Types for dist.mjs, which the bundle tests import.

/** The SEA's three bundles (launcher.cjs, keytap.cjs, keytap-cli.cjs), written into `dir`. */
export function buildBundles(dir?: string): Promise<void>;

export type TargetId = 'linux-x64' | 'linux-arm64' | 'win-x64' | 'darwin-x64';
/** Node's names for each target, and the file name of its executable. */
export const TARGETS: Record<TargetId, { platform: NodeJS.Platform; arch: string; file: string }>;
/** The target's Node binary in the download cache (present once npm run dist has run). */
export function runtimeBinaryPath(id: TargetId): string;
