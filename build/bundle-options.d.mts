// Types for bundle-options.mjs, which the bundle tests import.
import type { BuildOptions, Plugin } from 'esbuild';

export const ROOT: string;
export const RESIDENT_ONLY: readonly string[];
export function isResidentOnly(path: string): boolean;
export const RESIDENT_NAMESPACE: string;
export const leaveOutResident: Plugin;
export const common: BuildOptions;
export const fullBundle: BuildOptions & { outfile: string };
export const cliBundle: BuildOptions & { outfile: string };
export function asciiComments(file: string): Promise<void>;
