/**
 * keytap's version, from package.json. The bundle gets it at build time (build/bundle.mjs defines
 * KEYTAP_VERSION, and package.json itself stays out of the bundle); run from source (tsx, vitest),
 * it comes from the import.
 */
import packageJson from '../../package.json' with { type: 'json' };

declare const KEYTAP_VERSION: string | undefined;

export const KEYTAP_PACKAGE_VERSION: string = typeof KEYTAP_VERSION === 'string' ? KEYTAP_VERSION : packageJson.version;
