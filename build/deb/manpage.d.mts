// Types for manpage.mjs (its unit test imports it).
export interface HelpItem {
  term: string;
  description: string;
}
export interface Help {
  usage: string;
  description: string[];
  sections: { title: string; items: HelpItem[] }[];
}
export function parseHelp(text: string): Help;
export function collectHelp(runHelp: (args: string[]) => Promise<string>, path?: string[]): Promise<{ path: string[]; help: Help }[]>;
export function manPage(options: { version: string; date: string; summary: string; commands: { path: string[]; help: Help }[] }): string;
