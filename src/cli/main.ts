import { endOutputQuietlyWhenClosed, processIo } from './output.js';
import { runCli } from './program.js';

endOutputQuietlyWhenClosed();
// Exit through process.exitCode so pending output is flushed; a key left open would keep the
// event loop alive, so once the command is done nothing else is waited for.
runCli(process.argv.slice(2), processIo).then(
  (code) => {
    process.exitCode = code;
    setImmediate(() => process.exit(code)).unref();
  },
  (error: unknown) => {
    process.stderr.write(`keytap: ${String(error)}\n`);
    process.exit(1);
  },
);
