// Builds index.js as plotly.js's own dist is built (their esbuild-config.js), minified.
// Usage: node build.js OUTFILE
'use strict';

const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
const { version } = require('plotly.js/package.json');

const banner = `/**
* plotly.js v${version} (radmap's build: the trace types in tools/plotly-bundle/index.js)
* Copyright 2012-2026, Plotly, Inc.
* All rights reserved.
* Licensed under the MIT license
*/`;

esbuild
    .build({
        entryPoints: ['./index.js'],
        outfile: process.argv[2],
        format: 'iife',
        globalName: 'Plotly',
        bundle: true,
        minify: true,
        sourcemap: false,
        legalComments: 'eof',
        banner: { js: banner },
        plugins: [InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
        alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
        define: { global: 'window', 'define.amd': 'false' },
        target: 'es2016',
        logLevel: 'info',
    })
    .catch(() => process.exit(1));
