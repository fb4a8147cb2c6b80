#!/usr/bin/env node
'use strict';
const { join } = require('node:path');
const { bundleFor } = require('./bundle-choice.cjs');

require(join(__dirname, '..', 'dist', bundleFor(process.argv.slice(2))));
