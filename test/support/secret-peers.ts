/**
 * Peers for unlocking tests: a scripted pinentry (a small program speaking Assuan that logs every
 * command it got and answers GETPIN from a list, one answer per run), and a private session bus
 * with gnome-keyring-daemon's Secret Service on it.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './cli.js';
import { completeJsonLines } from './json-lines.js';
import { startPrivateBus } from './private-bus.js';

export const HAVE_KEYRING_DAEMON = existsSync('/usr/bin/gnome-keyring-daemon') && existsSync('/usr/bin/dbus-daemon');
export const HAVE_SECRET_TOOL = existsSync('/usr/bin/secret-tool');
export const HAVE_PINENTRY_CURSES = existsSync('/usr/bin/pinentry-curses');

export interface ScriptedPinentry {
  /** A folder to put first on PATH: it holds the pinentry under `name`. */
  dir: string;
  /** Every line each run received, runs separated. */
  runs(): string[][];
  /** Per run: the names of the KEYTAP_* variables in its environment. */
  envs(): string[][];
  /** Per run: its process id. */
  pids(): number[];
}

/**
 * `answers`: per run, the PIN to give, or 'cancel' (ERR 83886179, GPG_ERR_CANCELED from pinentry).
 * Runs past the list cancel. 'hang': after GETPIN it stops reading stdin and never answers, as a
 * real pinentry does while its dialog is open; it notes '<SIGTERM>' when it gets one and leaves.
 * 'stubborn': as 'hang', but it stays after SIGTERM (only SIGKILL ends it).
 */
export function scriptedPinentry(answers: readonly string[], name = 'pinentry-gnome3'): ScriptedPinentry {
  const dir = tempDir('keytap-pinentry-');
  const log = join(dir, 'log.jsonl');
  const counter = join(dir, 'count');
  writeFileSync(counter, '0');
  writeFileSync(join(dir, 'answers.json'), JSON.stringify(answers));
  const program = join(dir, name);
  writeFileSync(
    program,
    `#!${process.execPath}
const fs = require('fs');
const run = Number(fs.readFileSync(${JSON.stringify(counter)}, 'utf8'));
fs.writeFileSync(${JSON.stringify(counter)}, String(run + 1));
const answer = JSON.parse(fs.readFileSync(${JSON.stringify(join(dir, 'answers.json'))}, 'utf8'))[run] ?? 'cancel';
const got = [];
const secretVars = Object.keys(process.env).filter((k) => k.startsWith('KEYTAP_'));
const save = () => fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ run, pid: process.pid, env: secretVars, got }) + '\\n');
const esc = (s) => s.replace(/[%\\r\\n]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
const hangs = answer === 'hang' || answer === 'stubborn';
process.on('SIGTERM', () => { got.push('<SIGTERM>'); save(); if (answer !== 'stubborn') process.exit(0); });
process.stdout.write('OK Pleased to meet you\\n');
let buf = '';
const onData = (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    got.push(line);
    if (line === 'GETPIN') {
      if (hangs) { process.stdin.off('data', onData); process.stdin.pause(); save(); setInterval(() => undefined, 1000); return; }
      if (answer === 'cancel') process.stdout.write('ERR 83886179 Operation cancelled <Pinentry>\\n');
      else process.stdout.write('D ' + esc(answer) + '\\nOK\\n');
    } else if (line === 'BYE') { process.stdout.write('OK closing connection\\n'); save(); process.exit(0); }
    else process.stdout.write('OK\\n');
  }
};
process.stdin.on('data', onData);
process.stdin.on('end', () => { save(); process.exit(0); });
`,
  );
  chmodSync(program, 0o755);
  const records = (): { run: number; pid: number; env: string[]; got: string[] }[] => {
    // A run may save more than once (at GETPIN, at a signal, at its end): its last record counts.
    const byRun = new Map<number, { run: number; pid: number; env: string[]; got: string[] }>();
    for (const record of completeJsonLines<{ run: number; pid: number; env: string[]; got: string[] }>(log)) byRun.set(record.run, record);
    return [...byRun.values()].sort((a, b) => a.run - b.run);
  };
  return {
    dir,
    runs: () => records().map((r) => r.got),
    envs: () => records().map((r) => r.env),
    pids: () => records().map((r) => r.pid),
  };
}

export interface PrivateKeyring {
  /** The environment that reaches it (DBUS_SESSION_BUS_ADDRESS, HOME). */
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** A private session bus (or the one at `busAddress`) with an unlocked gnome-keyring "login" collection on it. */
export async function startPrivateKeyring(busAddress?: string): Promise<PrivateKeyring> {
  const home = tempDir('keytap-keyring-home-');
  mkdirSync(join(home, '.local', 'share'), { recursive: true });
  const bus = busAddress === undefined ? startPrivateBus() : undefined;
  const address = bus ? bus.address : busAddress!;
  const env = { DBUS_SESSION_BUS_ADDRESS: address, HOME: home, XDG_DATA_HOME: join(home, '.local', 'share'), XDG_RUNTIME_DIR: home };
  // --unlock reads the login keyring's password from stdin and creates the keyring with it.
  const daemon = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], { stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, ...env } });
  daemon.stdin.end('keytap-test');
  // The daemon takes a moment to own org.freedesktop.secrets and create the login collection. Ready
  // means the "default" alias names it: secret-tool can store (into the session collection) before
  // that, while keyring-rs looks the default collection up by its alias and finds none ("no result
  // found"), which a loaded machine showed.
  const deadline = Date.now() + 20_000;
  for (;;) {
    if ((await defaultCollection(env)) !== undefined) break;
    if (Date.now() > deadline) throw new Error('gnome-keyring-daemon made no default collection within 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    env,
    stop: async () => {
      daemon.kill();
      bus?.stop();
      await new Promise((r) => (daemon.exitCode !== null ? r(undefined) : daemon.once('exit', r)));
    },
  };
}

/** The object path the Secret Service's "default" alias names, or undefined while it names none ("/"). */
function defaultCollection(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((resolve) => {
    const args = ['call', '--session', '--dest', 'org.freedesktop.secrets', '--object-path', '/org/freedesktop/secrets', '--method', 'org.freedesktop.Secret.Service.ReadAlias', 'default'];
    const child = spawn('gdbus', args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => resolve(undefined));
    child.on('exit', (code) => {
      const path = /objectpath '([^']*)'/u.exec(out)?.[1];
      resolve(code === 0 && path !== undefined && path !== '/' ? path : undefined);
    });
  });
}

/** secret-tool's answer for one keytap entry: the stored secret, or '' when there is none. */
export function secretToolLookup(env: NodeJS.ProcessEnv, username: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('secret-tool', ['lookup', 'service', 'keytap', 'username', username], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', () => resolve(out));
  });
}
