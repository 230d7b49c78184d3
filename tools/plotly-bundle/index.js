// The trace types radmap's figures use; tests/explorer/test_plotly_bundle.py checks this list
// against the figure code. Add a trace here (and rebuild) before a figure uses a new one.
'use strict';

var Plotly = require('plotly.js/lib/core'); // brings scatter

Plotly.register([
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/box'),
    require('plotly.js/lib/heatmap'),
    require('plotly.js/lib/scattergl'),
]);

module.exports = Plotly;
