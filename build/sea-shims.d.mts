// Types for sea-shims.mjs, which the SEA bundle test imports.
import type { Plugin } from 'esbuild';

export const seaShims: Plugin;
