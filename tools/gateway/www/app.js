// app.js - the saga console: plain JavaScript over saga-gateway's routes.
// Fleet health and stock are polled; orders update live from /events
// (server-sent events); lanes come from the participants that answer
// discovery, so a participant that joins gets a lane with no change here.
'use strict';

const $ = (id) => document.getElementById(id);
const orders = new Map(); // order id -> {state, last, at}
let participants = [];    // names, in the fleet's order
let chosen = null;        // the order whose timeline is shown
let timelineTimer = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c ?? ''));
  return e;
}

// JSON in, JSON out; a failure becomes an Error with the gateway's sentence.
async function api(method, path, body, headers) {
  const res = await fetch(path, {
    method,
    headers: Object.assign(body ? {'Content-Type': 'application/json'} : {}, headers || {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${res.status}: ${data.error || res.statusText}`);
  return data;
}

function say(id, text, isError) {
  const e = $(id);
  e.textContent = text;
  e.className = isError ? 'note error' : 'note';
}

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : '';
}

// ---- fleet ---------------------------------------------------------------------

async function loadFleet() {
  let data;
  try {
    data = await api('GET', '/api/fleet');
  } catch (err) {
    $('fleet').tBodies[0].replaceChildren(el('tr', {}, el('td', {colspan: 8, class: 'error'}, err.message)));
    return;
  }
  participants = data.participants.map((p) => p.name);
  const rows = data.participants.map((p) => {
    const s = p.stats || {};
    const faults = p.faults_text && p.faults_text !== 'none' ? p.faults_text : '';
    return el('tr', {id: `fleet-${p.name}`},
      el('td', {}, p.name), el('td', {}, p.instances),
      el('td', {class: p.up ? 'up' : 'down'}, p.up ? 'up' : 'down'),
      el('td', {}, s.processed ?? '-'), el('td', {}, s.pending ?? '-'),
      el('td', {}, s.dead_lettered ?? '-'), el('td', {}, s.parked ?? '-'),
      el('td', {class: faults ? 'faulty wrap' : 'wrap'}, faults || (p.faults ? 'none' : '-')));
  });
  $('fleet').tBodies[0].replaceChildren(...rows);
  const sel = $('fault-service');
  const keep = sel.value;
  const names = data.participants.filter((p) => p.faults).map((p) => p.name);
  if (names.join() !== [...sel.options].map((o) => o.value).join()) {
    sel.replaceChildren(...names.map((n) => el('option', {value: n}, n)));
    if (names.includes(keep)) sel.value = keep;
  }
}

async function setFaults(spec) {
  const svc = $('fault-service').value;
  try {
    const r = await api('POST', `/api/faults/${encodeURIComponent(svc)}`, {spec});
    const plan = Object.entries(r.faults || {}).map(([k, v]) => `${k}=${v}`).join(' ');
    say('fault-result', `${svc}: ${plan}`);
  } catch (err) {
    say('fault-result', err.message, true);
  }
  loadFleet();
}

// ---- orders ----------------------------------------------------------------------

const FINAL = {'order.placed': 'PENDING', 'order.confirmed': 'CONFIRMED', 'order.cancelled': 'CANCELLED'};

function noteEvent(ev) {
  const o = orders.get(ev.order_id) || {state: 'PENDING', last: '', at: 0};
  if (FINAL[ev.type]) o.state = FINAL[ev.type];
  o.last = ev.type;
  o.at = ev.time_unix_ms;
  orders.delete(ev.order_id); // the newest first
  orders.set(ev.order_id, o);
  while (orders.size > 200) orders.delete(orders.keys().next().value);
}

function renderOrders() {
  const rows = [...orders.entries()].reverse().map(([id, o]) =>
    el('tr', {id: `order-${id}`, class: id === chosen ? 'chosen' : '', onclick: () => choose(id)},
      el('td', {}, id), el('td', {class: `state state-${o.state}`}, o.state),
      el('td', {}, o.last), el('td', {}, time(o.at))));
  $('orders').tBodies[0].replaceChildren(...rows);
}

let renderPending = false;
function listen() {
  const es = new EventSource('/events');
  es.onopen = () => { $('live').textContent = 'live'; $('live').className = 'badge on'; };
  es.onerror = () => { $('live').textContent = 'reconnecting…'; $('live').className = 'badge'; };
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    noteEvent(ev);
    // Many events come in bursts: one render per frame.
    if (!renderPending) {
      renderPending = true;
      requestAnimationFrame(() => { renderPending = false; renderOrders(); });
    }
    if (ev.order_id === chosen) {
      clearTimeout(timelineTimer);
      timelineTimer = setTimeout(loadTimeline, 300);
    }
  };
}

async function placeOrder(e) {
  e.preventDefault();
  const body = {
    customer: $('place-customer').value,
    lines: [{sku: $('place-sku').value, qty: Number($('place-qty').value),
      price_cents: Number($('place-price').value)}],
  };
  if ($('place-ship').value) body.ship_to = $('place-ship').value;
  // One key per click: a retry of this request can never place it twice.
  const key = self.crypto && crypto.randomUUID ? crypto.randomUUID()
    : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  try {
    const r = await api('POST', '/orders', body, {'Idempotency-Key': key});
    say('place-result', `placed ${r.order_id}`);
    $('place-result').dataset.orderId = r.order_id;
    if (!orders.has(r.order_id)) {
      orders.set(r.order_id, {state: 'PENDING', last: '', at: Date.now()});
      renderOrders();
    }
    choose(r.order_id);
  } catch (err) {
    say('place-result', err.message, true);
  }
}

// ---- timeline --------------------------------------------------------------------

function markClass(mark) {
  if (mark === 'COMPENSATION') return 'comp';
  if (mark) return 'fail';
  return 'fwd';
}

function choose(id) {
  chosen = id;
  $('timeline-order').textContent = id;
  renderOrders();
  loadTimeline();
}

async function loadTimeline() {
  if (!chosen) return;
  const id = chosen;
  let data;
  try {
    data = await api('GET', `/orders/${encodeURIComponent(id)}/timeline`);
  } catch (err) {
    $('lanes').replaceChildren(el('div', {class: 'note'}, err.message));
    $('timeline-list').replaceChildren();
    return;
  }
  if (id !== chosen) return;
  const events = data.events;
  // Every discovered participant has a lane; a producer not (or no longer)
  // discovered gets one too.
  const lanes = [...participants];
  for (const ev of events) if (!lanes.includes(ev.producer)) lanes.push(ev.producer);
  const span = Math.max(1, ...events.map((ev) => ev.offset_ms || 0));
  $('lanes').replaceChildren(...lanes.map((name) => {
    const track = el('div', {class: 'lane-track'});
    for (const ev of events.filter((x) => x.producer === name)) {
      const left = `${(100 * (ev.offset_ms || 0)) / span}%`;
      const title = `${ev.type} +${ev.offset_ms} ms${ev.mark ? ' ' + ev.mark : ''}: ${ev.summary}`;
      track.append(el('span', {class: `mark ${markClass(ev.mark)}`, style: `left:${left}`, title,
        'data-type': ev.type}));
      track.append(el('span', {class: 'mark-label', style: `left:${left}`}, ev.type.split('.')[1]));
    }
    return el('div', {class: 'lane', id: `lane-${name}`}, el('div', {class: 'lane-name'}, name), track);
  }));
  $('timeline-list').replaceChildren(...events.map((ev) =>
    el('li', {class: ev.mark || '', 'data-type': ev.type},
      `+${ev.offset_ms} ms  ${ev.type}  ${ev.producer}  ${ev.mark || ''}  ${ev.summary}`)));
}

// ---- dead letters and stock ------------------------------------------------------------

async function loadDlq() {
  try {
    const data = await api('GET', '/api/dlq');
    $('dlq-total').textContent = `(${data.total} in SAGA_DLQ)`;
    $('dlq').tBodies[0].replaceChildren(...data.dead_letters.slice().reverse().map((d) =>
      el('tr', {id: `dlq-${d.seq}`},
        el('td', {}, d.seq), el('td', {}, d.service),
        el('td', {}, d.event ? `${d.event.type} of ${d.event.order_id}` : '(not an event)'),
        el('td', {class: 'wrap'}, d.reason),
        el('td', {},
          el('button', {type: 'button', onclick: () => showDead(d.seq)}, 'show'),
          el('button', {type: 'button', onclick: () => replayDead(d.seq)}, 'replay')))));
  } catch (err) {
    say('dlq-result', err.message, true);
  }
}

async function showDead(seq) {
  try {
    $('dlq-show').textContent = JSON.stringify(await api('GET', `/api/dlq/${seq}`), null, 2);
  } catch (err) {
    say('dlq-result', err.message, true);
  }
}

async function replayDead(seq) {
  try {
    say('dlq-result', (await api('POST', `/api/dlq/${seq}/replay`)).message);
  } catch (err) {
    say('dlq-result', err.message, true);
  }
  loadDlq();
}

async function purgeDlq() {
  if (!confirm('Purge every dead letter? This cannot be undone.')) return;
  try {
    say('dlq-result', `purged ${(await api('POST', '/api/dlq/purge')).purged}`);
  } catch (err) {
    say('dlq-result', err.message, true);
  }
  loadDlq();
}

async function loadStock() {
  try {
    const data = await api('GET', '/api/stock');
    $('stock').tBodies[0].replaceChildren(...(data.skus || []).map((s) =>
      el('tr', {id: `stock-${s.sku}`}, el('td', {}, s.sku), el('td', {}, s.available),
        el('td', {}, s.held), el('td', {}, s.committed))));
  } catch (err) {
    say('stock-result', err.message, true);
  }
}

async function setStock(e) {
  e.preventDefault();
  try {
    const r = await api('POST', '/api/stock', {sku: $('stock-sku').value,
      quantity: Number($('stock-qty').value)});
    say('stock-result', `${r.sku}: available ${r.available}`);
  } catch (err) {
    say('stock-result', err.message, true);
  }
  loadStock();
}

// ---- start -------------------------------------------------------------------------

$('fault-form').addEventListener('submit', (e) => { e.preventDefault(); setFaults($('fault-spec').value); });
$('fault-clear').addEventListener('click', () => setFaults('clear'));
$('place-form').addEventListener('submit', placeOrder);
$('stock-form').addEventListener('submit', setStock);
$('dlq-refresh').addEventListener('click', loadDlq);
$('dlq-purge').addEventListener('click', purgeDlq);
loadFleet();
loadStock();
loadDlq();
listen();
setInterval(loadFleet, 3000);
setInterval(loadStock, 5000);
setInterval(loadDlq, 10000);
