// participant.js - A saga participant written in JavaScript from docs/protocol.md alone.
//
// It joins a running fleet (shipping started with SAGA_GATES=interop) as the
// participant "interop" and checks the wire contract from the outside:
//   1. every service answers saga.ctl.<svc>.stats; the streams and the
//      durable consumers have the documented settings;
//   2. it places two orders (saga.cmd.order.place, one with a W3C traceparent
//      header) and decodes every event of their timelines from SAGA_EVENTS,
//      checking each envelope's rules and its trace context;
//   3. it vetoes the first (interop.vetoed) and sees it CANCELLED with reason
//      "vetoed" and compensated (payment.refunded, inventory.released);
//   4. it clears the gate for the second (interop.cleared) and sees it
//      CONFIRMED, and shipping.scheduled only after the clearance;
//   5. a message that is not an envelope is dead-lettered with the documented
//      headers.
// Exit status 0 when every check passed, 1 otherwise (the first failure is
// printed). Settings: SAGA_NATS_URL, SAGA_SCHEMAS (the .proto directory),
// INTEROP_STATE_DIR (where outgoing events are made durable before publishing).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const protobuf = require('protobufjs');
const { connect, consumerOpts, createInbox, headers } = require('nats');

const NATS_URL = process.env.SAGA_NATS_URL || 'nats://127.0.0.1:4222';
const SCHEMAS = process.env.SAGA_SCHEMAS || path.join(__dirname, '..', '..', 'schemas');
const STATE_DIR = process.env.INTEROP_STATE_DIR || fs.mkdtempSync('/tmp/saga-interop-');
const DEADLINE_MS = Number(process.env.INTEROP_DEADLINE_MS || 90000);

const PARTICIPANT = 'interop';
const SERVICES = ['order', 'payment', 'inventory', 'shipping', 'notification'];
const SKU = 'INTEROP-1';

// ---- the contract, as docs/protocol.md states it -------------------------

const RE_ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;
const RE_TYPE = /^[a-z0-9_]+\.[a-z0-9_]+$/;
const RE_ORDER_ID = /^[A-Za-z0-9_-]{1,64}$/;
const RE_PRODUCER = /^[a-z0-9_]{1,32}$/;
const RE_TRACE = /^[\x21-\x7e]{0,128}$/;
const TYPE_MAX = 64;
const PAYLOAD_MAX = 256 * 1024;
const ENVELOPE_MAX = PAYLOAD_MAX + 1024;
const HDR_MSG_ID = 'Nats-Msg-Id';
const HDR_ORDER_ID = 'Saga-Order-Id';
const HDR_TRACEPARENT = 'traceparent';
const PARTITIONS = 16;

// An order's partition, as docs/protocol.md defines it: FNV-1a (32-bit) of
// the order id's bytes, modulo 16. Events are stored on evt.<partition>.<type>.
function partitionOf(orderId) {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(orderId, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % PARTITIONS;
}
const eventSubject = (type, orderId) => `evt.${partitionOf(orderId)}.${type}`;

// W3C trace context (docs/protocol.md, "the envelope", field trace): every
// event's trace is a traceparent with the saga's trace id and a span id of
// its own; the span of the event it reacts to is its parent.
const RE_TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
function parseTraceparent(s) {
  const m = RE_TRACEPARENT.exec(s);
  if (!m || /^0+$/.test(m[1]) || /^0+$/.test(m[2])) return null;
  return { traceId: m[1], spanId: m[2], flags: m[3] };
}
function newSpanId() {
  for (;;) {
    const id = crypto.randomBytes(8).toString('hex');
    if (!/^0+$/.test(id)) return id;
  }
}
// The traceparent of an event emitted in reaction to cause: its trace, a new span.
function childTrace(cause) {
  const t = parseTraceparent(cause.env.trace);
  return `00-${t.traceId}-${newSpanId()}-${t.flags}`;
}
const DLQ_CAUSES = ['undecodable', 'rejected', 'forbidden', 'exhausted', 'park_expired',
  'unpublishable'];

// Event type -> payload message (docs/protocol.md, "Events").
const PAYLOADS = {
  'order.placed': 'OrderPlaced',
  'order.confirmed': 'OrderConfirmed',
  'order.cancelled': 'OrderCancelled',
  'payment.charged': 'PaymentCharged',
  'payment.declined': 'PaymentDeclined',
  'payment.refunded': 'PaymentRefunded',
  'inventory.reserved': 'InventoryReserved',
  'inventory.rejected': 'InventoryRejected',
  'inventory.committed': 'InventoryCommitted',
  'inventory.released': 'InventoryReleased',
  'shipping.scheduled': 'ShipmentScheduled',
  'shipping.failed': 'ShipmentFailed',
  'shipping.cancelled': 'ShipmentCancelled',
  'notification.sent': 'NotificationSent',
};

function payloadMessage(type) {
  if (PAYLOADS[type]) return PAYLOADS[type];
  const event = type.split('.')[1];
  if (event === 'vetoed') return 'ParticipantVetoed';
  if (event === 'cleared') return 'ParticipantCleared';
  return null;
}

// ---- small helpers -------------------------------------------------------

class CheckFailed extends Error {}

let checks = 0;
function check(cond, what) {
  checks++;
  if (!cond) throw new CheckFailed(what);
}

function log(msg) {
  process.stdout.write(`interop: ${msg}\n`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits until fn() returns a truthy value (polled), or fails naming what.
async function waitFor(what, fn, timeoutMs = DEADLINE_MS) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new CheckFailed(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

// A ULID: 48 bits of Unix milliseconds, then 80 random bits, as 26
// upper-case Crockford base32 digits.
function ulid(now = Date.now()) {
  let out = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[t % 32] + out;
    t = Math.floor(t / 32);
  }
  const rnd = crypto.randomBytes(10);
  let acc = 0n;
  for (const b of rnd) acc = (acc << 8n) | BigInt(b);
  let tail = '';
  for (let i = 0; i < 16; i++) {
    tail = CROCKFORD[Number(acc & 31n)] + tail;
    acc >>= 5n;
  }
  return out + tail;
}

function ulidTime(id) {
  let ms = 0;
  for (let i = 0; i < 10; i++) ms = ms * 32 + CROCKFORD.indexOf(id[i]);
  return ms;
}

// ---- the participant's durable outbox ------------------------------------
//
// An outgoing event is written (and fsync'd) with its event id and its
// encoded bytes before it is published; a retry after a crash republishes
// the same bytes with the same Nats-Msg-Id, and the broker drops the copy.

class Outbox {
  constructor(dir) {
    this.file = path.join(dir, 'interop-outbox.json');
    this.state = fs.existsSync(this.file)
      ? JSON.parse(fs.readFileSync(this.file, 'utf8'))
      : { sequence: 0, pending: {} };
  }

  save() {
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    fs.writeSync(fd, JSON.stringify(this.state));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, this.file);
  }

  // Builds, records and returns {id, subject, data}; nothing is sent yet.
  add(subject, id, data) {
    this.state.pending[id] = { subject, data: Buffer.from(data).toString('base64') };
    this.save();
    return { id, subject, data };
  }

  nextSequence() {
    this.state.sequence += 1;
    this.save();
    return this.state.sequence;
  }

  done(id) {
    delete this.state.pending[id];
    this.save();
  }
}

// ---- main ----------------------------------------------------------------

async function main() {
  // keepCase: the field names of the .proto files, as docs/protocol.md spells them.
  const root = new protobuf.Root();
  await root.load(['envelope.proto', 'events.proto', 'commands.proto']
    .map((f) => path.join(SCHEMAS, f)), { keepCase: true });
  const T = (name) => root.lookupType(`saga.v1.${name}`);
  const Envelope = T('Envelope');

  const nc = await connect({ servers: NATS_URL, name: PARTICIPANT });
  const js = nc.jetstream();
  const jsm = await nc.jetstreamManager();
  const outbox = new Outbox(STATE_DIR);

  const request = async (subject, data, timeout = 10000, hdrs = undefined) =>
    (await nc.request(subject, data, { timeout, headers: hdrs })).data;
  const requestJson = async (subject, text) =>
    JSON.parse(Buffer.from(await request(subject, Buffer.from(text))).toString('utf8'));

  // 1. Readiness and the control reply: every service answers its stats.
  const STAT_FIELDS = ['pid', 'received', 'processed', 'duplicates', 'retried', 'dead_lettered',
    'unknown', 'parked', 'unparked', 'park_expired', 'timers_fired', 'commands', 'published',
    'commits', 'pruned', 'faults', 'pending'];
  for (const svc of SERVICES) {
    const stats = await waitFor(`saga.ctl.${svc}.stats`, async () => {
      try {
        return await requestJson(`saga.ctl.${svc}.stats`, '');
      } catch (e) {
        return null;
      }
    });
    check(stats.service === svc, `stats of ${svc}: service is "${stats.service}"`);
    for (const f of STAT_FIELDS)
      check(Number.isInteger(stats[f]) && stats[f] >= 0, `stats of ${svc}: ${f} is a count`);
  }
  log('all five services answer saga.ctl.<svc>.stats');

  // Streams and consumers as documented.
  const evs = await jsm.streams.info('SAGA_EVENTS');
  check(JSON.stringify(evs.config.subjects) === '["evt.>"]', 'SAGA_EVENTS subjects are evt.>');
  check(evs.config.storage === 'file', 'SAGA_EVENTS is file storage');
  check(evs.config.duplicate_window === 120e9, 'SAGA_EVENTS duplicate window is 2 minutes');
  check(evs.config.max_age === 7 * 24 * 3600e9, 'SAGA_EVENTS max age is 7 days by default');
  const dlq = await jsm.streams.info('SAGA_DLQ');
  check(JSON.stringify(dlq.config.subjects) === '["dlq.>"]', 'SAGA_DLQ subjects are dlq.>');
  check(dlq.config.storage === 'file', 'SAGA_DLQ is file storage');
  check(dlq.config.max_age === 30 * 24 * 3600e9, 'SAGA_DLQ max age is 30 days');
  const consumers = [
    ['order_any_vetoed', 'evt.*.*.vetoed'],
    ['order_shipping_scheduled', 'evt.*.shipping.scheduled'],
    ['shipping_interop_cleared', 'evt.*.interop.cleared'],
    ['payment_order_placed', 'evt.*.order.placed'],
  ];
  // MaxAckPending: SAGA_MAX_ACK_PENDING (3584) shared equally by a participant's consumers.
  const all = await jsm.consumers.list('SAGA_EVENTS').next();
  const consumersOf = (svc) => all.filter((c) => c.name.startsWith(`${svc}_`)).length;
  for (const [name, filter] of consumers) {
    const ci = await jsm.consumers.info('SAGA_EVENTS', name);
    const share = Math.floor(3584 / consumersOf(name.split('_')[0]));
    check(ci.config.durable_name === name, `consumer ${name} is durable`);
    check(ci.config.filter_subject === filter, `consumer ${name} filters ${filter}`);
    check(ci.config.ack_policy === 'explicit', `consumer ${name} acks explicitly`);
    check(ci.config.deliver_policy === 'all', `consumer ${name} delivers all`);
    check(ci.config.max_ack_pending === share,
      `consumer ${name} MaxAckPending ${ci.config.max_ack_pending}, not ${share}`);
    check(ci.config.max_deliver === -1, `consumer ${name} has no MaxDeliver`);
    check(ci.config.ack_wait === 2e9, `consumer ${name} ack wait is SAGA_ACK_WAIT_MS (2000)`);
    check(ci.config.deliver_subject === `_saga.dlv.${name}`, `consumer ${name} push subject`);
  }
  log('streams and durable consumers have the documented settings');

  // 2. Observe the event stream: a plain ephemeral push consumer (an ordered
  // consumer with DeliverAll is refused by nats-server 2.9).
  const timeline = new Map(); // order id -> [{env, payload, seq, subject}]
  const opts = consumerOpts();
  opts.deliverAll();
  opts.ackNone();
  opts.deliverTo(createInbox());
  opts.filterSubject('evt.>');
  const sub = await js.subscribe('evt.>', opts);
  let observeError = null;
  // Step 6 publishes a message that is no envelope on purpose: not an event.
  const runId = ulid();
  const poisonOrder = `interop-poison-${runId}`;
  (async () => {
    for await (const m of sub) {
      if (m.headers && m.headers.get(HDR_ORDER_ID) === poisonOrder) continue;
      try {
        const ev = decodeEvent(m);
        if (!timeline.has(ev.env.order_id)) timeline.set(ev.env.order_id, []);
        timeline.get(ev.env.order_id).push(ev);
      } catch (e) {
        observeError = observeError || e;
      }
    }
  })();

  // Checks every envelope rule of one stored event and decodes its payload.
  function decodeEvent(m) {
    check(m.data.length >= 1 && m.data.length <= ENVELOPE_MAX, `${m.subject}: envelope size`);
    const env = Envelope.toObject(Envelope.decode(m.data), { longs: Number, defaults: true });
    const where = `${m.subject} (stream seq ${m.info.streamSequence})`;
    check(RE_ULID.test(env.event_id), `${where}: event_id is a ULID`);
    check(env.type.length <= TYPE_MAX && RE_TYPE.test(env.type), `${where}: type`);
    check(env.schema_version >= 1, `${where}: schema_version >= 1`);
    check(RE_ORDER_ID.test(env.order_id), `${where}: order_id`);
    check(env.causation_id === '' || RE_ULID.test(env.causation_id), `${where}: causation_id`);
    check(RE_PRODUCER.test(env.producer), `${where}: producer`);
    check(env.sequence >= 1, `${where}: sequence >= 1`);
    check(env.time_unix_ms > 0, `${where}: time_unix_ms > 0`);
    check(RE_TRACE.test(env.trace), `${where}: trace is visible ASCII, at most 128`);
    check(parseTraceparent(env.trace) !== null, `${where}: trace is a W3C traceparent`);
    check(m.headers && m.headers.get(HDR_TRACEPARENT) === env.trace,
      `${where}: the traceparent header is the envelope's trace`);
    check(env.payload.length <= PAYLOAD_MAX, `${where}: payload cap`);
    check(m.subject === eventSubject(env.type, env.order_id),
      `${where}: subject names the order's partition and the type`);
    check(m.headers && m.headers.get(HDR_ORDER_ID) === env.order_id,
      `${where}: Saga-Order-Id is the envelope's order id`);
    check(env.type.split('.')[0] === env.producer, `${where}: type starts with its producer`);
    const msgId = m.headers ? m.headers.get(HDR_MSG_ID) : '';
    check(msgId === env.event_id, `${where}: Nats-Msg-Id is the event id`);
    check(Math.abs(ulidTime(env.event_id) - env.time_unix_ms) < 60000,
      `${where}: the ULID's time is the event's time`);
    const pm = payloadMessage(env.type);
    check(pm !== null, `${where}: a known event type`);
    const payload = T(pm).toObject(T(pm).decode(env.payload), { longs: Number, defaults: true });
    return { env, payload, seq: m.info.streamSequence, subject: m.subject };
  }

  const events = (order) => {
    if (observeError) throw observeError;
    return timeline.get(order) || [];
  };
  const find = (order, type) => events(order).find((e) => e.env.type === type);
  const waitEvent = (order, type) => waitFor(`${type} of ${order}`, async () => find(order, type));

  // Stock for the test's SKU.
  const SetStock = T('SetStock');
  const StockReply = T('StockReply');
  const stock = StockReply.decode(await request('saga.cmd.inventory.stock.set',
    SetStock.encode({ sku: SKU, quantity: 100 }).finish()));
  check(stock.ok && stock.sku === SKU && Number(stock.available) === 100, 'stock.set answers');

  // 3. Place two orders.
  const PlaceOrder = T('PlaceOrder');
  const PlaceOrderReply = T('PlaceOrderReply');
  // A caller that traces sends its context in the request's traceparent
  // header; the saga's events continue its trace.
  async function place(key, traceparent) {
    const req = PlaceOrder.encode({
      idempotency_key: key,
      customer_id: 'interop-customer',
      items: [{ sku: SKU, quantity: 2, unit_cents: 1250 }],
      currency: 'EUR',
      ship_to: 'DE',
      deadline_ms: 120000,
    }).finish();
    const h = headers();
    if (traceparent) h.set(HDR_TRACEPARENT, traceparent);
    const rep = PlaceOrderReply.decode(await request('saga.cmd.order.place', req, 10000, h));
    check(rep.ok && RE_ORDER_ID.test(rep.order_id) && !rep.duplicate, `place ${key}: ${rep.error}`);
    // The same key again returns the same order, marked as a duplicate.
    const again = PlaceOrderReply.decode(await request('saga.cmd.order.place', req));
    check(again.ok && again.duplicate && again.order_id === rep.order_id, `place ${key} is idempotent`);
    return rep.order_id;
  }
  const clientTrace = crypto.randomBytes(16).toString('hex');
  const vetoOrder = await place(`interop-veto-${runId}`, `00-${clientTrace}-${newSpanId()}-01`);
  const clearOrder = await place(`interop-clear-${runId}`);
  log(`placed ${vetoOrder} (to veto) and ${clearOrder} (to clear)`);

  // Both are held by the gate: charged and reserved, but not shipped. The
  // second half of shipping's join is parked (its writes undone) until the
  // clearance arrives, so shipping counts two parked events.
  const queryOrder = (id) => requestJson('saga.q.order.order', id);
  const queryShipping = (id) => requestJson('saga.q.shipping.order', id);
  for (const id of [vetoOrder, clearOrder]) {
    await waitEvent(id, 'payment.charged');
    await waitEvent(id, 'inventory.reserved');
  }
  await waitFor('shipping to park both orders at the gate', async () =>
    (await requestJson('saga.ctl.shipping.stats', '')).parked >= 2);
  for (const id of [vetoOrder, clearOrder]) {
    const s = await queryShipping(id);
    check(s.service === 'shipping' && s.found === true && s.state === 'waiting',
      `shipping waits with ${id}`);
    check(!find(id, 'shipping.scheduled'), `${id}: no shipment before the clearance`);
    const o = await queryOrder(id);
    check(o.service === 'order' && o.found === true && o.state === 'PENDING', `${id} is PENDING`);
  }
  log('shipping holds both orders at the gate "interop"');

  // Publishes one of our events, effectively once: sequence and event id are
  // made durable first, the envelope is encoded once, and the publish
  // carries Nats-Msg-Id = event id, so a retry is a duplicate the broker drops.
  async function emit(type, orderId, cause, payloadType, payload) {
    const id = ulid();
    const trace = childTrace(cause);
    const env = Envelope.encode({
      event_id: id,
      type,
      schema_version: 1,
      order_id: orderId,
      causation_id: cause.env.event_id,
      producer: PARTICIPANT,
      sequence: outbox.nextSequence(),
      time_unix_ms: ulidTime(id),
      trace,
      payload: T(payloadType).encode(payload).finish(),
    }).finish();
    const out = outbox.add(eventSubject(type, orderId), id, env);
    const h = headers();
    h.set(HDR_MSG_ID, out.id);
    h.set(HDR_ORDER_ID, orderId);
    h.set(HDR_TRACEPARENT, trace);
    const ack = await js.publish(out.subject, out.data, { headers: h });
    check(ack.stream === 'SAGA_EVENTS' && !ack.duplicate, `${type}: stored once`);
    // A retry (as after a crash before outbox.done) is dropped by the broker.
    const retry = await js.publish(out.subject, out.data, { headers: h });
    check(retry.duplicate && retry.seq === ack.seq, `${type}: a retry is a duplicate`);
    outbox.done(out.id);
    return { id, seq: ack.seq };
  }

  // 4. Veto the first order.
  const placedV = await waitEvent(vetoOrder, 'order.placed');
  const veto = await emit(`${PARTICIPANT}.vetoed`, vetoOrder, placedV, 'ParticipantVetoed',
    { participant: PARTICIPANT, reason: 'interop test veto' });
  const cancelled = await waitEvent(vetoOrder, 'order.cancelled');
  check(cancelled.env.causation_id === veto.id, 'order.cancelled is caused by the veto');
  check(cancelled.payload.reason === 'vetoed', 'cancelled with reason "vetoed"');
  check(cancelled.payload.failed_step === PARTICIPANT, 'failed_step names the participant');
  check(cancelled.payload.detail === 'interop test veto', 'detail carries the veto reason');
  const ov = await queryOrder(vetoOrder);
  check(ov.state === 'CANCELLED' && ov.reason === 'vetoed' && ov.failed_step === PARTICIPANT,
    `query: ${vetoOrder} CANCELLED by ${PARTICIPANT}`);
  const refunded = await waitEvent(vetoOrder, 'payment.refunded');
  const released = await waitEvent(vetoOrder, 'inventory.released');
  check(refunded.env.causation_id === cancelled.env.event_id, 'the refund follows the cancel');
  check(released.env.causation_id === cancelled.env.event_id, 'the release follows the cancel');
  check(Number(refunded.payload.amount_cents) === 2500, 'the whole charge is refunded');
  await waitFor('payment shows the refund', async () =>
    (await requestJson('saga.q.payment.order', vetoOrder)).state === 'refunded');
  await waitFor('inventory shows the release', async () =>
    (await requestJson('saga.q.inventory.order', vetoOrder)).state === 'released');
  check(!find(vetoOrder, 'shipping.scheduled'), 'a vetoed order is never shipped');
  log(`vetoed ${vetoOrder}: CANCELLED (vetoed by interop), refunded and released`);

  // 5. Clear the gate for the second order.
  const placedC = await waitEvent(clearOrder, 'order.placed');
  const clear = await emit(`${PARTICIPANT}.cleared`, clearOrder, placedC, 'ParticipantCleared',
    { participant: PARTICIPANT });
  const scheduled = await waitEvent(clearOrder, 'shipping.scheduled');
  const confirmed = await waitEvent(clearOrder, 'order.confirmed');
  check(scheduled.seq > clear.seq && confirmed.seq > scheduled.seq,
    'shipping.scheduled and order.confirmed come after the clearance');
  check(confirmed.env.causation_id === scheduled.env.event_id, 'confirmed by the shipment');
  check(confirmed.payload.shipment_id === scheduled.payload.shipment_id, 'shipment ids agree');
  const oc = await queryOrder(clearOrder);
  check(oc.state === 'CONFIRMED' && oc.shipment_id === scheduled.payload.shipment_id,
    `query: ${clearOrder} CONFIRMED`);
  await waitEvent(clearOrder, 'inventory.committed');
  log(`cleared ${clearOrder}: CONFIRMED after the clearance (shipment ${oc.shipment_id})`);

  // Causation: every event but order.placed names an earlier event of its
  // saga. Trace context: all carry the trace id order.placed started (the
  // caller's, for the order placed with a traceparent), each its own span.
  for (const id of [vetoOrder, clearOrder]) {
    const tl = events(id);
    const ids = new Set(tl.map((e) => e.env.event_id));
    const traceId = parseTraceparent(tl[0].env.trace).traceId;
    const spans = new Set();
    if (id === vetoOrder) check(traceId === clientTrace, `${id}: the caller's trace id`);
    for (const e of tl) {
      if (e.env.type === 'order.placed')
        check(e.env.causation_id === '', `${id}: order.placed has no cause`);
      else
        check(ids.has(e.env.causation_id), `${id}: ${e.env.type} names a cause in its saga`);
      const t = parseTraceparent(e.env.trace);
      check(t.traceId === traceId, `${id}: ${e.env.type} is in the order's trace`);
      check(!spans.has(t.spanId), `${id}: ${e.env.type} has a span of its own`);
      spans.add(t.spanId);
    }
    const vetoes = tl.filter((e) => e.env.type === `${PARTICIPANT}.vetoed`);
    check(vetoes.length <= 1, `${id}: the republished event is stored once`);
  }

  // 6. A message that is no envelope is dead-lettered by its consumer.
  const poisonSubject = eventSubject(`${PARTICIPANT}.vetoed`, poisonOrder);
  const ph = headers();
  ph.set(HDR_MSG_ID, ulid());
  ph.set(HDR_ORDER_ID, poisonOrder);
  await js.publish(poisonSubject, Buffer.from('not an envelope'), { headers: ph });
  const dlqOpts = consumerOpts();
  dlqOpts.deliverAll();
  dlqOpts.ackNone();
  dlqOpts.deliverTo(createInbox());
  dlqOpts.filterSubject('dlq.order');
  const dlqSub = await js.subscribe('dlq.order', dlqOpts);
  const deadLetters = [];
  (async () => {
    for await (const m of dlqSub) deadLetters.push(m);
  })();
  const dead = await waitFor('the dead letter of the poison message', async () =>
    deadLetters.find((m) => m.headers && m.headers.get('Saga-Subject') === poisonSubject));
  check(Buffer.from(dead.data).toString() === 'not an envelope', 'the dead letter keeps the body');
  check(dead.headers.get('Saga-Service') === 'order', 'Saga-Service names the consumer');
  check(/^[0-9]+$/.test(dead.headers.get('Saga-Deliveries')), 'Saga-Deliveries is a count');
  check(dead.headers.get('Saga-Reason') !== '', 'Saga-Reason says why');
  const cause = dead.headers.get('Saga-Cause');
  check(cause === '' || cause === 'undecodable', `Saga-Cause is "undecodable" (got "${cause}")`);
  check(cause === '' || DLQ_CAUSES.includes(cause), 'Saga-Cause is a documented cause');
  log('a message that is no envelope is dead-lettered on dlq.order with the documented headers');

  if (observeError) throw observeError;
  sub.unsubscribe();
  dlqSub.unsubscribe();
  await nc.drain();
  log(`PASS: ${checks} checks`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`interop: FAIL: ${e instanceof CheckFailed ? e.message : e.stack}\n`);
    process.exit(1);
  },
);
