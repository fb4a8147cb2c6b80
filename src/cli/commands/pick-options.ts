/** What `keytap pick --with` (or $KEYTAP_PICKER) may name. */
export const PICKERS = ['rofi', 'fuzzel', 'wofi', 'dmenu', 'terminal'] as const;
export type Picker = (typeof PICKERS)[number];

export interface PickOptions {
  with?: Picker | undefined;
}
