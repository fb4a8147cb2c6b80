// Types for dist.mjs, which the bundle tests import.

/** The SEA's three bundles (launcher.cjs, keytap.cjs, keytap-cli.cjs), written into `dir`. */
export function buildBundles(dir?: string): Promise<void>;
