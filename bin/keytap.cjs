#!/usr/bin/env node
'use strict';
const { join } = require('node:path');
const { bundleFor } = require('./bundle-choice.cjs');

// koffi runs blocking PC/SC calls on libuv's thread pool (src/sea/launcher.ts says why 8).
process.env.UV_THREADPOOL_SIZE ??= '8';
require(join(__dirname, '..', 'dist', bundleFor(process.argv.slice(2))));
