// The afterStep seam the crash-safety tests kill the programmer at: called at every durable step
// of every key, in order, with the key's position in the run; and a throwing hook stops the run
// right there, as a kill would, with the seed already in the ledger.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openOathSession } from '../../src/device/open.js';
import { virtualFileKey } from '../../src/emulator/virtual-file.js';
import { readLedger } from '../../src/provision/ledger.js';
import { ProvisionRun } from '../../src/provision/run.js';
import type { ProgramStep } from '../../src/provision/steps.js';
import { DEFAULT_PARAMETERS, buildToken, generateSecret } from '../../src/provision/token.js';
import { seedFormat } from '../../src/seeds/index.js';
import { tempDir } from '../support/cli.js';

describe('afterStep', () => {
  it('sees every step of every key in order, with its number', async () => {
    const dir = tempDir();
    const steps: string[] = [];
    const run = await ProvisionRun.start({ outDir: join(dir, 'out'), formats: [seedFormat('pskc')], afterStep: (step, n) => steps.push(`${step}@${n}`) });
    try {
      for (const name of ['a', 'b']) {
        const key = await openOathSession(virtualFileKey({ file: join(dir, `${name}.json`) }));
        try {
          const result = await run.programOne(key, buildToken(DEFAULT_PARAMETERS, generateSecret('SHA1'), run.serials.next()));
          expect(result.outcome.status).toBe('programmed');
        } finally {
          await key.close();
        }
      }
    } finally {
      await run.close();
    }
    // Ledger append, PUT, verify, ledger done, then the seed file written but not renamed: per key.
    const perKey = ['after-ledger-append', 'after-put', 'after-verify', 'after-ledger-done', 'mid-export'];
    expect(steps).toEqual([...perKey.map((s) => `${s}@1`), ...perKey.map((s) => `${s}@2`)]);
  });

  it.each<ProgramStep>(['after-ledger-append', 'after-put'])('a hook that throws at %s leaves the seed in the ledger as pending', async (at) => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const run = await ProvisionRun.start({
      outDir: out,
      formats: [seedFormat('pskc')],
      afterStep: (step) => {
        if (step === at) throw new Error(`stopped ${step}`);
      },
    });
    const token = buildToken(DEFAULT_PARAMETERS, generateSecret('SHA1'), run.serials.next());
    const key = await openOathSession(virtualFileKey({ file: join(dir, 'key.json') }));
    try {
      await expect(run.programOne(key, token)).rejects.toThrow(`stopped ${at}`);
      expect((await key.session.list()).length).toBe(at === 'after-put' ? 1 : 0);
    } finally {
      await key.close();
      await run.close();
    }
    const ledger = await readLedger(out);
    expect(ledger.entries.map((e) => [e.token.serial, e.state])).toEqual([[token.serial, 'pending']]);
  });
});
