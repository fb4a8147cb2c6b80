/**
 * V8 settings for the resident tray process only. They are set at run time, from the process
 * itself, because anything in the single executable's SEA "execArgv" (or on a node command line)
 * would apply to every command, and these trade speed of hot code for memory: right for a process
 * that idles for days, wrong for `keytap program` over a batch of keys.
 *
 * Each flag is one V8 reads when it decides, not only when it starts, so setting it before the
 * resident process does its work is enough (test/cli/resident-v8.test.ts checks that they take
 * effect). Figures: RSS of the tray from the Linux executable after 60 s idle with a key present
 * (bench/tray.ts's figure 1; a first start, the executable evicted from the page cache before each
 * run), each flag added to the ones above it:
 *
 *   --no-opt              Turbofan never runs: its code pages are never touched and its
 *                         compile zones never allocated; RSS 72.9 → 63.3 MB.
 *   --no-sparkplug,       with the above, no machine code is generated at run time at all
 *   --regexp-interpret-all, (baseline code, native regexps); RSS 63.3 → 62.5 MB.
 *   --no-regexp-tier-up
 *   --bytecode-old-age=1  the bytecode of functions that ran only at start-up is dropped at the
 *                         memory reducer's GCs instead of after six GCs that an idle process
 *                         never gets to; a function used again is compiled again from the
 *                         source (lazily, as at start-up); RSS 62.5 → 60.5 MB.
 *
 * Tried and left out (same bench): --optimize-for-size, --max-semi-space-size=1, --max-lazy: no
 * change; --single-threaded-gc: the same CPU time, all of it on the main thread; --v8-pool-size=1
 * or 2 (a Node option, so for every command): 3.6 MB less before --no-opt, nothing after it;
 * --memory-reducer-gc-count=1: 0.03-0.04 s less CPU in the idle minute but 2-3 MB more RSS;
 * --no-memory-reducer: no idle CPU but 9 MB more RSS. --lite-mode and --jitless save what the
 * flags above save, but V8 takes them only at start-up (so for every command, from the SEA's
 * execArgv) and then prints a warning about WebAssembly on every run.
 */
import { setFlagsFromString } from 'node:v8';

export const RESIDENT_V8_FLAGS: readonly string[] = ['--no-opt', '--no-sparkplug', '--regexp-interpret-all', '--no-regexp-tier-up', '--bytecode-old-age=1'];

/** Applies RESIDENT_V8_FLAGS to this process; call it once, first thing in the resident process. */
export function tuneV8ForResident(): void {
  for (const flag of RESIDENT_V8_FLAGS) setFlagsFromString(flag);
}
