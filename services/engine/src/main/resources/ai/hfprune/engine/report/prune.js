/* The prune report: metrics against the dense model, kept widths, the layer × neuron map, score distributions. */
hfprune.run(function (d) {
  'use strict';
  var r = d.report;
  var layers = r.layers;
  var names = layers.map(function (l) { return 'layer ' + l.index; });
  var KEPT = '#2b7bba', CUT = '#e4572e';

  // --- metrics ---------------------------------------------------------------------------------------------------
  var m = hfprune.section('Against the dense model',
      'Parameters, compensation and recovery as prune-report.json records them; held-out metrics where an evaluation added them.');
  var rows = [
    ['input model', r.input.name + ' (' + r.input.format + ', sha256 ' + String(r.input.sha256).slice(0, 12) + ')'],
    ['criterion', r.scores.criterion + ' on ' + r.scores.windows + ' windows of ' + r.scores.seq_len + ' tokens (' + r.scores.tokens + ' tokens)'],
    ['cut', 'mlp ratio ' + r.options.mlp_ratio + ', attention ratio ' + r.options.attn_ratio + ', ' + r.options.allocation + ' allocation'],
    ['parameters', r.parameters.before.toLocaleString('en') + ' → ' + r.parameters.after.toLocaleString('en') +
        ' (' + hfprune.num(100 * r.parameters.removed_fraction, 3) + '% removed)']
  ];
  if (r.compensation) {
    rows.push(['compensation', r.compensation.method + (r.compensation.damping !== undefined
        ? ' (damping ' + r.compensation.damping + ', ' + r.compensation.calibration_tokens + ' calibration tokens)' : '')]);
  }
  if (r.recovery) {
    rows.push(['recovery: held-out KL', hfprune.num(r.recovery.held_out_kl_before) + ' → ' + hfprune.num(r.recovery.held_out_kl_after) +
        ' nats/token (best step ' + r.recovery.best_step + ' of ' + r.recovery.steps_run + ' run, ' + r.recovery.stop_reason + ')']);
  }
  var metrics = r.metrics || {};
  Object.keys(metrics).sort().forEach(function (k) {
    var v = metrics[k];
    rows.push([k, typeof v === 'number' ? hfprune.num(v, 5) : JSON.stringify(v)]);
  });
  if (r.pipeline) {
    rows.push(['pipeline version', 'v' + r.pipeline.version + ' at ' + r.pipeline.snapshot.tokens + ' tokens, snapshot of ' +
        new Date(r.pipeline.snapshot.updated_at_millis).toISOString()]);
  }
  hfprune.table(m, 'metrics', ['', 'value'], rows);

  // --- kept widths -----------------------------------------------------------------------------------------------
  var w = hfprune.section('Kept width of every layer', 'Kept and cut units per layer: MLP neurons, KV groups, query heads.');
  function widthChart(id, title, kept, total) {
    hfprune.chart(w, id, {
      title: { text: title, textStyle: { fontSize: 13 } },
      tooltip: { trigger: 'axis' }, legend: { right: 0 },
      xAxis: { type: 'category', data: names }, yAxis: { type: 'value' },
      series: [
        { name: 'kept', type: 'bar', stack: 'w', color: KEPT, data: kept, label: { show: true, position: 'inside' } },
        { name: 'cut', type: 'bar', stack: 'w', color: CUT, data: kept.map(function (k, i) { return total[i] - k; }) }
      ]
    }, 260);
  }
  widthChart('widths-mlp', 'MLP neurons', layers.map(function (l) { return l.mlp.after; }),
      layers.map(function (l) { return l.mlp.before; }));
  widthChart('widths-kv-groups', 'KV groups', layers.map(function (l) { return l.attention.kv_groups_kept.length; }),
      layers.map(function (l) { return l.attention.kv_groups_before; }));
  widthChart('widths-heads', 'Query heads', layers.map(function (l) { return l.attention.heads_kept.length; }),
      layers.map(function (l) { return l.attention.heads_before; }));

  // --- which neurons were kept -----------------------------------------------------------------------------------
  var k = hfprune.section('Which MLP neurons were kept', 'One cell per neuron (its index in the dense model) and layer.');
  var cells = [];
  var widest = 0;
  layers.forEach(function (l, y) {
    var kept = {};
    l.mlp.kept.forEach(function (i) { kept[i] = true; });
    for (var i = 0; i < l.mlp.before; i++) { cells.push([i, y, kept[i] ? 1 : 0]); }
    widest = Math.max(widest, l.mlp.before);
  });
  hfprune.chart(k, 'kept-map', {
    tooltip: { formatter: function (p) { return names[p.value[1]] + ', neuron ' + p.value[0] + ': ' + (p.value[2] ? 'kept' : 'cut'); } },
    grid: { left: 70, right: 20, top: 10, bottom: 70 },
    xAxis: { type: 'category', name: 'neuron', nameLocation: 'middle', nameGap: 28,
      data: Array.from({ length: widest }, function (_, i) { return i; }) },
    yAxis: { type: 'category', data: names, inverse: true },
    visualMap: { type: 'piecewise', orient: 'horizontal', left: 'center', bottom: 0, dimension: 2,
      pieces: [{ value: 1, label: 'kept', color: KEPT }, { value: 0, label: 'cut', color: CUT }] },
    series: [{ name: 'kept', type: 'heatmap', data: cells, progressive: 0 }]
  }, Math.max(180, 40 * layers.length + 90));

  // --- score distributions ---------------------------------------------------------------------------------------
  if (!d.scores) {
    hfprune.section('Score distributions', 'The scores were not available when this report was written.');
    return;
  }
  var s = hfprune.section('Distribution of the ' + d.scores.criterion + ' scores of the MLP neurons, per layer',
      'Histogram over one range for all layers (log10 of the score when every score is positive); kept and cut neurons stacked.');
  var all = [].concat.apply([], d.scores.mlp);
  var log = all.every(function (x) { return x > 0; });
  var t = function (x) { return log ? Math.log10(x) : x; };
  var lo = Math.min.apply(null, all.map(t)), hi = Math.max.apply(null, all.map(t));
  var BINS = 30;
  var step = hi > lo ? (hi - lo) / BINS : 1;
  var centres = Array.from({ length: BINS }, function (_, b) { return hfprune.num(log ? Math.pow(10, lo + (b + 0.5) * step) : lo + (b + 0.5) * step, 3); });
  var grid = hfprune.grid(s);
  layers.forEach(function (l) {
    var kept = new Array(BINS).fill(0), cut = new Array(BINS).fill(0), isKept = {};
    l.mlp.kept.forEach(function (i) { isKept[i] = true; });
    d.scores.mlp[l.index].forEach(function (x, i) {
      var b = Math.min(BINS - 1, Math.floor((t(x) - lo) / step));
      (isKept[i] ? kept : cut)[b]++;
    });
    hfprune.chart(grid, 'scores-mlp-' + l.index, {
      title: { text: 'layer ' + l.index + ': neurons per bin', textStyle: { fontSize: 13 } },
      tooltip: { trigger: 'axis' }, legend: { right: 0 },
      grid: { left: 40, right: 10, top: 30, bottom: 40 },
      xAxis: { type: 'category', data: centres, name: log ? 'score (log bins)' : 'score', nameLocation: 'middle', nameGap: 26 },
      yAxis: { type: 'value' },
      series: [
        { name: 'kept', type: 'bar', stack: 'h', color: KEPT, data: kept, barCategoryGap: '5%' },
        { name: 'cut', type: 'bar', stack: 'h', color: CUT, data: cut }
      ]
    });
  });

  var h = hfprune.section('Scores of the query heads', 'Every head of every layer; a KV group scores the sum of its heads.');
  var keptHeads = [], cutHeads = [];
  var headsLog = [].concat.apply([], d.scores.heads).every(function (x) { return x > 0; });
  layers.forEach(function (l, y) {
    var isKept = {};
    l.attention.heads_kept.forEach(function (i) { isKept[i] = true; });
    d.scores.heads[l.index].forEach(function (x, i) { (isKept[i] ? keptHeads : cutHeads).push([names[y], x]); });
  });
  hfprune.chart(h, 'scores-heads', {
    tooltip: { trigger: 'item' }, legend: { right: 0 },
    xAxis: { type: 'category', data: names }, yAxis: { type: headsLog ? 'log' : 'value', name: 'score' },
    series: [
      { name: 'kept', type: 'scatter', color: KEPT, data: keptHeads },
      { name: 'cut', type: 'scatter', color: CUT, data: cutHeads }
    ]
  }, 260);
});
