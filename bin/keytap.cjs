#!/usr/bin/env node
'use strict';
require('../dist/keytap.cjs');
