/* The fidelity study: KL and perplexity against the fraction of parameters removed, one line per criterion × method. */
hfprune.run(function (d) {
  'use strict';
  // the mean over calibration sets of every (criterion, method, setting)
  var lines = {};
  d.results.forEach(function (r) {
    var name = r.criterion + ' · ' + r.method;
    var setting = r.mlp_ratio + ':' + r.attn_ratio;
    var line = lines[name] = lines[name] || {};
    var p = line[setting] = line[setting] || { removed: 1 - r.parameters / d.model.parameters, setting: setting, kl: [], perplexity: [] };
    if (r.kl !== null) { p.kl.push(r.kl); }
    if (r.perplexity !== null) { p.perplexity.push(r.perplexity); }
  });
  var mean = function (v) { return v.length ? v.reduce(function (a, b) { return a + b; }, 0) / v.length : null; };
  var names = Object.keys(lines);

  var intro = hfprune.section('Setting',
      d.model.name + ' (' + d.model.parameters.toLocaleString('en') + ' parameters), dense perplexity ' + hfprune.num(d.dense.perplexity) +
      '; ' + d.calibration.sets + ' calibration set(s) of ' + d.calibration.windows + ' windows × ' + d.calibration.seq_len +
      ' tokens; held out: ' + d.evaluation.windows + ' windows of ' + d.evaluation.data +
      '. Each point is the mean over the calibration sets; the x axis is the fraction of parameters removed (MLP and attention).');
  hfprune.table(intro, 'lines', ['criterion · method', 'settings (mlp:attn)'], names.map(function (n) {
    return [n, Object.keys(lines[n]).join(', ')];
  }));

  function curves(id, title, metric) {
    var series = names.map(function (n) {
      var points = Object.keys(lines[n]).map(function (k) { return lines[n][k]; })
          .sort(function (a, b) { return a.removed - b.removed; });
      return { name: n, type: 'line', symbolSize: 7,
        lineStyle: { type: n.indexOf('· mask') >= 0 ? 'dashed' : 'solid' },
        data: points.map(function (p) { return { value: [p.removed, mean(p[metric])], setting: p.setting }; }) };
    });
    hfprune.chart(hfprune.section(title), id, {
      tooltip: { trigger: 'item', formatter: function (p) {
        return p.seriesName + '<br>setting ' + p.data.setting + ': ' + hfprune.num(p.value[1]) + ' at ' + hfprune.num(100 * p.value[0], 3) + '% removed'; } },
      legend: { type: 'scroll', bottom: 0 },
      grid: { left: 60, right: 30, top: 30, bottom: 70 },
      xAxis: { type: 'value', name: 'parameters removed', nameLocation: 'middle', nameGap: 26, scale: true,
        axisLabel: { formatter: function (x) { return Math.round(100 * x) + '%'; } } },
      yAxis: { type: 'value', scale: true },
      series: series
    }, 420);
  }
  curves('fidelity-kl', 'KL(dense ‖ pruned), nats per token', 'kl');
  curves('fidelity-perplexity', 'Perplexity (dense ' + hfprune.num(d.dense.perplexity) + ')', 'perplexity');
});
