// Types for deb.mjs, which build/dist.mjs calls and the tests import.
export function debianVersion(version: string): string;
export function debFileName(version: string): string;
export function buildDeb(options: { executable: string; version?: string; outDir?: string; nodeLicense?: string }): Promise<string>;
