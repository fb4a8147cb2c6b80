/**
 * A process that watches the PC/SC readers the way the tray does, for pcsc.test.ts: does it end?
 * Usage: node --import tsx watch-child.ts exit|stop
 * - exit: process.exit() while the watch's worker thread is blocked in SCardGetStatusChange
 *   (Node joins its worker threads at exit: the watch must cancel the call itself);
 * - stop: stop the watch and leave nothing else to do: the event loop must drain by itself.
 */
import { watchPcscReaders } from '../../src/device/discovery/pcsc-readers.js';

const mode = process.argv[2];
const watch = await watchPcscReaders(
  () => undefined,
  (error) => process.stderr.write(`watch error: ${error.message}\n`),
);
if (!watch) {
  process.stdout.write('no watch\n');
  process.exit(2);
}
process.stdout.write('watching\n');
// Let the loop block in its native call first.
await new Promise((resolve) => setTimeout(resolve, 300));
if (mode === 'exit') process.exit(0);
await watch.stop();
process.stdout.write('stopped\n');
