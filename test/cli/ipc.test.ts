import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireInstance } from '../../src/app/instance.js';
import type { IpcHandler, IpcServer } from '../../src/app/ipc.js';
import { IPC_HEARTBEAT_MS, listenIpc, requestIpc } from '../../src/app/ipc.js';
import { MAX_QUEUED_READS } from '../../src/app/controller.js';
import { KeytapError } from '../../src/errors.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { oathtool, runKeytap, tempDir } from '../support/cli.js';
import type { TrayProcess } from '../support/tray-process.js';
import { quitTray, startTray, trayEnv } from '../support/tray-process.js';

const unix = process.platform !== 'win32';
const servers: IpcServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

const handler: IpcHandler = (request, context) => {
  switch (request.op) {
    case 'ping':
      return Promise.resolve({ pid: 4242, version: 'test' });
    case 'code':
      if (request.query === 'touch') {
        context.send({ event: 'touch', id: 'GitHub:alice' });
        return Promise.resolve({ id: 'GitHub:alice', code: '123456', validFrom: 1, validTo: 31 });
      }
      if (request.query === 'wait') {
        return new Promise((_resolve, reject) => context.signal.addEventListener('abort', () => reject(new KeytapError('CANCELLED', 'gone'))));
      }
      return Promise.reject(new KeytapError('NO_MATCH', `No account matches "${request.query ?? ''}".`, { hint: 'Accounts on the key: X' }));
    default:
      return Promise.reject(new Error('boom'));
  }
};

describe.runIf(unix)('IPC channel', () => {
  it('JSON lines: events, then one answer; errors carry code, message and hint', async () => {
    const path = join(tempDir(), 'k.sock');
    servers.push(await listenIpc(path, handler));
    const events: unknown[] = [];
    expect(await requestIpc({ op: 'code', query: 'touch' }, { path, onEvent: (e) => events.push(e) })).toEqual({
      ok: true,
      id: 'GitHub:alice',
      code: '123456',
      validFrom: 1,
      validTo: 31,
    });
    expect(events).toEqual([{ event: 'touch', id: 'GitHub:alice' }]);
    expect(await requestIpc({ op: 'code', query: 'x' }, { path })).toEqual({ ok: false, code: 'NO_MATCH', message: 'No account matches "x".', hint: 'Accounts on the key: X' });
    // a bug in the handler is an answer too, not a dead server
    expect(await requestIpc({ op: 'list' }, { path })).toMatchObject({ ok: false, code: 'DEVICE_ERROR' });
    expect(await requestIpc({ op: 'ping' }, { path })).toMatchObject({ ok: true, pid: 4242 });
  });

  it('the socket is owner-only; nobody listening means undefined', async () => {
    const dir = tempDir();
    const path = join(dir, 'k.sock');
    servers.push(await listenIpc(path, handler));
    const { statSync } = await import('node:fs');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await requestIpc({ op: 'ping' }, { path: join(dir, 'none.sock') })).toBeUndefined();
  });

  it('garbage requests get a USAGE answer', async () => {
    const path = join(tempDir(), 'k.sock');
    servers.push(await listenIpc(path, handler));
    for (const line of ['not json', '42', '{"op":"frob"}', '{"op":"code","query":7}', '{"op":"read"}', '{"op":"read","keyId":"k","credentialId":7}']) {
      const answer = await new Promise<string>((resolve) => {
        const socket = connect(path);
        let text = '';
        socket.on('data', (d) => (text += d.toString()));
        socket.on('close', () => resolve(text));
        socket.write(`${line}\n`);
      });
      expect(JSON.parse(answer), line).toMatchObject({ ok: false, code: 'USAGE' });
    }
  });

  it('a client that goes away aborts its request', async () => {
    const path = join(tempDir(), 'k.sock');
    let aborted = false;
    servers.push(
      await listenIpc(path, (_request, context) => {
        context.signal.addEventListener('abort', () => (aborted = true));
        return new Promise(() => undefined);
      }),
    );
    const abort = new AbortController();
    const pending = requestIpc({ op: 'code', query: 'wait' }, { path, signal: abort.signal });
    await new Promise((r) => setTimeout(r, 50));
    abort.abort();
    await expect(pending).rejects.toMatchObject({ code: 'CANCELLED' });
    await waitFor(() => aborted);
  });
});

describe.runIf(unix)('IPC timeouts', () => {
  it('a server that accepts but never says anything: TIMEOUT after the silence bound, not a hang', async () => {
    const path = join(tempDir(), 'k.sock');
    const held: Socket[] = [];
    const silent = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(path, resolve));
    try {
      await expect(requestIpc({ op: 'list' }, { path, silenceTimeoutMs: 300 })).rejects.toMatchObject({ code: 'TIMEOUT', message: `The running keytap (${path}) said nothing for 0.3 s.` });
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('a request that takes longer than the silence bound is answered: the server says it is working', async () => {
    const path = join(tempDir(), 'k.sock');
    servers.push(await listenIpc(path, () => new Promise((resolve) => setTimeout(() => resolve({ slow: true }), 3 * IPC_HEARTBEAT_MS + 200))));
    expect(await requestIpc({ op: 'list' }, { path, silenceTimeoutMs: IPC_HEARTBEAT_MS + 500 })).toEqual({ ok: true, slow: true });
  });
});

describe.runIf(unix)('one instance per user', () => {
  it('the first is primary; a second finds it and learns its pid', async () => {
    const path = join(tempDir(), 'keytap.sock');
    const first = await acquireInstance(handler, { path });
    expect(first.primary).toBe(true);
    if (first.primary) servers.push(first.server);
    const second = await acquireInstance(handler, { path });
    expect(second).toEqual({ primary: false, pid: 4242, version: 'test' });
  });

  it('a stale socket (its process was killed) is replaced', async () => {
    const path = join(tempDir(), 'keytap.sock');
    // A process that listens and dies without cleaning up, as a crash would.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(existsSync(path)).toBe(true);
    const result = await acquireInstance(handler, { path });
    expect(result).toMatchObject({ primary: true, replacedStale: true });
    if (result.primary) servers.push(result.server);
    expect(await requestIpc({ op: 'ping' }, { path })).toMatchObject({ ok: true });
  });

  it('a file that is not a socket is left alone, with a clear error', async () => {
    const path = join(tempDir(), 'keytap.sock');
    writeFileSync(path, 'mine');
    await expect(acquireInstance(handler, { path })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('not a socket') });
  });

  it('two starts at the same moment: exactly one primary', async () => {
    const path = join(tempDir(), 'keytap.sock');
    const results = await Promise.all([acquireInstance(handler, { path }), acquireInstance(handler, { path }), acquireInstance(handler, { path })]);
    for (const r of results) if (r.primary) servers.push(r.server);
    expect(results.filter((r) => r.primary)).toHaveLength(1);
  });
});

const SHA1_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe.runIf(unix)('keytap code / list through the running keytap', () => {
  let env: NodeJS.ProcessEnv = {};
  let tray: TrayProcess | undefined;

  afterEach(async () => {
    await runKeytap(['virtual', 'stop'], { env }).catch(() => undefined);
    if (tray) {
      await quitTray(tray, env);
      tray = undefined;
    }
  });

  it('gives the same stdout and exit codes as direct access; a second start says so and exits 0', async () => {
    const dir = tempDir();
    env = trayEnv(dir);
    const file = join(dir, 'key.json');
    expect((await runKeytap(['virtual', 'start', file, '--touch', 'auto'], { env })).code).toBe(0);
    expect((await runKeytap(['add', '--issuer', 'Served', '--account', 'alice', '--secret', SHA1_B32], { env })).code).toBe(0);
    expect((await runKeytap(['add', '--issuer', 'Touchy', '--account', 'bob', '--secret', SHA1_B32, '--touch'], { env })).code).toBe(0);

    tray = await startTray(env);
    const second = await runKeytap([], { env });
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/^keytap is already running \(pid \d+\)\.$/mu);

    const direct = { ...env, KEYTAP_NO_INSTANCE: '1' };
    // Away from a period's last 6 s, so the next-period rule does not apply to either.
    while (30 - ((Date.now() / 1000) % 30) < 6) await new Promise((r) => setTimeout(r, 250));
    const codes: string[] = [];
    for (const args of [['code', 'Served', '--json'], ['code', 'Served'], ['list'], ['list', '--json'], ['code', 'nothing'], ['code']]) {
      const viaIpc = await runKeytap(args, { env });
      codes.push(...(viaIpc.stdout.match(/\b\d{6}\b/gu) ?? []));
      const alone = await runKeytap(args, { env: direct });
      if (args[0] === 'code' && alone.code === 0) {
        // No display here: through the tray the code is printed all the same, and said not to be copied.
        expect([viaIpc.code, viaIpc.stderr]).toEqual([ExitCode.NOT_DELIVERED, expect.stringMatching(/^keytap: The code was printed but not copied\. There is no display/u)]);
        const json = args.includes('--json');
        const stdout = json ? (JSON.parse(viaIpc.stdout) as Record<string, unknown>) : viaIpc.stdout;
        expect(stdout).toEqual(json ? { ...(JSON.parse(alone.stdout) as object), copied: false, copyError: expect.stringContaining('no display') } : alone.stdout);
        continue;
      }
      expect({ args, code: viaIpc.code, stdout: viaIpc.stdout, stderr: viaIpc.stderr }).toEqual({ args, code: alone.code, stdout: alone.stdout, stderr: alone.stderr });
    }
    // touch: the prompt comes through the instance too
    const touched = await runKeytap(['code', 'Touchy'], { env });
    expect(touched.code).toBe(ExitCode.NOT_DELIVERED);
    expect(touched.stderr).toContain('Touch your key (Touchy:bob)…');
    expect(touched.stdout).toMatch(/^\d{6}\n$/u);
    codes.push(touched.stdout.trim());

    // unplugged: same "no key" answer as direct access
    expect((await runKeytap(['virtual', 'stop'], { env })).code).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    const gone = await runKeytap(['code', 'Served'], { env });
    const goneDirect = await runKeytap(['code', 'Served'], { env: direct });
    expect([gone.code, gone.stderr]).toEqual([goneDirect.code, goneDirect.stderr]);
    expect(gone.code).toBe(3);

    await requestIpc({ op: 'quit' }, { path: join(env.KEYTAP_RUNTIME_DIR!, 'keytap.sock') });
    const { code, stderr } = await tray.exited;
    tray = undefined;
    expect(code).toBe(0);
    expect(stderr).toContain('quitting');
    // the codes went to the callers, never into the log
    expect(codes.length).toBeGreaterThan(2);
    for (const c of codes) expect(stderr).not.toContain(c);
    expect(existsSync(join(env.KEYTAP_RUNTIME_DIR!, 'keytap.sock'))).toBe(false);
  });
});

/** The tray and served key of the running test, ended by stopServed. */
let served: { env: NodeJS.ProcessEnv; tray?: TrayProcess | undefined } | undefined;

/** A virtual key served with `startArgs`, an account `issuer:account` for each of `issuers` (with its extra add options), and a tray. */
async function serveWithTray(startArgs: string[], issuers: string[][], account = 'alice'): Promise<{ env: NodeJS.ProcessEnv; tray: TrayProcess }> {
  const dir = tempDir();
  const env = trayEnv(dir);
  served = { env };
  expect((await runKeytap(['virtual', 'start', join(dir, 'key.json'), ...startArgs], { env })).code).toBe(0);
  for (const [issuer, ...extra] of issuers) {
    expect((await runKeytap(['add', '--issuer', issuer!, '--account', account, '--secret', SHA1_B32, ...extra], { env })).code).toBe(0);
  }
  const tray = await startTray(env);
  served.tray = tray;
  return { env, tray };
}

async function stopServed(): Promise<void> {
  if (!served) return;
  const { env, tray } = served;
  served = undefined;
  if (tray) await quitTray(tray, env);
  await runKeytap(['virtual', 'stop'], { env }).catch(() => undefined);
}

async function waitFor(condition: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.runIf(unix)('a stopped tray (SIGSTOP)', () => {
  afterEach(stopServed);

  it('keytap code and keytap list fall back to the key after the answer timeout and say so; a second tray refuses to replace its socket', async () => {
    const { env, tray } = await serveWithTray(['--touch', 'auto'], [['Served']]);
    const socket = join(env.KEYTAP_RUNTIME_DIR!, 'keytap.sock');
    tray.child.kill('SIGSTOP');

    const code = await runKeytap(['code', 'Served'], { env, timeoutMs: 20_000 });
    expect(code.stderr).toContain(`The running keytap (${socket}) did not answer; reading the key directly.`);
    expect([code.code, code.stdout]).toEqual([0, expect.stringMatching(/^\d{6}\n$/u)]);
    const list = await runKeytap(['list'], { env, timeoutMs: 20_000 });
    expect(list.stderr).toContain('did not answer; reading the key directly.');
    expect([list.code, list.stdout]).toEqual([0, expect.stringContaining('Served:alice')]);

    // A socket that accepts but does not answer is not stale: the second tray leaves it alone.
    const second = await runKeytap([], { env, timeoutMs: 20_000 });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain(`A keytap is listening on ${socket} but does not answer`);
    expect(second.stderr).not.toContain('replaced a stale socket');

    tray.child.kill('SIGCONT');
    expect(await requestIpc({ op: 'ping' }, { path: socket })).toMatchObject({ ok: true, pid: tray.child.pid });
  });
});

describe.runIf(unix)('reads at the same time through the tray', () => {
  afterEach(stopServed);

  it('12 parallel keytap code runs for one account all get its code, none is refused', async () => {
    const { env, tray } = await serveWithTray(['--touch', 'auto', '--touch-delay', '500'], [['Touchy', '--touch']], 'bob');
    while (30 - ((Date.now() / 1000) % 30) < 12) await new Promise((r) => setTimeout(r, 250));
    const runs = await Promise.all(Array.from({ length: 12 }, () => runKeytap(['code', 'Touchy'], { env })));
    const reference = await runKeytap(['code', 'Touchy'], { env: { ...env, KEYTAP_NO_INSTANCE: '1' } });
    expect(reference.stdout).toMatch(/^\d{6}\n$/u);
    for (const run of runs) {
      expect(run.stderr).not.toContain('Already reading');
      expect(run.stdout).toBe(reference.stdout);
    }
    expect(tray.stderr).not.toContain('Already reading');
  });

  it(`200 raw IPC requests over 20 touch accounts: the same account's share one read, ${MAX_QUEUED_READS} accounts queue behind the one read, the rest get BUSY`, async () => {
    const accounts = Array.from({ length: 20 }, (_, i) => `Acct${String(i).padStart(2, '0')}`);
    const { env } = await serveWithTray(['--touch', 'manual'], accounts.map((issuer) => [issuer, '--touch']), 'x');
    const path = join(env.KEYTAP_RUNTIME_DIR!, 'keytap.sock');
    const answers: { account: string; answer: Record<string, unknown> }[] = [];
    const requests = Array.from({ length: 200 }, (_, i) => accounts[i % accounts.length]!).map(async (account) => {
      const answer = await requestIpc({ op: 'code', query: `${account}:x` }, { path });
      answers.push({ account, answer: answer as Record<string, unknown> });
    });
    const busy = () => answers.filter((a) => a.answer.ok === false);
    // Nothing drains before a touch: the refused ones are all there once the rest queued up.
    const overflow = (accounts.length - 1 - MAX_QUEUED_READS) * 10;
    await waitFor(() => busy().length >= overflow, 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(busy()).toHaveLength(overflow);
    let touches = 0;
    const deadline = Date.now() + 60_000;
    while (answers.length < 200 && Date.now() < deadline) {
      const before = answers.length;
      await runKeytap(['virtual', 'touch'], { env });
      touches++;
      await waitFor(() => answers.length > before, 2000).catch(() => undefined);
    }
    await Promise.all(requests);
    expect(busy()).toHaveLength(overflow);
    for (const { account, answer } of busy()) {
      expect(answer).toMatchObject({ code: 'BUSY', message: `${MAX_QUEUED_READS} other reads are waiting for the key already; ${account}:x was not read.`, hint: 'Try again once they are done.' });
    }
    const read = answers.filter((a) => a.answer.ok === true);
    const byAccount = new Map<string, Set<unknown>>();
    for (const { account, answer } of read) byAccount.set(account, (byAccount.get(account) ?? new Set()).add(answer.code));
    expect(byAccount.size).toBe(MAX_QUEUED_READS + 1);
    for (const [account, codes] of byAccount) expect([account, codes.size]).toEqual([account, 1]);
    expect(read).toHaveLength((MAX_QUEUED_READS + 1) * 10);
    // One touch per account read (a press with no read waiting does nothing, so there may be more presses).
    expect(touches).toBeGreaterThanOrEqual(MAX_QUEUED_READS + 1);
  }, 180_000);
});

describe.runIf(unix)('a code the tray could not copy', () => {
  afterEach(stopServed);

  it('without a display: the code is printed, stderr says it was not copied and why, exit 7; --json says "copied": false; the log names the missing display', async () => {
    const { env, tray } = await serveWithTray(['--touch', 'auto'], [['Served']]);
    while (30 - ((Date.now() / 1000) % 30) < 8) await new Promise((r) => setTimeout(r, 250));
    const expected = await oathtool({ hexSecret: Buffer.from('12345678901234567890').toString('hex'), type: 'TOTP', time: Math.floor(Date.now() / 1000) });

    const plain = await runKeytap(['code', 'Served'], { env });
    expect([plain.code, plain.stdout]).toEqual([ExitCode.NOT_DELIVERED, `${expected}\n`]);
    expect(plain.stderr).toBe(
      'keytap: The code was printed but not copied. There is no display to copy to (neither DISPLAY nor WAYLAND_DISPLAY is set).\n  Run keytap inside your desktop session, or set DISPLAY or WAYLAND_DISPLAY.\n',
    );

    const json = await runKeytap(['code', 'Served', '--json'], { env });
    expect(json.code).toBe(ExitCode.NOT_DELIVERED);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: 'Served:alice', code: expected, copied: false, copyError: 'There is no display to copy to (neither DISPLAY nor WAYLAND_DISPLAY is set).' });

    expect(tray.stderr).toContain('copying the code of Served:alice failed: UNSUPPORTED: There is no display to copy to (neither DISPLAY nor WAYLAND_DISPLAY is set).');
    expect(tray.stderr).not.toContain('Install xsel');
    expect(tray.stderr).not.toContain(expected);
  });
});
