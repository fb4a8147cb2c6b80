// Bundles the CLI into CommonJS files. One file starts faster than a module graph, and Node's
// single-executable builder takes exactly one CommonJS script. The two bundles and what the smaller
// one leaves out are described in bundle-options.mjs.
import { join } from 'node:path';
import { build } from 'esbuild';
import { ROOT, asciiComments, cliBundle, fullBundle } from './bundle-options.mjs';

await Promise.all([build(fullBundle), build(cliBundle)]);
await Promise.all([fullBundle.outfile, cliBundle.outfile].map((file) => asciiComments(join(ROOT, file))));
