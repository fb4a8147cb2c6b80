/**
 * keytap for the crash-safety tests: the real CLI (src/cli/program.ts) with a step hook that kills
 * the process with SIGKILL at one step of one key. SIGKILL, not an exception: nothing may run
 * after it, exactly as after a power cut. Run as
 *   node --import tsx test/cli/program-crash-entry.ts STEP@N keytap-arguments…
 * with STEP one of PROGRAM_STEPS and N the key's position in the run (1-based).
 */
import { processIo } from '../../src/cli/output.js';
import { runCli } from '../../src/cli/program.js';
import type { ProgramStep } from '../../src/provision/steps.js';
import { PROGRAM_STEPS } from '../../src/provision/steps.js';

const [spec = '', ...args] = process.argv.slice(2);
const [step, n] = spec.split('@');
if (!PROGRAM_STEPS.includes(step as ProgramStep) || !/^[1-9]\d*$/u.test(n ?? '')) {
  process.stderr.write(`crash-entry: "${spec}" is not STEP@N with STEP one of ${PROGRAM_STEPS.join(', ')}\n`);
  process.exit(2);
}

const code = await runCli(args, processIo, {
  afterStep: (at, keyNumber) => {
    if (at === step && keyNumber === Number(n)) process.kill(process.pid, 'SIGKILL');
  },
});
process.exitCode = code;
setImmediate(() => process.exit(code)).unref();
