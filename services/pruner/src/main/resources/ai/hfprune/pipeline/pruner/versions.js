/* The pruner's version index: fidelity, parameters, kept-set changes and coverage per version, and links to each report. */
hfprune.run(function (d) {
  'use strict';
  var vs = d.versions;
  var names = vs.map(function (v) { return 'v' + v.version; });
  var intro = hfprune.section('Versions', vs.length + ' version(s) written in ' + d.folder +
      '. Each links to its own report; metrics are against the dense model on the held-out windows.');
  hfprune.table(intro, 'versions', ['version', 'snapshot', 'tokens covered', 'KL', 'perplexity', 'top-1', 'parameters', 'kept set changed'],
      vs.map(function (v) {
        return [{ text: 'v' + v.version, href: v.report },
          v.time_millis ? new Date(v.time_millis).toISOString() : null, v.tokens.toLocaleString('en'),
          hfprune.num(v.kl), hfprune.num(v.perplexity), hfprune.num(v.top1), v.parameters.toLocaleString('en'),
          v.kept_changed === null ? 'first' : hfprune.num(100 * v.kept_changed, 3) + '%'];
      }));

  function line(parent, id, title, series, fromZero) {
    hfprune.chart(parent, id, {
      title: { text: title, textStyle: { fontSize: 13 } }, tooltip: { trigger: 'axis' }, legend: { right: 0 },
      xAxis: { type: 'category', data: names }, yAxis: { type: 'value', scale: !fromZero },
      series: series
    }, 260);
  }
  var f = hfprune.section('Fidelity per version');
  line(f, 'history-kl', 'KL(dense ‖ pruned), nats per token', [
    { name: 'KL', type: 'line', data: vs.map(function (v) { return v.kl; }) }]);
  line(f, 'history-perplexity', 'Perplexity', [
    { name: 'pruned', type: 'line', data: vs.map(function (v) { return v.perplexity; }) },
    { name: 'dense', type: 'line', lineStyle: { type: 'dashed' }, data: vs.map(function (v) { return v.dense_perplexity; }) }]);
  line(f, 'history-parameters', 'Parameters', [
    { name: 'pruned', type: 'bar', barMaxWidth: 60, data: vs.map(function (v) { return v.parameters; }) }], true);

  var c = hfprune.section('Change and coverage',
      'The fraction of kept MLP neurons and KV groups that the previous written version did not keep; and the calibration tokens covered when each version was triggered.');
  var changes = vs.slice(1);
  hfprune.chart(c, 'history-kept-changed', {
    title: { text: 'Kept set changed since the previous version', textStyle: { fontSize: 13 } }, tooltip: { trigger: 'axis' },
    xAxis: { type: 'category', data: changes.map(function (v) { return 'v' + v.version; }) },
    yAxis: { type: 'value', max: 1, axisLabel: { formatter: function (x) { return Math.round(100 * x) + '%'; } } },
    series: [{ name: 'changed', type: 'bar', data: changes.map(function (v) { return v.kept_changed; }) }]
  }, 240);
  var timed = vs.filter(function (v) { return v.time_millis; });
  hfprune.chart(c, 'history-coverage', {
    title: { text: 'Tokens covered over time', textStyle: { fontSize: 13 } }, tooltip: { trigger: 'axis' },
    xAxis: { type: 'time' }, yAxis: { type: 'value', name: 'tokens' },
    series: [{ name: 'tokens', type: 'line', step: 'end', label: { show: true, formatter: function (p) { return names[vs.indexOf(timed[p.dataIndex])]; } },
      data: timed.map(function (v) { return [v.time_millis, v.tokens]; }) }]
  }, 260);
});
