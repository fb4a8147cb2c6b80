/**
 * A small Microsoft Graph client for the hardware OATH calls (docs/seed-formats.md §1.3), over
 * Node's fetch. The Graph SDK for beta is large for the five requests keytap sends; this is
 * protocol code keytap owns: a bearer token from a TokenCredential, Retry-After honoured on 429
 * and 503, one token refresh when Graph says the token expired, and Graph's error bodies turned
 * into KeytapErrors that say what the token was and what to do. Request bodies may hold a secret
 * or a verification code; neither is ever put into an error.
 */
import type { TokenCredential } from '@azure/identity';
import { KeytapError, cancelledError, throwIfAborted } from '../errors.js';
import type { ErrorCode, GraphProblem } from '../errors.js';
import { delay } from '../util/abortable.js';

export const DEFAULT_GRAPH_URL = 'https://graph.microsoft.com/beta';
export const INVENTORY_PERMISSION = 'Policy.ReadWrite.AuthenticationMethod';
export const USER_METHODS_PERMISSION = 'UserAuthenticationMethod.ReadWrite.All';
const INVENTORY_ROLE = 'Authentication Policy Administrator';
const USER_METHODS_ROLE = 'Authentication Administrator (Privileged Authentication Administrator for admin users)';
export const POLICY_PATH = '/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/hardwareOath';

/** The scope of a Graph base URL: its origin's `.default` (national clouds have their own host). */
export function graphScope(baseUrl: string): string {
  return `${new URL(baseUrl).origin}/.default`;
}

/** Whom a request is about, for the error: the token's serial and user. */
/** The longest keytap waits for one Graph answer. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** A body made at the time of each attempt (one that goes stale, like an activation code). */
export class FreshBody {
  constructor(readonly make: () => Promise<object>) {}
}

/** A request body (JSON), or one made anew for each attempt. */
export type RequestBody = object | undefined | FreshBody;

/** The body to send now. */
export function requestPayload(body: RequestBody): Promise<object | undefined> {
  return body instanceof FreshBody ? body.make() : Promise.resolve(body);
}

export interface RequestSubject {
  serial?: string | undefined;
  upn?: string | undefined;
  /** Which permission the request needs (403 names it). */
  area: 'inventory' | 'user-methods';
}

export interface GraphClientOptions {
  credential: TokenCredential;
  baseUrl?: string | undefined;
  /** Attempts per request when Graph throttles (429/503); the first one included. */
  maxAttempts?: number | undefined;
  /** The longest Retry-After keytap waits; longer ones are waited for this long. */
  maxRetryAfterMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Called before a throttled request is sent again (for the user: "Graph asked to wait 5 s"). */
  onRetry?: ((waitMs: number, status: number) => void) | undefined;
}

export interface GraphResponse {
  status: number;
  body: unknown;
}

export class GraphClient {
  readonly baseUrl: string;
  private readonly credential: TokenCredential;
  private readonly scope: string;
  private readonly maxAttempts: number;
  private readonly maxRetryAfterMs: number;
  private readonly signal: AbortSignal | undefined;
  private readonly onRetry: ((waitMs: number, status: number) => void) | undefined;
  private token: string | undefined;
  private claims: string | undefined;

  constructor(options: GraphClientOptions) {
    this.baseUrl = (options.baseUrl ?? DEFAULT_GRAPH_URL).replace(/\/+$/u, '');
    this.credential = options.credential;
    this.scope = graphScope(this.baseUrl);
    this.maxAttempts = options.maxAttempts ?? 4;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
    this.signal = options.signal;
    this.onRetry = options.onRetry;
  }

  /** The same sign-in and token, with requests (and waits for Retry-After) cancelled by `signal`. */
  withSignal(signal: AbortSignal): GraphClient {
    const client = new GraphClient({ credential: this.credential, baseUrl: this.baseUrl, maxAttempts: this.maxAttempts, maxRetryAfterMs: this.maxRetryAfterMs, signal, onRetry: this.onRetry });
    client.token = this.token;
    return client;
  }

  /** Signs in (or takes the cached token), so that a bad sign-in fails before any work. */
  async signIn(): Promise<void> {
    await this.accessToken(false);
  }

  /**
   * `body` may be a FreshBody: it is made for every attempt, so that a body that goes stale (an
   * activation code, after a Retry-After wait of a minute) is new each time.
   */
  async send(method: 'GET' | 'POST' | 'PATCH', path: string, body: RequestBody, subject: RequestSubject): Promise<GraphResponse> {
    let refreshed = false;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(this.signal);
      const token = await this.accessToken(refreshed && attempt > 1);
      const payload = await requestPayload(body);
      let response: Response;
      let text: string;
      // A Graph that stops answering must not hold a batch (and the activation window) for minutes.
      const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
      try {
        response = await fetch(`${this.baseUrl}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: payload === undefined ? undefined : JSON.stringify(payload),
          signal: this.signal ? AbortSignal.any([this.signal, timeout]) : timeout,
        });
        // Inside the try: a connection dropped in the middle of the answer is "unreachable" too.
        text = await response.text();
      } catch (error) {
        if (this.signal?.aborted) throw cancelledError(this.signal);
        const why = timeout.aborted ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : causeWords(error);
        throw graphError('unreachable', 'TIMEOUT', `Microsoft Graph at ${new URL(this.baseUrl).host} could not be reached${about(subject)}: ${why}.`, 0, subject, {
          cause: error,
          hint: 'Check the network connection and the Graph URL.',
        });
      }
      const parsed = parseJson(text);
      if (response.ok) return { status: response.status, body: parsed };
      const graph = graphErrorBody(parsed);
      if (response.status === 401 && !refreshed && graph.code === 'InvalidAuthenticationToken') {
        refreshed = true;
        this.token = undefined;
        // A claims challenge (continuous access evaluation) is what makes @azure/identity skip its cache.
        this.claims = claimsChallenge(response.headers.get('www-authenticate'));
        continue;
      }
      if ((response.status === 429 || response.status === 503) && attempt < this.maxAttempts) {
        const wait = Math.min(retryAfterMs(response.headers.get('retry-after'), Date.now()) ?? 2 ** attempt * 1000, this.maxRetryAfterMs);
        this.onRetry?.(wait, response.status);
        await delay(wait, this.signal);
        continue;
      }
      throw mapGraphError(response.status, graph, subject, payload);
    }
  }

  private async accessToken(forceRefresh: boolean): Promise<string> {
    if (this.token !== undefined && !forceRefresh) return this.token;
    let got;
    try {
      got = await this.credential.getToken(this.scope, { abortSignal: this.signal, ...(this.claims ? { claims: this.claims } : {}) });
    } catch (error) {
      if (this.signal?.aborted) throw cancelledError(this.signal);
      throw graphError('sign-in', 'AUTH_REQUIRED', `Signing in to Microsoft Entra ID failed: ${causeWords(error)}.`, 0, { area: 'inventory' }, {
        cause: error,
        hint: 'Check the tenant, the client id and the secret or certificate, and that the app registration has admin consent.',
      });
    }
    if (!got?.token) throw graphError('sign-in', 'AUTH_REQUIRED', 'Signing in to Microsoft Entra ID gave no access token.', 0, { area: 'inventory' });
    this.token = got.token;
    return got.token;
  }
}

/** The decoded `claims` of a `WWW-Authenticate: Bearer … claims="<base64>"` challenge, if any. */
export function claimsChallenge(header: string | null): string | undefined {
  const match = header === null ? null : /\bclaims="([^"]+)"/u.exec(header);
  return match ? Buffer.from(match[1]!, 'base64').toString('utf8') : undefined;
}

/** Retry-After in milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined if neither. */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/u.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

interface GraphErrorBody {
  code: string | undefined;
  message: string | undefined;
  requestId: string | undefined;
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** `{"error":{"code","message","innerError":{"request-id","date"}}}` */
function graphErrorBody(body: unknown): GraphErrorBody {
  const error = isObject(body) && isObject(body.error) ? body.error : {};
  const inner = isObject(error.innerError) ? error.innerError : isObject(error.innererror) ? error.innererror : {};
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  return { code: str(error.code), message: str(error.message), requestId: str(inner['request-id']) };
}

/**
 * Graph's own message, shortened and with every string the request carried that may be secret
 * (a secretKey, a verificationCode) blanked: a message that echoes its input must not carry them.
 */
function safeGraphMessage(message: string | undefined, sent: unknown): string | undefined {
  if (message === undefined) return undefined;
  let text = message.replace(/[\p{Cc}\p{Cf}]/gu, ' ').replace(/[.\s]+$/u, '');
  for (const secret of secretsIn(sent)) text = text.split(secret).join('<secret>');
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function secretsIn(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) secretsIn(v, found);
  else if (isObject(value)) {
    for (const [key, v] of Object.entries(value)) {
      if ((key === 'secretKey' || key === 'verificationCode') && typeof v === 'string' && v !== '') found.push(v);
      else secretsIn(v, found);
    }
  }
  return found;
}

function mapGraphError(status: number, graph: GraphErrorBody, subject: RequestSubject, sent: unknown): KeytapError {
  const said = safeGraphMessage(graph.message, sent);
  const words = `${graph.code ?? `HTTP ${status}`}${said ? `: ${said}` : ''}`;
  const who = about(subject);
  const lower = `${graph.code ?? ''} ${graph.message ?? ''}`.toLowerCase();
  const base = { requestId: graph.requestId, graphCode: graph.code };
  if (status === 403 && !/polic(y|ies).*(disabled|not enabled)|not enabled|disabled/u.test(lower)) {
    const permission = subject.area === 'inventory' ? INVENTORY_PERMISSION : USER_METHODS_PERMISSION;
    const role = subject.area === 'inventory' ? INVENTORY_ROLE : USER_METHODS_ROLE;
    return graphError('permission', 'PERMISSION_DENIED', `Microsoft Graph refused${who}: ${words}.`, status, subject, {
      ...base,
      permission,
      hint: `The app needs the ${permission} permission (application permission with admin consent, or delegated for a signed-in ${role}).`,
    });
  }
  if (/hardwareoath|hardware oath|authentication method/u.test(lower) && /disabled|not enabled/u.test(lower)) {
    return graphError('policy-disabled', 'UNSUPPORTED', `Hardware OATH tokens are not enabled in the tenant's authentication methods policy${who}: ${words}.`, status, subject, {
      ...base,
      hint: `Enable them: PATCH ${POLICY_PATH} with {"state":"enabled"} (needs ${INVENTORY_PERMISSION}), or in the Entra admin center under Authentication methods; the change can take up to an hour to apply.`,
    });
  }
  if (status === 404 && (subject.area === 'user-methods' || /user|resource.*does not exist|request_resourcenotfound/u.test(lower))) {
    return graphError('user-not-found', 'NOT_FOUND', `The user ${subject.upn ?? '?'} was not found in the tenant${subject.serial ? ` (token ${subject.serial})` : ''}: ${words}.`, status, subject, {
      ...base,
      hint: 'Check the UPN; tokens cannot be assigned to guest users of the tenant.',
    });
  }
  if (/verification ?code|invalid ?otp|otp.*invalid/u.test(lower)) {
    return graphError('invalid-code', 'BAD_INPUT', `Entra ID did not accept the verification code${who}: ${words}.`, status, subject, {
      ...base,
      hint: "Check the computer's clock and that the seed is the one on the key; the code must be used within 1 minute (30 s tokens) or 2 minutes (60 s tokens).",
    });
  }
  if (status === 409 || /already exists|duplicate|conflict/u.test(lower)) {
    return graphError('duplicate-serial', 'EXISTS', `Entra ID already has a token with serial ${subject.serial ?? '?'}: ${words}.`, status, subject, {
      ...base,
      hint: 'A token uploaded by CSV and created again through Graph ends up twice; remove one (DELETE the user method, then the device).',
    });
  }
  if (status === 429 || status === 503) {
    return graphError('throttled', 'BUSY', `Microsoft Graph is throttling requests${who}: ${words}.`, status, subject, { ...base, hint: 'Run the command again in a few minutes: what is already in Entra ID is matched, not created twice.' });
  }
  if (status === 401) {
    return graphError('sign-in', 'AUTH_REQUIRED', `Microsoft Graph did not accept the sign-in${who}: ${words}.`, status, subject, {
      ...base,
      hint: 'Sign in again; for an app, check that the token is for the Graph of this cloud.',
    });
  }
  return graphError('other', 'DEVICE_ERROR', `Microsoft Graph answered HTTP ${status}${who}: ${words}.`, status, subject, base);
}

function about(subject: RequestSubject): string {
  if (subject.serial === undefined && subject.upn === undefined) return '';
  return ` for token ${subject.serial ?? '?'}${subject.upn ? ` (${subject.upn})` : ''}`;
}

function causeWords(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const first = message.split('\n')[0]!.replace(/[\p{Cc}\p{Cf}]/gu, ' ');
  return cause ? `${first} (${cause.message})` : first;
}

function graphError(
  problem: GraphProblem,
  code: ErrorCode,
  message: string,
  status: number,
  subject: RequestSubject,
  extra: { hint?: string; permission?: string; requestId?: string | undefined; graphCode?: string | undefined; cause?: unknown } = {},
): KeytapError {
  const requestId = extra.requestId;
  return new KeytapError(code, requestId ? `${message} (request-id ${requestId})` : message, {
    hint: extra.hint,
    cause: extra.cause,
    detail: { kind: 'graph', problem, status, graphCode: extra.graphCode, serial: subject.serial, upn: subject.upn, permission: extra.permission, requestId },
  });
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
