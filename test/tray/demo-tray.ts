// A demo tray for the screenshot and the host test: the SNI backend showing a sample model with
// two keys' sections. Prints "status <shown|no-host>" and "click <id>" lines on stdout; exits on
// SIGTERM/SIGINT. Run: node --import tsx test/tray/demo-tray.ts
import type { TrayModel } from '../../src/tray/model.js';
import { SniTrayBackend } from '../../src/tray/sni/backend.js';

export const DEMO_MODEL: TrayModel = {
  icon: 'key',
  tooltip: 'keytap — 2 keys',
  menu: [
    { kind: 'item', id: 'key:nk3', label: 'Nitrokey 3 · 2C8D41F0', enabled: false },
    { kind: 'item', id: 'code:nk3:GitHub:alice', label: 'GitHub: alice@example.com' },
    { kind: 'item', id: 'code:nk3:AWS:alice', label: 'AWS: alice (touch)' },
    { kind: 'item', id: 'code:nk3:Bank:alice', label: 'Bank: alice (HOTP)' },
    { kind: 'separator', id: 'sep:nk3' },
    { kind: 'item', id: 'key:yk', label: 'YubiKey 5 NFC · 18220431', enabled: false },
    { kind: 'item', id: 'code:yk:GitLab:bob', label: 'GitLab: bob' },
    { kind: 'item', id: 'code:yk:Google:bob', label: 'Google: bob@example.org (touch)' },
    { kind: 'separator', id: 'sep:yk' },
    {
      kind: 'item',
      id: 'default',
      label: 'Default account for the shortcut',
      children: [
        { kind: 'item', id: 'default:nk3:GitHub:alice', label: 'GitHub: alice@example.com', toggle: 'radio', checked: true },
        { kind: 'item', id: 'default:yk:GitLab:bob', label: 'GitLab: bob', toggle: 'radio', checked: false },
      ],
    },
    { kind: 'item', id: 'autostart', label: 'Start at login', toggle: 'checkmark', checked: true },
    { kind: 'item', id: 'settings', label: 'Settings' },
    { kind: 'item', id: 'about', label: 'About keytap' },
    { kind: 'separator', id: 'sep:end' },
    { kind: 'item', id: 'quit', label: 'Quit' },
  ],
};

const tray = new SniTrayBackend({ log: (line) => console.error(line) });
await tray.render(DEMO_MODEL);
await tray.start(
  (id) => console.log(`click ${id}`),
  (status) => console.log(`status ${status}`),
);
console.log(`name ${tray.serviceName}`);
const quit = (): void => {
  tray.stop().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGTERM', quit);
process.on('SIGINT', quit);
