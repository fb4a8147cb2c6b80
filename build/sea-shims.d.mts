// Types for sea-shims.mjs, which the bundle tests import.
import type { Plugin } from 'esbuild';

export const seaShims: Plugin;
