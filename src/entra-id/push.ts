/**
 * Tokens into Entra ID: find each by serial in the tenant's inventory, create the missing ones
 * (in one bulk request where there are several), assign each to its user and activate it with a
 * code (docs/seed-formats.md §1.3). Every step looks first, so a second run (or a run after an
 * interruption) matches what is there and creates nothing twice.
 */
import { KeytapError, isKeytapError } from '../errors.js';
import { totp } from '../otp/hotp.js';
import { graphFormat } from '../seeds/graph.js';
import type { SeedToken } from '../seeds/token.js';
import type { GraphResponse, RequestBody, RequestSubject } from './client.js';
import { FreshBody, requestPayload } from './client.js';
import { isObject } from './client.js';

export const DEVICES_PATH = '/directory/authenticationMethodDevices/hardwareOathDevices';

/** What sends a request: the Graph client, or the dry run that only records it. */
export interface GraphTransport {
  send(method: 'GET' | 'POST' | 'PATCH', path: string, body: RequestBody, subject: RequestSubject): Promise<GraphResponse>;
}

export type TokenState = 'activated' | 'assigned' | 'inventory' | 'refused' | 'failed';

export interface TokenOutcome {
  serial: string;
  upn: string | undefined;
  state: TokenState;
  /** What this run did: created the device, assigned it, activated it. */
  created: boolean;
  assigned: boolean;
  activated: boolean;
  /** Why a token was refused (the token cannot be in Entra) or failed (the error's message). */
  reason?: string | undefined;
  error?: KeytapError | undefined;
}

export interface PushOptions {
  /** Assign but leave activation to the user or a later run. */
  activate?: boolean | undefined;
  /** The code to activate with, asked for at the time of sending; default: computed from the seed. */
  code?: ((token: SeedToken) => Promise<string>) | undefined;
  /** Seconds since the epoch, for the computed code. */
  now?: (() => number) | undefined;
  /** Called as each token is settled. */
  onToken?: ((outcome: TokenOutcome) => void) | undefined;
}

/** A problem that is the same for every token (sign-in, permission, policy), or a cancel: no use going on. */
export function stopsTheRun(error: unknown): boolean {
  if (!isKeytapError(error)) return false;
  if (error.code === 'CANCELLED') return true;
  return error.detail?.kind === 'graph' && ['permission', 'policy-disabled', 'sign-in', 'unreachable'].includes(error.detail.problem);
}

interface Device {
  id: string;
  status: string | undefined;
  assignedTo: { id?: string; displayName?: string } | undefined;
}

function toDevice(value: unknown): Device | undefined {
  if (!isObject(value) || typeof value.id !== 'string') return undefined;
  const assigned = isObject(value.assignedTo) ? (value.assignedTo as Device['assignedTo']) : undefined;
  return { id: value.id, status: typeof value.status === 'string' ? value.status : undefined, assignedTo: assigned };
}

function values(response: GraphResponse): unknown[] {
  return isObject(response.body) && Array.isArray(response.body.value) ? response.body.value : [];
}

/** OData string literal: a quote is doubled. */
function odataString(text: string): string {
  return `'${text.replace(/'/gu, "''")}'`;
}

export async function findDevice(graph: GraphTransport, token: SeedToken): Promise<Device | undefined> {
  const filter = encodeURIComponent(`serialNumber eq ${odataString(token.serial)}`);
  const found = await graph.send('GET', `${DEVICES_PATH}?$filter=${filter}`, undefined, { serial: token.serial, upn: token.upn, area: 'inventory' });
  return values(found).map(toDevice).find((d) => d !== undefined);
}

/** The device JSON as the seed writer makes it, without `assignTo`: assignment is its own step here. */
function deviceBodies(tokens: readonly SeedToken[]): Record<string, unknown>[] {
  const written = JSON.parse(graphFormat.write(tokens).toString('utf8')) as { value: Record<string, unknown>[] };
  return written.value.map(({ assignTo: _assignTo, ...device }) => device);
}

async function createDevices(graph: GraphTransport, tokens: readonly SeedToken[]): Promise<Map<string, Device>> {
  const created = new Map<string, Device>();
  if (tokens.length === 0) return created;
  const bodies = deviceBodies(tokens);
  if (tokens.length === 1) {
    const { '@contentId': _id, ...device } = bodies[0]!;
    const response = await graph.send('POST', DEVICES_PATH, device, { serial: tokens[0]!.serial, upn: tokens[0]!.upn, area: 'inventory' });
    const made = toDevice(response.body);
    if (made) created.set(tokens[0]!.serial, made);
    return created;
  }
  const response = await graph.send('POST', DEVICES_PATH, { '@context': '#$delta', value: bodies }, { area: 'inventory' });
  // Each element is a hardwareOathAuthenticationMethod carrying its device.
  for (const element of values(response)) {
    const device = isObject(element) && isObject(element.device) ? element.device : element;
    const made = toDevice(device);
    const serial = isObject(device) && typeof device.serialNumber === 'string' ? device.serialNumber : undefined;
    if (made && serial !== undefined) created.set(serial, made);
  }
  return created;
}

function userMethodsPath(upn: string): string {
  return `/users/${encodeURIComponent(upn)}/authentication/hardwareOathMethods`;
}

/** The user's method for this device, if it is assigned to them. */
async function userMethod(graph: GraphTransport, token: SeedToken, device: Device): Promise<string | undefined> {
  const listed = await graph.send('GET', userMethodsPath(token.upn!), undefined, { serial: token.serial, upn: token.upn, area: 'user-methods' });
  for (const method of values(listed)) {
    if (isObject(method) && typeof method.id === 'string' && isObject(method.device) && method.device.id === device.id) return method.id;
  }
  return undefined;
}

export async function pushTokens(graph: GraphTransport, tokens: readonly SeedToken[], options: PushOptions = {}): Promise<TokenOutcome[]> {
  const activate = options.activate !== false;
  const now = options.now ?? ((): number => Date.now() / 1000);
  const outcomes = new Map<string, TokenOutcome>();
  const settle = (outcome: TokenOutcome): void => {
    outcomes.set(outcome.serial, outcome);
    options.onToken?.(outcome);
  };
  const fail = (token: SeedToken, error: unknown, partial: Partial<TokenOutcome> = {}): void => {
    if (stopsTheRun(error) || !isKeytapError(error)) throw error;
    settle({ serial: token.serial, upn: token.upn, state: 'failed', created: false, assigned: false, activated: false, ...partial, reason: error.message, error });
  };

  const usable: SeedToken[] = [];
  for (const token of tokens) {
    const refusal = graphFormat.accepts(token);
    if (refusal !== null) settle({ serial: token.serial, upn: token.upn, state: 'refused', created: false, assigned: false, activated: false, reason: refusal });
    else usable.push(token);
  }

  const devices = new Map<string, Device>();
  const missing: SeedToken[] = [];
  for (const token of usable) {
    try {
      const device = await findDevice(graph, token);
      if (device) devices.set(token.serial, device);
      else missing.push(token);
    } catch (error) {
      fail(token, error);
    }
  }
  const createdSerials = new Set<string>();
  try {
    for (const [serial, device] of await createDevices(graph, missing)) {
      devices.set(serial, device);
      createdSerials.add(serial);
    }
  } catch (error) {
    if (stopsTheRun(error) || missing.length === 1) {
      if (missing.length === 1) fail(missing[0]!, error);
      else throw error;
    } else {
      // A bulk request refused as a whole: one by one, so that each token gets its own answer. Each
      // is looked up first: a bulk request may have created some before it failed.
      for (const token of missing) {
        try {
          const existing = await findDevice(graph, token);
          if (existing) {
            devices.set(token.serial, existing);
            continue;
          }
          for (const [serial, device] of await createDevices(graph, [token])) {
            devices.set(serial, device);
            createdSerials.add(serial);
          }
        } catch (single) {
          fail(token, single);
        }
      }
    }
  }

  for (const token of usable) {
    if (outcomes.has(token.serial)) continue;
    const created = createdSerials.has(token.serial);
    let device = devices.get(token.serial);
    if (device === undefined) {
      try {
        device = await findDevice(graph, token);
      } catch (error) {
        fail(token, error, { created });
        continue;
      }
      if (device === undefined) {
        fail(token, new KeytapError('DEVICE_ERROR', `Microsoft Graph did not return the device created for token ${token.serial}.`, { detail: { kind: 'graph', problem: 'other', status: 0, serial: token.serial } }), { created });
        continue;
      }
    }
    if (!token.upn) {
      settle({ serial: token.serial, upn: undefined, state: 'inventory', created, assigned: false, activated: false, reason: 'no user: created in the inventory only' });
      continue;
    }
    let assigned = false;
    let activated = false;
    try {
      let methodId = await userMethod(graph, token, device);
      if (methodId === undefined) {
        if (device.assignedTo?.id) {
          const other = device.assignedTo.displayName ?? device.assignedTo.id;
          throw new KeytapError('EXISTS', `Token ${token.serial} is already assigned to ${other} in Entra ID, not to ${token.upn}.`, {
            hint: 'Unassign it from that user first (DELETE the user\'s hardwareOathMethod), or give the token to that user.',
            detail: { kind: 'graph', problem: 'assigned-elsewhere', status: 0, serial: token.serial, upn: token.upn },
          });
        }
        const response = await graph.send('POST', userMethodsPath(token.upn), { device: { id: device.id } }, { serial: token.serial, upn: token.upn, area: 'user-methods' });
        methodId = isObject(response.body) && typeof response.body.id === 'string' ? response.body.id : device.id;
        assigned = true;
      }
      if (device.status !== 'activated' && activate) {
        // The code is made for each attempt: after a Retry-After wait the first one may have expired.
        const body = new FreshBody(async () => ({
          verificationCode: options.code ? await options.code(token) : totp(token.secret, now(), token.period, token.digits, token.algorithm),
        }));
        await graph.send('POST', `${userMethodsPath(token.upn)}/${encodeURIComponent(methodId)}/activate`, body, { serial: token.serial, upn: token.upn, area: 'user-methods' });
        activated = true;
      }
      settle({ serial: token.serial, upn: token.upn, state: device.status === 'activated' || activated ? 'activated' : 'assigned', created, assigned, activated });
    } catch (error) {
      fail(token, error, { created, assigned });
    }
  }
  return tokens.map((t) => outcomes.get(t.serial)!).filter((o) => o !== undefined);
}

/** What Entra ID has for each token's serial: nothing, or the device's status and user. */
export async function tokenStates(graph: GraphTransport, tokens: readonly SeedToken[]): Promise<{ serial: string; upn: string | undefined; status: string; assignedTo: string | undefined }[]> {
  const states = [];
  for (const token of tokens) {
    const device = await findDevice(graph, token);
    states.push({ serial: token.serial, upn: token.upn, status: device ? (device.status ?? 'unknown') : 'absent', assignedTo: device?.assignedTo?.displayName ?? device?.assignedTo?.id });
  }
  return states;
}

/** A recorded request of a dry run: secrets and codes replaced. */
export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
}

/** Replaces secretKey and verificationCode values with "<secret>", at any depth. */
export function redacted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redacted);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, key === 'secretKey' || key === 'verificationCode' ? '<secret>' : redacted(v)]));
}

/**
 * The dry run: records what would be sent and answers as an empty tenant would (no device, no
 * method), so that the requests shown are those of a first run. Nothing leaves the machine. The
 * ids Graph would give are placeholders numbered by device — `new-device-N`, and `new-method-N`
 * for the user's method made from it — in letters a URL path carries as they are, so that the
 * assignment and the activation shown name the device they belong to.
 */
export class DryRunTransport implements GraphTransport {
  readonly requests: RecordedRequest[] = [];
  private devices = 0;

  async send(method: 'GET' | 'POST' | 'PATCH', path: string, request: RequestBody): Promise<GraphResponse> {
    const body = await requestPayload(request);
    this.requests.push({ method, path, body: redacted(body) });
    if (method === 'GET') return { status: 200, body: { value: [] } };
    if (path === DEVICES_PATH) {
      const newDevice = (device: unknown): Record<string, unknown> => ({ ...(isObject(device) ? device : {}), id: `new-device-${++this.devices}` });
      if (isObject(body) && Array.isArray(body.value)) {
        return { status: 201, body: { value: body.value.map((device) => { const made = newDevice(device); return { id: made.id, device: made }; }) } };
      }
      return { status: 201, body: newDevice(body) };
    }
    // An assignment: the method is named after its device.
    const deviceId = isObject(body) && isObject(body.device) && typeof body.device.id === 'string' ? body.device.id : undefined;
    if (deviceId !== undefined) return { status: 201, body: { id: deviceId.replace(/^new-device-/u, 'new-method-'), device: { id: deviceId } } };
    return { status: 204, body: undefined };
  }
}
