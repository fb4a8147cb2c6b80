#!/usr/bin/env node
'use strict';
// The resident process (no command, `tray`) and `doctor` need the full bundle; every other command
// starts faster from the smaller one (see build/bundle.mjs).
const command = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
const resident = command === undefined || command === 'tray' || command === 'doctor';
require(resident ? '../dist/keytap.cjs' : '../dist/keytap-cli.cjs');
