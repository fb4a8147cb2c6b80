/**
 * Signing in to Microsoft Entra ID with @azure/identity: device code for an administrator at a
 * terminal, a client secret or a certificate for automation. The authority host is what
 * @azure/identity reads from AZURE_AUTHORITY_HOST (login.microsoftonline.com by default; a
 * national cloud's, or a local stand-in's in the tests).
 */
import type { TokenCredential } from '@azure/identity';
import { KeytapError } from '../errors.js';

export interface SignInOptions {
  tenantId: string;
  clientId: string;
  clientSecret?: string | undefined;
  certificatePath?: string | undefined;
  /** Where the device-code message (a URL and a code to type) goes: the terminal's stderr. */
  onDeviceCode?: ((message: string) => void) | undefined;
  /** Overrides AZURE_AUTHORITY_HOST. */
  authorityHost?: string | undefined;
}

/** Microsoft's own authority hosts, whose metadata MSAL may discover; any other is used as given. */
const MICROSOFT_AUTHORITY = /^https:\/\/login\.(microsoftonline\.(com|us)|partner\.microsoftonline\.cn|chinacloudapi\.cn)(\/|$)/u;

export function signInKind(options: Pick<SignInOptions, 'clientSecret' | 'certificatePath'>): 'certificate' | 'secret' | 'device-code' {
  if (options.certificatePath !== undefined) return 'certificate';
  if (options.clientSecret !== undefined) return 'secret';
  return 'device-code';
}

/**
 * Loaded on first use: evaluating @azure/identity and MSAL costs every keytap command some 30 ms
 * at start-up (`keytap --version` 89 → 122 ms), and only the Entra commands need it.
 */
export async function createCredential(options: SignInOptions): Promise<TokenCredential> {
  const { ClientCertificateCredential, ClientSecretCredential, DeviceCodeCredential } = await import('@azure/identity');
  const authorityHost = options.authorityHost ?? process.env.AZURE_AUTHORITY_HOST;
  const common = {
    ...(authorityHost ? { authorityHost } : {}),
    // Instance discovery asks Microsoft's endpoint about the authority; a host of one's own has none.
    disableInstanceDiscovery: authorityHost !== undefined && !MICROSOFT_AUTHORITY.test(authorityHost),
  };
  switch (signInKind(options)) {
    case 'certificate':
      return new ClientCertificateCredential(options.tenantId, options.clientId, { certificatePath: options.certificatePath! }, common);
    case 'secret':
      if (options.clientSecret === '') throw new KeytapError('USAGE', 'The client secret is empty.');
      return new ClientSecretCredential(options.tenantId, options.clientId, options.clientSecret!, common);
    case 'device-code':
      return new DeviceCodeCredential({
        ...common,
        tenantId: options.tenantId,
        clientId: options.clientId,
        userPromptCallback: (info) => options.onDeviceCode?.(info.message),
      });
  }
}
