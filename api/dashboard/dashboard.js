// The hitmesh dashboard. Short polling, once a second, of the node that served
// this page (relative URLs only): every answer is small and a poll that fails
// says at once that the node is gone, which SSE would hide behind reconnects.
// Everything the server sends (keys are user input) goes into the page with
// textContent or as an attribute value, never as HTML.
/* global uPlot */
'use strict';

(() => {
  const POLL_MS = 1_000;
  const TOP_K = 20;
  /** The key chart: per-second counts of the last 5 minutes. */
  const KEY_SECONDS = 300;
  /**
   * The key chart asks for one second per request (GET /counts?key=K&from&to:
   * a key in a query string, so keys like ".." survive; the path would
   * resolve them away). On a click it fetches all 300 seconds, a few at a
   * time; after that each poll asks again only the last few seconds: the
   * current one still grows, and hits taken by peers arrive within the
   * replication lag.
   */
  const REFETCH_SECONDS = 5;
  const FETCH_CONCURRENCY = 6;
  /** Points kept of the hits/s chart (one per poll). */
  const RATE_POINTS = 120;
  const COLORS = ['#2b59c3', '#1f8a4c', '#c05621', '#805ad5', '#c53030', '#2c7a7b', '#b7791f', '#4a5568'];

  const byId = (id) => document.getElementById(id);
  const nodesBody = byId('nodes').tBodies[0];
  const topBody = byId('top').tBodies[0];
  const windowSelect = byId('window');

  /** Server clock minus ours, from the last answer's asOf: seconds are the server's. */
  let serverOffsetMs = 0;
  const serverSecond = () => Math.floor((Date.now() + serverOffsetMs) / 1000);

  // ---------------------------------------------------------------- API token

  // A node run with --api-token answers 401 until the page sends the token: the page
  // asks for it once and keeps it for this tab only (sessionStorage, gone with the tab).
  const TOKEN_KEY = 'hitmesh-api-token';
  const tokenForm = byId('token-form');
  const tokenInput = byId('token');
  let apiToken = sessionStorage.getItem(TOKEN_KEY) ?? undefined;

  tokenForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const given = tokenInput.value.trim();
    if (given === '') return;
    apiToken = given;
    sessionStorage.setItem(TOKEN_KEY, given);
    tokenInput.value = '';
    tokenForm.hidden = true;
    setConnection('connecting', 'connecting…');
  });

  function askForToken() {
    // A token that was refused is dropped, so a typo is not sent again and again.
    if (apiToken !== undefined) sessionStorage.removeItem(TOKEN_KEY);
    apiToken = undefined;
    if (tokenForm.hidden) {
      tokenForm.hidden = false;
      tokenInput.focus();
    }
  }

  class TokenNeeded extends Error {}

  async function getJson(path) {
    const headers = { accept: 'application/json' };
    if (apiToken !== undefined) headers.authorization = `Bearer ${apiToken}`;
    const response = await fetch(path, { cache: 'no-store', headers });
    if (response.status === 401) {
      askForToken();
      throw new TokenNeeded('this node needs its API token');
    }
    if (!response.ok) throw new Error(`${path.split('?')[0]} answered ${response.status}`);
    return response.json();
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className !== undefined) td.className = className;
    return td;
  }

  const formatCount = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');
  function formatMs(ms, signed = false) {
    if (typeof ms !== 'number') return '—';
    const sign = signed && ms > 0 ? '+' : '';
    return Math.abs(ms) < 1_000 ? `${sign}${Math.round(ms)} ms` : `${sign}${(ms / 1_000).toFixed(1)} s`;
  }

  // ---------------------------------------------------------------- nodes

  /** Per node id: its last hits total and when it was read, for hits/s. */
  const lastHits = new Map();
  /** The hits/s history: poll times (s) and one array per node id, in the order first seen. */
  const rateHistory = { times: [], byNode: new Map() };
  let ratePlot;

  function hitsPerSecond(id, hits, atMs) {
    const previous = lastHits.get(id);
    lastHits.set(id, { hits, atMs });
    if (typeof hits !== 'number' || previous === undefined || typeof previous.hits !== 'number') return null;
    const seconds = (atMs - previous.atMs) / 1_000;
    // A new incarnation starts a new origin at 0: no rate across that poll.
    return seconds > 0 && hits >= previous.hits ? (hits - previous.hits) / seconds : null;
  }

  function renderNodes(cluster, atMs) {
    const { node, peers } = cluster;
    byId('node-id').textContent = `${node.id} · ${node.address}`;
    const rows = [
      { id: node.id, state: 'up', label: 'up (this node)', hits: node.hits, lag: null, offset: null, contact: null, address: node.address },
      ...peers.map((p) => ({ id: p.id, state: p.state, label: p.state, hits: p.hits, lag: p.replicationLagMs, offset: p.clockOffsetMs, contact: p.lastContactAgoMs, address: p.address })),
    ];
    const rates = new Map();
    nodesBody.replaceChildren(
      ...rows.map((row) => {
        const rate = hitsPerSecond(row.id, row.hits, atMs);
        rates.set(row.id, rate);
        const tr = document.createElement('tr');
        tr.dataset.node = row.id;
        tr.dataset.state = row.state;
        tr.append(
          cell(row.id),
          cell(row.label, 'state'),
          cell(rate === null ? '—' : rate.toFixed(1), 'num rate'),
          cell(formatCount(row.hits), 'num hits-total'),
          cell(formatMs(row.lag), 'num'),
          cell(formatMs(row.offset, true), 'num'),
          cell(row.contact === null ? '—' : `${formatMs(row.contact)} ago`, 'num'),
          cell(row.address),
        );
        return tr;
      }),
    );
    recordRates(rates, atMs);
  }

  function recordRates(rates, atMs) {
    const { times, byNode } = rateHistory;
    let newNode = false;
    for (const id of rates.keys()) {
      if (!byNode.has(id)) {
        byNode.set(id, times.map(() => null));
        newNode = true;
      }
    }
    times.push(atMs / 1_000);
    for (const [id, values] of byNode) values.push(rates.get(id) ?? null);
    if (times.length > RATE_POINTS) {
      times.shift();
      for (const values of byNode.values()) values.shift();
    }
    const data = [times, ...byNode.values()];
    if (ratePlot === undefined || newNode) {
      ratePlot?.destroy();
      const series = [{}, ...[...byNode.keys()].map((id, i) => ({ label: id, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false }))];
      ratePlot = new uPlot({ width: chartWidth('rate-chart'), height: 160, series, legend: { live: false }, scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } }, axes: [{}, { label: 'hits/s' }] }, data, byId('rate-chart'));
    } else {
      ratePlot.setData(data);
    }
  }

  async function pollCluster() {
    try {
      const cluster = await getJson('/cluster');
      renderNodes(cluster, performance.timeOrigin + performance.now());
      setConnection('up', `polled ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      if (error instanceof TokenNeeded) {
        setConnection('token', 'enter the API token (the node runs with --api-token)');
        return;
      }
      // This node itself stopped answering: what is shown is its last word.
      for (const tr of nodesBody.rows) tr.classList.add('stale');
      setConnection('unreachable', `node unreachable: ${error.message}`);
    }
  }

  function setConnection(state, text) {
    const span = byId('connection');
    span.dataset.state = state;
    span.textContent = text;
  }

  // ---------------------------------------------------------------- top keys

  /** The rows of the top list by key, reused from poll to poll so a click never lands on a replaced row. */
  const topRows = new Map();

  function topRow(key) {
    let row = topRows.get(key);
    if (row === undefined) {
      const tr = document.createElement('tr');
      tr.dataset.key = key;
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'key';
      button.textContent = key;
      button.addEventListener('click', () => selectKey(key));
      const keyCell = cell('');
      keyCell.append(button);
      row = { tr, rank: cell('', 'num'), count: cell('', 'num count') };
      tr.append(row.rank, keyCell, row.count);
      topRows.set(key, row);
    }
    return row;
  }

  function renderTop(answer) {
    const shown = new Set();
    const rows = answer.top.map((entry, i) => {
      const row = topRow(entry.key);
      shown.add(entry.key);
      row.rank.textContent = String(i + 1);
      row.count.textContent = formatCount(entry.count);
      row.tr.classList.toggle('selected', entry.key === keyView.key);
      return row.tr;
    });
    for (const key of topRows.keys()) if (!shown.has(key)) topRows.delete(key);
    const current = [...topBody.rows];
    if (current.length !== rows.length || current.some((tr, i) => tr !== rows[i])) topBody.replaceChildren(...rows);
    const exactness = answer.exact ? 'exact' : `not exact: a key left out may have up to ${formatCount(answer.maxError)} more hits than the last listed`;
    byId('top-note').textContent = answer.top.length === 0 ? 'no hits in this window' : `${exactness} · ${answer.freshness.synced} of ${answer.freshness.peers} peers synced`;
  }

  async function pollTop() {
    try {
      const answer = await getJson(`/top?window=${encodeURIComponent(windowSelect.value)}&k=${TOP_K}`);
      serverOffsetMs = answer.asOf - Date.now();
      renderTop(answer);
    } catch (error) {
      byId('top-note').textContent = `top keys unavailable: ${error.message}`;
    }
  }

  // ---------------------------------------------------------------- one key over time

  /** The chosen key's per-second counts by second; `generation` drops answers for a key no longer chosen. */
  const keyView = { key: undefined, generation: 0, counts: new Map(), ready: false };
  let keyPlot;

  /** Count `key` in each of `seconds`, FETCH_CONCURRENCY requests at a time. */
  async function countsPerSecond(key, seconds) {
    const counts = new Array(seconds.length).fill(0);
    let next = 0;
    async function worker() {
      while (next < seconds.length) {
        const i = next++;
        const from = seconds[i] * 1_000;
        const answer = await getJson(`/counts?key=${encodeURIComponent(key)}&from=${from}&to=${from + 1_000}`);
        counts[i] = Object.hasOwn(answer.counts, key) ? answer.counts[key] : 0;
      }
    }
    await Promise.all(Array.from({ length: FETCH_CONCURRENCY }, worker));
    return counts;
  }

  async function refreshKey(seconds) {
    const { key, generation } = keyView;
    const counts = await countsPerSecond(key, seconds);
    if (generation !== keyView.generation) return;
    seconds.forEach((s, i) => keyView.counts.set(s, counts[i]));
    const first = serverSecond() - KEY_SECONDS + 1;
    for (const s of keyView.counts.keys()) if (s < first) keyView.counts.delete(s);
    keyView.ready = true;
    drawKey();
  }

  function drawKey() {
    const seconds = [...keyView.counts.keys()].sort((a, b) => a - b);
    const values = seconds.map((s) => keyView.counts.get(s));
    const data = [seconds, values];
    if (keyPlot === undefined) {
      const bars = uPlot.paths.bars === undefined ? undefined : uPlot.paths.bars({ size: [0.9, 8] });
      const series = [{}, { label: 'hits/s', stroke: '#2b59c3', fill: 'rgba(43, 89, 195, 0.25)', paths: bars, points: { show: false } }];
      keyPlot = new uPlot({ width: chartWidth('key-chart'), height: 220, series, legend: { live: false }, scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } } }, data, byId('key-chart'));
    } else {
      keyPlot.setData(data);
    }
    const total = values.reduce((sum, n) => sum + n, 0);
    const chart = byId('key-chart');
    chart.dataset.key = keyView.key;
    chart.dataset.total = String(total);
    chart.dataset.points = String(values.filter((n) => n > 0).length);
    byId('key-note').textContent = `${formatCount(total)} hits in the last ${KEY_SECONDS / 60} minutes`;
  }

  function selectKey(key) {
    keyView.key = key;
    keyView.generation++;
    keyView.counts = new Map();
    keyView.ready = false;
    byId('key-name').textContent = key;
    byId('key-note').textContent = 'loading…';
    for (const [k, row] of topRows) row.tr.classList.toggle('selected', k === key);
    const end = serverSecond();
    const seconds = Array.from({ length: KEY_SECONDS }, (_, i) => end - KEY_SECONDS + 1 + i);
    refreshKey(seconds).catch(showKeyError);
  }

  function showKeyError(error) {
    byId('key-note').textContent = `counts unavailable: ${error.message}`;
  }

  async function pollKey() {
    if (keyView.key === undefined || !keyView.ready) return;
    const end = serverSecond();
    const seconds = Array.from({ length: REFETCH_SECONDS }, (_, i) => end - REFETCH_SECONDS + 1 + i);
    // After a stall (a hidden tab polls slowly) fill the gap too, up to the chart's width.
    const newest = Math.max(...keyView.counts.keys());
    for (let s = Math.max(newest + 1, end - KEY_SECONDS + 1); s < seconds[0]; s++) seconds.unshift(s);
    await refreshKey(seconds).catch(showKeyError);
  }

  // ---------------------------------------------------------------- loop

  function chartWidth(id) {
    return Math.max(300, byId(id).clientWidth || 600);
  }

  window.addEventListener('resize', () => {
    ratePlot?.setSize({ width: chartWidth('rate-chart'), height: 160 });
    keyPlot?.setSize({ width: chartWidth('key-chart'), height: 220 });
  });
  windowSelect.addEventListener('change', () => void pollTop());

  async function tick() {
    await Promise.all([pollCluster(), pollTop(), pollKey()]);
    // The next poll starts a second after this one ended: a slow node is never asked twice at once.
    setTimeout(() => void tick(), POLL_MS);
  }
  void tick();
})();
