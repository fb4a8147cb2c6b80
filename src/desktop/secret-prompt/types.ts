/** What keytap asks a secret prompt, and what any prompt (pinentry, a fallback, a terminal) must do. */

export interface SecretRequest {
  /** The window title: "keytap". */
  title: string;
  /** What is asked and why, one or two sentences; names the key. */
  description: string;
  /** The label in front of the field: "Password:", "PIN:". */
  prompt: string;
  /** Shown above the field when asking again ("Wrong password"). */
  error?: string | undefined;
  /** Button labels; the prompt's own words when left out. */
  ok?: string | undefined;
  cancel?: string | undefined;
}

export interface SecretPrompt {
  /** The program or way it asks: "pinentry-gnome3", "zenity", "terminal". */
  readonly name: string;
  /**
   * Asks once. Resolves with what was typed; rejects with CANCELLED when the user cancelled (no
   * error to show), TIMEOUT when nobody answered in time, DEVICE_ERROR (detail
   * secret-prompt-failed) when the program failed. Never puts the secret in an error.
   */
  ask(request: SecretRequest, signal?: AbortSignal): Promise<string>;
}
