/**
 * `keytap entra push`: tokens from a ledger or a seed file into Entra ID through Microsoft Graph
 * (src/entra-id), and the sign-in options shared with `keytap program --batch --entra`.
 */
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { KeytapError, isKeytapError } from '../../errors.js';
import { createCredential, signInKind } from '../../entra-id/auth.js';
import { DEFAULT_GRAPH_URL, GraphClient } from '../../entra-id/client.js';
import type { GraphTransport, TokenOutcome } from '../../entra-id/push.js';
import { DryRunTransport, pushTokens, stopsTheRun, tokenStates } from '../../entra-id/push.js';
import { graphFormat } from '../../seeds/graph.js';
import type { OpenKey } from '../../device/open.js';
import type { BatchOptions } from '../../provision/batch.js';
import { hexDecode } from '../../otp/encoding.js';
import { readSeedFile } from '../../provision/from-file.js';
import { ledgerTokens, readLedger } from '../../provision/ledger.js';
import type { SeedToken } from '../../seeds/token.js';
import { UNKNOWN_DEVICE_TEXT, checkToken } from '../../seeds/index.js';
import { printable } from '../../util/printable.js';
import type { CliIo } from '../output.js';
import { readStdin } from '../parse.js';

export interface EntraSignInOptions {
  tenant?: string;
  clientId?: string;
  clientSecret?: string;
  certificate?: string;
  graphUrl?: string;
}

/** The sign-in options, for `entra push` and `program --batch --entra`. */
export function addEntraSignInOptions(command: Command): Command {
  return command
    .addOption(new Option('--tenant <id>', 'Entra tenant id or domain').env('AZURE_TENANT_ID'))
    .addOption(new Option('--client-id <id>', 'application (client) id of the app registration').env('AZURE_CLIENT_ID'))
    .addOption(new Option('--client-secret <->', 'read the client secret from stdin ("-"); else KEYTAP_ENTRA_CLIENT_SECRET or AZURE_CLIENT_SECRET; without a secret or certificate: device-code sign-in'))
    .addOption(new Option('--certificate <pem>', 'sign in as the app with this PEM file (certificate and private key)').env('AZURE_CLIENT_CERTIFICATE_PATH'))
    .addOption(new Option('--graph-url <url>', 'Microsoft Graph beta endpoint (the hardware OATH API is documented for the global service)').env('KEYTAP_GRAPH_URL').default(DEFAULT_GRAPH_URL));
}

/** Signs in (before any work, so that a bad sign-in fails first) and returns the Graph client. */
export async function signInToGraph(options: EntraSignInOptions, io: CliIo, signal?: AbortSignal): Promise<GraphClient> {
  if (!options.tenant) throw new KeytapError('USAGE', 'Entra ID needs the tenant: give --tenant or set AZURE_TENANT_ID.');
  if (!options.clientId) throw new KeytapError('USAGE', 'Entra ID needs the app registration: give --client-id or set AZURE_CLIENT_ID.');
  let clientSecret: string | undefined;
  if (options.clientSecret !== undefined) {
    if (options.clientSecret !== '-') throw new KeytapError('USAGE', '--client-secret takes only "-" (read from stdin): a secret on the command line is visible to other users. Or set KEYTAP_ENTRA_CLIENT_SECRET.');
    clientSecret = (await readStdin()).trim();
    // An empty variable is an unset one (a shell's VAR= to turn it off), not an empty secret.
  } else clientSecret = process.env.KEYTAP_ENTRA_CLIENT_SECRET || process.env.AZURE_CLIENT_SECRET || undefined;
  let graphUrl: URL;
  try {
    graphUrl = new URL(options.graphUrl ?? DEFAULT_GRAPH_URL);
  } catch {
    throw new KeytapError('USAGE', `--graph-url ${printable(options.graphUrl ?? '')} is not a URL.`);
  }
  if (graphUrl.protocol !== 'https:') throw new KeytapError('USAGE', 'The Graph URL must be https: the requests carry seeds.');
  const signIn = { tenantId: options.tenant, clientId: options.clientId, clientSecret, certificatePath: options.certificate };
  const credential = await createCredential({ ...signIn, onDeviceCode: (message) => io.err(printable(message)) });
  const client = new GraphClient({
    credential,
    baseUrl: graphUrl.href,
    signal,
    onRetry: (ms, status) => io.err(`Microsoft Graph asked to wait (HTTP ${status}); retrying in ${Math.ceil(ms / 1000)} s.`),
  });
  if (signInKind(signIn) === 'device-code') io.err('Signing in to Microsoft Entra ID with a device code…');
  await client.signIn();
  return client;
}

/** The help of --manufacturer and --model, for `program` and `entra push`. */
export const DEVICE_TEXT_HELP = `(Entra ID requires one; "${UNKNOWN_DEVICE_TEXT}" when none is given)`;

type DeviceText = Pick<SeedToken, 'manufacturer' | 'model'>;

/** The tokens that lack a manufacturer or a model, and which of the two any of them lacks. */
export function missingDeviceText(tokens: readonly DeviceText[]): { count: number; fields: Array<'manufacturer' | 'model'> } {
  const fields = (['manufacturer', 'model'] as const).filter((field) => tokens.some((t) => t[field] === undefined));
  return { count: tokens.filter((t) => t.manufacturer === undefined || t.model === undefined).length, fields };
}

/** What Entra ID gets for the fields missing, said once before anything is sent or written: "`subject` no model: …". */
export function unknownDeviceNote(subject: string, fields: readonly string[]): string {
  return `${subject} no ${fields.join(' or ')}: Entra ID gets "${UNKNOWN_DEVICE_TEXT}" (${fields.map((f) => `--${f}`).join(', ')} gives one).`;
}

/** One token's line; `dryRun`: what a real run would do, since a dry run does nothing. */
export function outcomeLine(o: TokenOutcome, dryRun = false): string {
  const did = [o.created && 'created', o.assigned && 'assigned', o.activated && 'activated'].filter(Boolean).join(', ');
  const user = o.upn ? ` ${o.upn}` : '';
  if (dryRun && (o.state === 'activated' || o.state === 'assigned' || o.state === 'inventory')) {
    return printable(`${o.serial}${user}: would be ${did}${o.state === 'inventory' ? ' in the inventory only (no user)' : ''}`);
  }
  const words: Record<TokenOutcome['state'], string> = {
    activated: 'activated',
    assigned: 'assigned, not activated',
    inventory: 'in the inventory only (no user)',
    refused: 'not for Entra ID',
    failed: 'FAILED',
  };
  const note = did ? ` (this run: ${did})` : o.state === 'activated' || o.state === 'assigned' ? ' (already there)' : '';
  const reason = o.state === 'refused' || o.state === 'failed' ? `: ${o.reason ?? ''}` : '';
  return printable(`${o.serial}${user}: ${words[o.state]}${note}${reason}`);
}

export function summaryLine(outcomes: readonly TokenOutcome[]): string {
  const count = (state: TokenOutcome['state']): number => outcomes.filter((o) => o.state === state).length;
  const created = outcomes.filter((o) => o.created).length;
  return `${outcomes.length} token(s): ${count('activated')} activated, ${count('assigned')} assigned only, ${count('inventory')} in the inventory only, ${count('refused')} not for Entra ID, ${count('failed')} failed; ${created} created by this run.`;
}

interface TokenSourceOptions {
  ledger?: string;
  ledgerPassphrase?: string;
  passphrase?: string;
  key?: string;
}

/** The tokens of a ledger (verified ones) or of a seed file in any format. */
async function readTokens(file: string | undefined, options: TokenSourceOptions, io: CliIo): Promise<SeedToken[]> {
  if ((file === undefined) === (options.ledger === undefined)) throw new KeytapError('USAGE', 'Give either a seed file or --ledger DIR.');
  if (options.ledger !== undefined) {
    const dir = resolve(options.ledger);
    const contents = await readLedger(dir, { passphrase: options.ledgerPassphrase });
    for (const problem of contents.problems) io.err(`ledger.jsonl line ${problem.line}: ${problem.message}.`);
    const { tokens } = ledgerTokens(contents.entries);
    if (tokens.length === 0) throw new KeytapError('NOT_FOUND', `The ledger in ${dir} has no programmed token.`);
    return tokens;
  }
  return readSeedFile(file!, {
    ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
    ...(options.key !== undefined ? { key: hexDecode(options.key) } : {}),
    onWarning: (warning) => io.err(printable(`${basename(file!)}${warning.line !== undefined ? `:${warning.line}` : ''}: warning: ${warning.message}`)),
  });
}

function addTokenSourceOptions(command: Command): Command {
  return command
    .argument('[file]', 'a seed file in any format keytap reads')
    .addOption(new Option('--ledger <dir>', 'the folder holding ledger.jsonl (the --out of "keytap program")'))
    .addOption(new Option('--ledger-passphrase <passphrase>', 'passphrase of an encrypted ledger').env('KEYTAP_LEDGER_PASSPHRASE'))
    .addOption(new Option('--passphrase <passphrase>', 'passphrase of an encrypted PSKC file').env('KEYTAP_PSKC_PASSPHRASE'))
    .addOption(new Option('--key <hex>', 'pre-shared key of an encrypted PSKC file').env('KEYTAP_PSKC_KEY'));
}

export function registerEntra(program: Command, io: CliIo): void {
  const entra = program.command('entra').description('Entra ID through Microsoft Graph: create, assign and activate hardware OATH tokens');
  const push = entra
    .command('push')
    .description('put the tokens of a ledger or a seed file into Entra ID: create each (matched by serial if there), assign it to its user, activate it with a code from its seed');
  addEntraSignInOptions(addTokenSourceOptions(push))
    .addOption(new Option('--dry-run', 'print the requests that would be sent (secrets and codes replaced), send nothing, sign in to nothing'))
    .addOption(new Option('--no-activate', 'create and assign, but leave activation to the users'))
    .addOption(new Option('--manufacturer <text>', `manufacturer of the tokens that have none ${DEVICE_TEXT_HELP}`))
    .addOption(new Option('--model <text>', `model of the tokens that have none ${DEVICE_TEXT_HELP}`))
    .action(async (file: string | undefined, options: EntraSignInOptions & TokenSourceOptions & { dryRun?: boolean; activate: boolean; manufacturer?: string; model?: string }) => {
    for (const field of ['manufacturer', 'model'] as const) {
      const text = options[field];
      // The same check as a seed file's: nothing a terminal or Graph would take for something else.
      const problem = text === undefined ? null : text.trim() === '' ? `the ${field} is empty` : checkToken({ serial: 'S', secret: new Uint8Array(1), type: 'TOTP', algorithm: 'SHA1', digits: 6, period: 30, counter: 0, [field]: text });
      if (problem !== null) throw new KeytapError('USAGE', `--${field}: ${problem}.`);
    }
    // A token's own manufacturer and model (from its seed file or the programming run) are kept.
    const tokens = (await readTokens(file, options, io)).map((t) => ({ ...t, manufacturer: t.manufacturer ?? options.manufacturer?.trim(), model: t.model ?? options.model?.trim() }));
    const missing = missingDeviceText(tokens.filter((t) => graphFormat.accepts(t) === null));
    if (missing.count > 0) io.err(unknownDeviceNote(`${missing.count} token(s) have`, missing.fields));
    const dry = options.dryRun ? new DryRunTransport() : undefined;
    const graph: GraphTransport = dry ?? (await signInToGraph(options, io));
    const outcomes = await pushTokens(graph, tokens, { activate: options.activate, onToken: dry ? undefined : (o) => io.out(outcomeLine(o)) });
    const bad = outcomes.filter((o) => o.state === 'failed' || o.state === 'refused').length;
    if (dry) {
      io.out(`Dry run: nothing sent. A first run against ${printable(options.graphUrl ?? DEFAULT_GRAPH_URL)} would send (new-device-N, new-method-N: the ids Graph would give):`);
      for (const r of dry.requests) io.out(printable(`${r.method} ${r.path}${r.body === undefined ? '' : ` ${JSON.stringify(r.body)}`}`));
      for (const o of outcomes) io.out(outcomeLine(o, true));
      // The exit code is the real run's: a script that tries the dry run first learns what it would.
      if (bad > 0) throw new KeytapError('DEVICE_ERROR', `${bad} of ${outcomes.length} token(s) would not be in Entra ID as asked; a real run would end with this error too.`);
      return;
    }
    io.out(summaryLine(outcomes));
    if (bad > 0) throw new KeytapError('DEVICE_ERROR', `${bad} of ${outcomes.length} token(s) are not in Entra ID as asked; run again after fixing the cause: tokens already there are matched, not created twice.`);
  });

  addEntraSignInOptions(
    addTokenSourceOptions(entra.command('status').description("what Entra ID has for each token's serial: absent, available, assigned, activated or failedActivation, and to whom")),
  ).action(async (file: string | undefined, options: EntraSignInOptions & TokenSourceOptions) => {
    const tokens = await readTokens(file, options, io);
    const graph = await signInToGraph(options, io);
    for (const state of await tokenStates(graph, tokens)) {
      io.out(printable(`${state.serial}${state.upn ? ` ${state.upn}` : ''}: ${state.status}${state.assignedTo ? ` (assigned to ${state.assignedTo})` : ''}`));
    }
  });
}

/**
 * `program --batch --entra`: signs in once, before the first key, and returns the batch's
 * `afterProgrammed` hook, which puts each token into Entra ID while its key is still inserted and
 * activates it with a code read from the key at the time of sending (a touch credential asks for
 * a touch; the code is then sent at once, well inside the 1 or 2 minutes Entra allows).
 */
export async function entraBatchHook(options: EntraSignInOptions & { activate?: boolean }, io: CliIo): Promise<NonNullable<BatchOptions['afterProgrammed']>> {
  const graph = await signInToGraph(options, io);
  io.err('Signed in to Microsoft Entra ID; each key is enrolled there after it is verified.');
  // A problem no later key can get past (sign-in, permission, policy) stops enrolling: the batch
  // goes on programming keys, and the ledger has every token for a later "keytap entra push".
  // Each token not enrolled is thrown, so that the batch names it once and counts it for its summary.
  let stoppedBy: KeytapError | undefined;
  return async ({ key, token, result, signal }) => {
    if (result.outcome.status !== 'programmed') return;
    if (stoppedBy !== undefined) {
      throw new KeytapError(stoppedBy.code, 'nothing was sent: Entra ID enrollment stopped at an earlier key.');
    }
    const credentialId = result.outcome.credentialId;
    let outcome: TokenOutcome | undefined;
    try {
      // The second Ctrl+C cancels Graph requests and Retry-After waits too, not only the key.
      [outcome] = await pushTokens(graph.withSignal(signal), [token], {
        activate: options.activate,
        code: () => codeFromKey(key, credentialId, token.serial, io, signal),
      });
    } catch (error) {
      if (!isKeytapError(error) || !stopsTheRun(error) || error.code === 'CANCELLED') throw error;
      stoppedBy = error;
      throw new KeytapError(error.code, `${error.message} Entra ID enrollment is off for the rest of this batch; the keys are still programmed.`, {
        hint: joinHints(error.hint, 'When it is fixed, "keytap entra push --ledger DIR" enrolls the tokens the ledger has.'),
        detail: error.detail,
        cause: error,
      });
    }
    if (outcome === undefined) return;
    if (outcome.state === 'refused') throw new KeytapError('UNSUPPORTED', `Token ${token.serial} is not for Entra ID: ${outcome.reason ?? ''}.`);
    // A failure is the batch's to report (once, with its hint); what this run did in Entra goes with it.
    if (outcome.error) throw new KeytapError(outcome.error.code, outcomeLine(outcome), { hint: outcome.error.hint, detail: outcome.error.detail, cause: outcome.error });
    io.out(outcomeLine(outcome));
  };
}

async function codeFromKey(key: OpenKey, credentialId: string, serial: string, io: CliIo, signal: AbortSignal): Promise<string> {
  const credential = (await key.session.list(signal)).find((c) => c.id === credentialId);
  if (credential === undefined) throw new KeytapError('NOT_FOUND', `The account of token ${serial} is no longer on ${key.name}.`, { detail: { kind: 'not-found', id: credentialId } });
  const code = await key.session.calculate(credential, {
    signal,
    onTouchNeeded: () => io.err(printable(`Touch ${key.name} to activate token ${serial} in Entra ID…`)),
  });
  return code.code;
}

function joinHints(first: string | undefined, second: string): string {
  return first === undefined ? second : `${first} ${second}`;
}
