// Bundles the CLI into CommonJS files. One file starts faster than a module graph, and Node's
// single-executable builder takes exactly one CommonJS script. The two bundles and what the smaller
// one leaves out are described in bundle-options.mjs.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import { ROOT, cliBundle, fullBundle } from './bundle-options.mjs';

/** esbuild keeps some comments verbatim; their non-ASCII characters (§, →, ≤) become '?'. */
async function asciiComments(file) {
  const text = await readFile(file, 'utf8');
  const ascii = text.replace(/[\u0080-\u{10ffff}]/gu, '?');
  if (ascii !== text) await writeFile(file, ascii);
}

await Promise.all([build(fullBundle), build(cliBundle)]);
await Promise.all([fullBundle.outfile, cliBundle.outfile].map((file) => asciiComments(join(ROOT, file))));
