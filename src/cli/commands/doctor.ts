import type { Command } from 'commander';
import { Option } from 'commander';
import { udevRules } from '../../device/discovery/known-keys.js';
import { KeytapError, isKeytapError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import type { CliIo } from '../output.js';
import { printJson } from '../output.js';
import { buildReport, defaultReportName, formatProbe } from '../probe-report.js';
import { shortcutCommand } from '../self.js';
import { KEYTAP_PACKAGE_VERSION } from '../version.js';

interface DoctorOptions {
  json?: boolean;
  udevRules?: boolean;
  probe?: boolean;
  includeSerials?: boolean;
  out?: string;
}

/** The probe ran: exit 0 even when nothing answered. Only a report that cannot be written is an error. */
async function runProbe(io: CliIo, options: DoctorOptions): Promise<void> {
  if (options.udevRules) throw new KeytapError('USAGE', 'Use either --probe or --udev-rules, not both.');
  if (options.out === '') throw new KeytapError('USAGE', '--out needs a file name.');
  const includeSerials = options.includeSerials ?? false;
  const now = new Date();
  const out = options.out ?? defaultReportName(now);
  // Imported here: node-hid and PC/SC are loaded only when the probe runs.
  const { probeEverything } = await import('../../device/probe/run.js');
  const run = await probeEverything({ includeSerials });
  const report = buildReport(run, { version: KEYTAP_PACKAGE_VERSION, platform: `${process.platform} ${process.arch}`, now, includeSerials });
  // Owner-only and atomic like every file keytap writes; an existing file is refused, not replaced.
  try {
    await writeFileAtomic(out, `${JSON.stringify(report, null, 2)}\n`, { mode: 0o600 });
  } catch (error) {
    if (!isKeytapError(error, 'EXISTS')) throw error;
    throw new KeytapError('USAGE', error.message, { hint: 'Give another file with --out, or move that one away.' });
  }
  if (options.json) printJson(io, report);
  else for (const line of formatProbe(run, out)) io.out(line);
}

export function registerDoctor(program: Command, io: CliIo): void {
  program
    .command('doctor')
    .description('check what keytap needs on this machine (device access, tray, notifications, clipboard, shortcut, settings), with fixes')
    .addOption(new Option('--json', 'print the checks as JSON'))
    .addOption(new Option('--udev-rules', 'print udev rules that let the logged-in user open security keys (Linux)'))
    .addOption(new Option('--probe', 'ask every FIDO HID device and smart card reader what it answers (read-only) and write a report to send in'))
    .addOption(new Option('--include-serials', 'with --probe: put serial numbers into the report (left out by default)'))
    .addOption(new Option('--out <file>', 'with --probe: where to write the report (default keytap-probe-DATE.json in the current folder)'))
    .action(async (options: DoctorOptions) => {
      if (options.probe) return runProbe(io, options);
      if (options.includeSerials || options.out !== undefined) {
        throw new KeytapError('USAGE', `${options.out !== undefined ? '--out' : '--include-serials'} only applies together with --probe.`, {
          hint: 'Run keytap doctor --probe to probe the keys.',
        });
      }
      if (options.udevRules) {
        io.out(udevRules().trimEnd());
        return;
      }
      // Imported here: the checks load D-Bus and conf, which other commands should not pay for at start-up.
      const { formatDoctor, runDoctor } = await import('../../app/doctor.js');
      const checks = await runDoctor({ shortcutCommand: shortcutCommand() });
      if (options.json) printJson(io, checks);
      else for (const line of formatDoctor(checks)) io.out(line);
      // Exit 1 when something needed is missing, so scripts can tell.
      const failed = checks.filter((c) => c.status === 'fail');
      if (failed.length > 0) throw new KeytapError('DEVICE_ERROR', `${failed.length} of ${checks.length} checks failed: ${failed.map((c) => c.name).join(', ')}.`);
    });
}
