/*
 * What every hfprune report shares: sections, tables and ECharts charts, and a machine-readable record of what was
 * drawn. After the report's script has run, the element #hfprune-status (data-state "done") holds
 *   {"errors": [...], "charts": {id: {series name: [data items, sum of values]}}, "tables": {id: rows}}
 * where the chart counts are read back from each chart (getOption) after it rendered, so that a test in a headless
 * browser can check that nothing failed and that every chart holds the data it should.
 */
(function () {
  'use strict';
  var status = { errors: [], charts: {}, tables: {} };

  window.addEventListener('error', function (e) {
    status.errors.push('error: ' + (e.message || String(e)) + (e.filename ? ' at ' + e.filename + ':' + e.lineno : ''));
  });
  window.addEventListener('unhandledrejection', function (e) {
    status.errors.push('unhandled rejection: ' + String(e.reason));
  });
  var consoleError = console.error;
  console.error = function () {
    status.errors.push('console.error: ' + Array.prototype.map.call(arguments, String).join(' '));
    return consoleError.apply(console, arguments);
  };

  function element(tag, parent, text, className) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = text; }
    if (className) { e.className = className; }
    if (parent) { parent.appendChild(e); }
    return e;
  }

  /** The value an ECharts data item contributes to a series' sum: the last coordinate (y, or a heatmap's value). */
  function itemValue(item) {
    if (item !== null && typeof item === 'object' && !Array.isArray(item)) { item = item.value; }
    if (Array.isArray(item)) { item = item[item.length - 1]; }
    return typeof item === 'number' && isFinite(item) ? item : 0;
  }

  window.hfprune = {
    status: status,

    /** A section with a heading and an optional explanation; returns its element. */
    section: function (title, note) {
      var s = element('section', document.getElementById('content'));
      element('h2', s, title);
      if (note) { element('p', s, note, 'note'); }
      return s;
    },

    /** A grid of small charts inside a section. */
    grid: function (parent) { return element('div', parent, null, 'grid'); },

    /** A table of rows (arrays of cells; a cell {text, href} is a link). */
    table: function (parent, id, headers, rows) {
      var t = element('table', parent);
      t.id = id;
      var head = element('tr', element('thead', t));
      headers.forEach(function (h) { element('th', head, h); });
      var body = element('tbody', t);
      rows.forEach(function (row) {
        var tr = element('tr', body);
        row.forEach(function (cell) {
          var td = element('td', tr);
          if (cell !== null && typeof cell === 'object') {
            var a = element('a', td, cell.text);
            a.href = cell.href;
          } else {
            td.textContent = cell === null || cell === undefined ? '–' : String(cell);
          }
        });
      });
      status.tables[id] = rows.length;
      return t;
    },

    /** An ECharts chart with the given option (animation off, so what is shown is final at once). */
    chart: function (parent, id, option, height) {
      var div = element('div', parent, null, 'chart');
      div.id = id;
      if (height) { div.style.height = height + 'px'; }
      var chart = echarts.init(div, null, { renderer: 'canvas' });
      option.animation = false;
      chart.setOption(option);
      var drawn = {};
      (chart.getOption().series || []).forEach(function (s, i) {
        var data = s.data || [];
        drawn[s.name || ('series ' + i)] = [data.length, data.reduce(function (sum, d) { return sum + itemValue(d); }, 0)];
      });
      if (div.querySelector('canvas') === null || div.clientWidth === 0) {
        status.errors.push('chart ' + id + ' drew no canvas');
      }
      status.charts[id] = drawn;
      return chart;
    },

    /** A number with n significant digits (default 4), or '–'. */
    num: function (x, n) {
      if (x === null || x === undefined || !isFinite(x)) { return '–'; }
      return Number(x).toPrecision(n || 4).replace(/(\.\d*?)0+(e|$)/, '$1$2').replace(/\.(e|$)/, '$1');
    },

    /** Runs the report's script on the page's data, then publishes the status, also when the script failed. */
    run: function (draw) {
      try {
        draw(JSON.parse(document.getElementById('hfprune-data').textContent));
      } catch (e) {
        status.errors.push('report script: ' + (e && e.stack ? e.stack : String(e)));
      }
      var out = document.getElementById('hfprune-status');
      out.textContent = JSON.stringify(status);
      out.setAttribute('data-state', 'done');
    }
  };
})();
