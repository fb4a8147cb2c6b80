/**
 * Figure for issue 10: the per-key overhead of a roll-out batch with a users file and Entra
 * through Microsoft Graph (`keytap program --batch --yes --users FILE --entra`), against the local
 * Graph stand-in, 25 virtual keys, touch after 0 ms. Measured from outside, as the administrator
 * sees it: from `keytap virtual start` having plugged the key to the programmer saying "Remove …"
 * (programmed, verified, ledger done, seed files rewritten, device created, assigned and activated
 * with a code read from the key). The same batch without --users/--entra is measured alongside, so
 * the difference is what users and Graph add.
 *
 * Run: npm run bench -- program-entra
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphStandin } from '../test/support/graph-standin.js';
import { Programmer, VirtualKeys } from '../test/provision/support.js';
import { ms, summarize } from './stats.js';

const KEYS = 25;

async function perKey(args: string[], env: NodeJS.ProcessEnv, keys: VirtualKeys, prefix: string): Promise<number[]> {
  const programmer = new Programmer(args, env);
  const times: number[] = [];
  try {
    for (let n = 1; n <= KEYS; n++) {
      await programmer.waitFor(new RegExp(`Insert key ${n} `, 'u'), 1, 60_000);
      const name = `${prefix}${n}`;
      await keys.plug(name);
      const plugged = performance.now();
      await programmer.waitFor(new RegExp(`Remove virtual key ${name}\\.json`, 'u'), 1, 60_000);
      times.push(performance.now() - plugged);
      await keys.unplug(name);
    }
  } finally {
    programmer.child.kill('SIGINT');
    await programmer.exited;
  }
  if (!/Summary: 25 programmed, 0 failed, 0 skipped/u.test(programmer.stdout)) throw new Error(`the batch did not program every key:\n${programmer.stdout}\n${programmer.stderr}`);
  return times;
}

export async function benchProgramEntra(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keytap-bench-entra-'));
  const keys = new VirtualKeys();
  const standin = new GraphStandin();
  const upns = Array.from({ length: KEYS }, (_, i) => `user${i + 1}@contoso.example`);
  for (const upn of upns) standin.addUser(upn);
  await standin.start();
  try {
    const users = join(dir, 'users.csv');
    writeFileSync(users, `upn\n${upns.join('\n')}\n`);
    const env = { ...keys.env, ...standin.clientEnv() };
    const common = ['program', '--batch', '--yes', '--formats', 'entra,pskc', '--manufacturer', 'Acme', '--model', 'K1'];
    const plain = await perKey([...common, '--upn', 'same@contoso.example', '--out', join(dir, 'plain')], env, keys, 'plain-');
    const rollout = await perKey([...common, '--users', users, '--entra', '--out', join(dir, 'rollout')], env, keys, 'rollout-');
    if (standin.activations.length !== KEYS || !standin.activations.every((a) => a.accepted)) throw new Error('the stand-in did not get an accepted activation per key');
    const p = summarize(plain);
    const r = summarize(rollout);
    console.log(`batch, ${KEYS} virtual keys, key plugged → "Remove": with --users and --entra (Graph stand-in, local): median ${ms(r.median)}, max ${ms(r.max)}`);
    console.log(`  the same batch without users and Graph: median ${ms(p.median)}, max ${ms(p.max)}; users + Graph add ${ms(r.median - p.median)} per key (target: ≤ 300 ms beyond the human and the network)`);
  } finally {
    await keys.unplugAll();
    await standin.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
