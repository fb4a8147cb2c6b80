// A Feitian HOTP virtual key served with --type-codes display types its code through XTEST on
// Xvfb, as a real key's keyboard interface would; a recording X client (python3-xlib) has the
// focus and sees the digits and Return. `keytap program` verifies with that code: the test carries
// what the X client received to keytap's prompt on the pseudo-terminal (there is no X terminal
// emulator among the test peers to put the prompt itself on the display).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TYPED_CODE_PROMPT } from '../../src/cli/typed-code.js';
import { readLedger } from '../../src/provision/ledger.js';
import { keytapCommand, oathtool, runKeytap, tempDir } from '../support/cli.js';
import { HAVE_SCRIPT, startOnTerminal } from '../support/terminal.js';
import { startRecorder } from '../support/x11-recorder.js';
import { Desktop, missingTool } from './desktop.js';

const missing = process.platform === 'linux' ? (missingTool('Xvfb', '/usr/bin/python3') ?? (HAVE_SCRIPT ? undefined : 'script')) : 'Linux';
const noXlib = missing ? undefined : (() => {
  const probe = spawn('/usr/bin/python3', ['-c', 'import Xlib']);
  return new Promise<boolean>((resolve) => probe.once('exit', (code) => resolve(code !== 0)));
})();
if (missing) console.warn(`skipping the Feitian XTEST test: ${missing} is missing (see .ci/run)`);

const SEED_HEX = Buffer.from('12345678901234567890').toString('hex');
const XK_RETURN = 0xff0d;

describe.skipIf(missing !== undefined)('a Feitian virtual key typing through XTEST', async () => {
  const skip = (await noXlib) === true;
  const desktop = new Desktop();
  const dir = tempDir('keytap-feitian-x-');
  let env: NodeJS.ProcessEnv = {};

  beforeAll(async () => {
    if (skip) return;
    await desktop.startX();
    env = { ...desktop.processEnv(), KEYTAP_RUNTIME_DIR: join(dir, 'run') };
  });
  afterAll(async () => {
    if (!skip) await runKeytap(['virtual', 'stop'], { env });
    await desktop.stop();
  });

  it.skipIf(skip)('types the code and Return into the focused window; keytap program verifies with it', async () => {
    const recorder = await startRecorder(desktop.processEnv());
    try {
      const file = join(dir, 'hotp.json');
      const out = join(dir, 'seeds');
      const started = await runKeytap(['virtual', 'start', file, '--dialect', 'feitian', '--touch', 'auto', '--type-codes', 'display'], { env });
      expect(started.code, started.stderr).toBe(0);
      const self = keytapCommand(['program', '--type', 'hotp', '--secret', `hex:${SEED_HEX}`, '--yes', '--out', out]);
      let touched = false;
      const run = await startOnTerminal(self.command, self.args, {
        env,
        onOutput: (output, session) => {
          if (touched || !output.includes(TYPED_CODE_PROMPT)) return;
          touched = true;
          void (async () => {
            await runKeytap(['virtual', 'touch', file], { env });
            const keys = await recorder.waitForKeys(7);
            const digits = keys.filter((k) => k.char !== null).map((k) => k.char).join('');
            session.type(`${digits}${keys.at(-1)?.keysym === XK_RETURN ? '\r' : ''}`);
          })();
        },
      }).ended;
      expect(run.code, run.output).toBe(0);
      expect(run.output).toMatch(/programmed serial KT\d{6} as .*; verified\./u);
      const keys = recorder.keys.filter((k) => k.keysym === XK_RETURN || k.char !== null);
      expect(keys.map((k) => k.char ?? '\n').join('')).toBe(`${await oathtool({ hexSecret: SEED_HEX, type: 'HOTP', counter: 0 })}\n`);
      expect((await readLedger(out)).entries[0]).toMatchObject({ state: 'done', counterAfter: 1 });
    } finally {
      recorder.child.kill();
    }
  });
});
