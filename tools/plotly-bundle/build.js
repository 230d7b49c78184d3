// Builds index.js as plotly.js's own dist is built (their esbuild-config.js), minified.
// Usage: node build.js OUTFILE
'use strict';

const fs = require('fs');
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

// plotly.js hands regl a cache of precompiled code (empty outside plotly's "strict" build),
// so regl hashes every program it generates with a SHA-256 written in JavaScript before
// looking it up: ~90 ms of a volcano's first draw. Keyed by the program's source itself,
// the cache finds and stores the same programs without the hash.
const hashedKey = 'key = hex_sha256(src);';
const reglKeyedBySource = {
    name: 'regl-keyed-by-source',
    setup(build) {
        build.onLoad({ filter: /[\\/]@plotly[\\/]regl[\\/]dist[\\/]regl\.unchecked\.js$/ }, (args) => {
            const code = fs.readFileSync(args.path, 'utf8');
            if (code.split(hashedKey).length !== 2) {
                throw new Error(`${args.path} no longer has one "${hashedKey}": review this patch`);
            }
            return { contents: code.replace(hashedKey, 'key = src;'), loader: 'js' };
        });
    },
};

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
        plugins: [reglKeyedBySource, InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
        alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
        define: { global: 'window', 'define.amd': 'false' },
        target: 'es2016',
        logLevel: 'info',
    })
    .catch(() => process.exit(1));
