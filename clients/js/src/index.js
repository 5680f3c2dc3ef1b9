// parley-client: Parley's wire protocol v1 for browsers and Node: frames, batches, dedupe, ordering,
// reconnects with recovery by `since`, heartbeats. No dependencies; types in ../index.d.ts.
//
// Everything here is free of the DOM so it runs under `node --test` with fake sockets and a fake clock;
// the web app (web/app.js) only renders what a ParleyClient holds and calls its methods, importing
// web/parley-client.js, a copy of this file kept identical by tests/unit/test_web_protocol_sync.py
// (`make web-client` refreshes it). docs/protocol.md and docs/asyncapi.yaml are the contract.

export const LIMITS = Object.freeze({
  textMax: 4000, // code points, as the server counts them
  textMaxBytes: 16000, // UTF-8 bytes inside the JSON string, escapes included, as the server counts them
  clientMsgIdMax: 64,
  historyPage: 50,
  joinWithoutSince: 50,
  threadPage: 50,
});

const CHANNEL_NAME = /^[a-z0-9_-]{1,80}$/;
const USER_ID = /^[^\s#]{1,128}$/;

export const REPLY_TYPES = new Set([
  'joined', 'left', 'ack', 'history', 'presence', 'heartbeat', 'channel_created', 'invited', 'channels',
  'reacted', 'edited', 'deleted', 'thread', 'dm_opened', 'marked_read', 'error',
]);

export const DEFAULTS = Object.freeze({
  // API Gateway closes a connection idle for 10 minutes and Parley drops one without a heartbeat for
  // 10 minutes: one every 4 to 5 minutes (spread so pages do not beat in step) keeps an open page
  // connected with two chances per window, at a fifth of the cost of one a minute (docs/scaling.md).
  heartbeatMs: 240_000,
  heartbeatJitterMs: 60_000,
  // No frame at all for this long after a heartbeat: the socket is half-open (laptop slept, NAT
  // forgot us). Closing it starts a reconnect instead of waiting for TCP to notice.
  livenessTimeoutMs: 20_000,
  backoffBaseMs: 500,
  backoffCapMs: 30_000,
  typingShowMs: 3_000, // the server sends at most one typing event per user and channel every 2 s
  typingSendEveryMs: 1_000,
  ackTimeoutMs: 15_000,
  seenEventIds: 5_000,
});

// ---- frames -------------------------------------------------------------------------------------------

/** Length as the server counts it: Unicode code points (an emoji is 1, not 2 as in String.length). */
export function codePointLength(text) {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

const utf8 = new TextEncoder();

/** Bytes as the server counts them: the text's UTF-8 inside a JSON string, escapes included
 * (JSON.stringify escapes exactly what the server's encoder does: quote, backslash, controls). */
export function textBytes(text) {
  return utf8.encode(JSON.stringify(text)).length - 2;
}

/** A human reason why this text cannot be sent, or null. */
export function textProblem(text) {
  if (text.trim() === '') return 'Type a message first.';
  const length = codePointLength(text);
  if (length > LIMITS.textMax) {
    return `Too long: ${length} characters, the limit is ${LIMITS.textMax}.`;
  }
  const bytes = textBytes(text);
  if (bytes > LIMITS.textMaxBytes) {
    return `Too long: ${bytes} bytes, the limit is ${LIMITS.textMaxBytes}.`;
  }
  return null;
}

export function channelNameProblem(name) {
  return CHANNEL_NAME.test(name)
    ? null
    : 'Channel names are 1–80 characters of a–z, 0–9, _ and -.';
}

// Control, format (bidi) and separator characters: the server refuses them in ids and names (parley/names.py).
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

export function userIdProblem(user) {
  if (!USER_ID.test(user)) return 'A user id is 1–128 characters, without spaces or #.';
  return INVISIBLE.test(user) ? 'A user id has no control, format or bidi characters.' : null;
}

// Who wrote a message, as shown: the display name and, when it is not the id itself, the user id beside it.
// `name` is whatever the token's minter chose and is not unique, so "Alice" cannot pass for @alice.
export function authorParts(user) {
  const id = user?.id || '?';
  const name = user?.name || id;
  return { name, id: name === id ? null : `@${id}` };
}

export function encode(frame) {
  return JSON.stringify(frame);
}

/**
 * Every frame one WebSocket message holds, in order: a `batch` is unpacked into its events. Anything
 * that is not a JSON object with a `type` (API Gateway's own `{"message": "Forbidden"}` answers, say)
 * becomes a `gateway` frame, so a caller never has to guess.
 */
export function decode(raw) {
  let frame;
  try {
    frame = JSON.parse(raw);
  } catch {
    return [{ type: 'gateway', message: String(raw) }];
  }
  if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
    return [{ type: 'gateway', message: String(raw) }];
  }
  if (frame.type === 'batch') {
    return Array.isArray(frame.events) ? frame.events.filter((e) => e && typeof e === 'object') : [];
  }
  if (typeof frame.type !== 'string') return [{ type: 'gateway', ...frame }];
  return [frame];
}

export function isReply(frame) {
  return REPLY_TYPES.has(frame.type);
}

/** A fresh clientMsgId; getRandomValues works on plain http pages too (randomUUID needs a secure one). */
export function newClientMsgId(cryptoImpl = globalThis.crypto) {
  const bytes = new Uint8Array(12);
  cryptoImpl.getRandomValues(bytes);
  return 'c-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// ---- backoff ------------------------------------------------------------------------------------------

/**
 * Delay before reconnect attempt `attempt` (1, 2, ...): exponential, capped, with "equal jitter" (half
 * fixed, half random), so a server restart does not see every page come back in the same millisecond
 * and no page retries in a tight loop.
 */
export function backoffDelay(attempt, { baseMs = DEFAULTS.backoffBaseMs, capMs = DEFAULTS.backoffCapMs,
  random = Math.random } = {}) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

// ---- state pieces -------------------------------------------------------------------------------------

/** A bounded set of ids already handled: events are delivered at least once. */
export class SeenIds {
  constructor(max = DEFAULTS.seenEventIds) {
    this.max = max;
    this.ids = new Set();
  }

  /** True the first time an id is seen. */
  add(id) {
    if (id === undefined || id === null) return true;
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value);
    return true;
  }
}

const THREAD_FIELDS = ['replyCount', 'lastReplyAt', 'threadVersion'];

/**
 * Two states of one message, merged: its own fields from the one with the higher `version` (edits and
 * the delete), its thread summary from the one with the higher `threadVersion`, the other filling in
 * what one lacks (a `message_deleted` carries no author). Events come at least once and out of order,
 * so whichever arrives last, the newest state wins; a tombstone keeps no text.
 */
export function mergeMessage(held, incoming) {
  const newer = (incoming.version || 0) > (held.version || 0);
  const merged = newer ? { ...held, ...incoming } : { ...incoming, ...held };
  const thread = (incoming.threadVersion || 0) > (held.threadVersion || 0) ? incoming : held;
  for (const key of THREAD_FIELDS) {
    if (thread[key] !== undefined) merged[key] = thread[key];
  }
  if (merged.deleted) merged.text = '';
  delete merged.type;
  return merged;
}

/** One channel's messages: unique by id, ordered by id, plus own messages still waiting for an ack. */
export class Timeline {
  constructor() {
    this.byId = new Map();
    this.ids = []; // sorted: ids are 17-digit strings, so string order is time order
    this.pending = new Map(); // clientMsgId -> {clientMsgId, text, user, state, error}
    this.hasMore = false; // older messages exist on the server
    this.summaries = new Map(); // thread summaries of parents not held yet (thread_updated came first)
  }

  /** Adds a message unless its id is known; true when it is new. Settles own pending by clientMsgId.
   * A known one is merged (mergeMessage): a newer state from an edit, a delete or a later read wins. */
  add(message) {
    if (message.clientMsgId) this.pending.delete(message.clientMsgId);
    const held = this.byId.get(message.id);
    if (held) {
      this.byId.set(message.id, mergeMessage(held, message));
      return false;
    }
    const summary = this.summaries.get(message.id);
    this.summaries.delete(message.id);
    this.byId.set(message.id, mergeMessage(summary || { id: message.id }, message));
    const ids = this.ids;
    if (ids.length === 0 || ids[ids.length - 1] < message.id) {
      ids.push(message.id);
    } else {
      let lo = 0;
      let hi = ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ids[mid] < message.id) lo = mid + 1; else hi = mid;
      }
      ids.splice(lo, 0, message.id);
    }
    return true;
  }

  addPending(entry) {
    this.pending.set(entry.clientMsgId, { state: 'pending', error: null, ...entry });
  }

  /** The server stored it: show it as sent at once, even if its `message` event comes later. */
  ack(clientMsgId, id, ts, channel) {
    const entry = this.pending.get(clientMsgId);
    if (!entry) return false;
    const message = { id, ts, channel, user: entry.user, text: entry.text, clientMsgId };
    if (entry.threadId) message.threadId = entry.threadId;
    this.add(message);
    return true;
  }

  fail(clientMsgId, error) {
    const entry = this.pending.get(clientMsgId);
    if (entry) Object.assign(entry, { state: 'failed', error });
  }

  /** A newer state of a message (`message_updated`, `message_deleted`); true when it changed what is held.
   * One older than every message held is left out: `history` shows it as it is when paged back to (held,
   * it would make the oldest id jump back, and paging on from there would skip what lies between). */
  change(message) {
    const held = this.byId.get(message.id);
    if (!held && this.ids.length && message.id < this.ids[0]) return false;
    if (!held) return this.add(message);
    const merged = mergeMessage(held, message);
    this.byId.set(message.id, merged);
    return merged.version !== held.version;
  }

  /** A thread's summary (`thread_updated`); kept for later when its parent is not held. */
  summarize(event) {
    const summary = Object.fromEntries(THREAD_FIELDS.map((k) => [k, event[k]]));
    const held = this.byId.get(event.id);
    if (!held) {
      const kept = this.summaries.get(event.id);
      if (!kept || kept.threadVersion < summary.threadVersion) this.summaries.set(event.id, { id: event.id, ...summary });
      return false;
    }
    const merged = mergeMessage(held, { id: event.id, ...summary });
    this.byId.set(event.id, merged);
    return merged.threadVersion !== held.threadVersion;
  }

  get(id) {
    return this.byId.get(id);
  }

  get lastId() {
    return this.ids.length ? this.ids[this.ids.length - 1] : null;
  }

  get firstId() {
    return this.ids.length ? this.ids[0] : null;
  }

  messages() {
    return this.ids.map((id) => this.byId.get(id));
  }

  pendingEntries() {
    return [...this.pending.values()];
  }
}

/**
 * Who is in one channel: the `joined` list (and, in a large channel, the `presence` pages after it),
 * then `presence_diff` joins and leaves.
 */
export class Presence {
  constructor() {
    this.users = new Map();
    this.departed = null; // while paging: who left since, so an older page cannot bring them back
  }

  reset(list) {
    this.users = new Map((list || []).map((u) => [u.id, u.name || u.id]));
    this.departed = null;
  }

  beginPaging() {
    this.departed = new Set();
  }

  endPaging() {
    this.departed = null;
  }

  /** Add a `presence` page: it may have been read before a leave that was already applied. */
  merge(list) {
    for (const u of list || []) {
      if (!this.departed || !this.departed.has(u.id)) this.users.set(u.id, u.name || u.id);
    }
  }

  apply(diff) {
    for (const u of diff.joins || []) {
      this.users.set(u.id, u.name || u.id);
      if (this.departed) this.departed.delete(u.id);
    }
    for (const u of diff.leaves || []) {
      this.users.delete(u.id);
      if (this.departed) this.departed.add(u.id);
    }
  }

  list() {
    return [...this.users].map(([id, name]) => ({ id, name }))
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }
}

/** "X is typing…": there is no stop event, so each typing event shows its user for a few seconds. */
export class Typing {
  constructor(showMs = DEFAULTS.typingShowMs) {
    this.showMs = showMs;
    this.until = new Map(); // userId -> {name, until}
  }

  saw(user, now) {
    this.until.set(user.id, { name: user.name || user.id, until: now + this.showMs });
  }

  stopped(userId) {
    this.until.delete(userId);
  }

  names(now) {
    const names = [];
    for (const [id, entry] of this.until) {
      if (entry.until <= now) this.until.delete(id); else names.push(entry.name);
    }
    return names.sort();
  }

  /** When the indicator next changes by itself, or null. */
  nextExpiry() {
    let next = null;
    for (const { until } of this.until.values()) if (next === null || until < next) next = until;
    return next;
  }
}

export function typingText(names) {
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return 'Several people are typing…';
}

/** The channel listing's order: by name, then id (a public and a private channel may share a name). */
function byNameThenId(a, b) {
  const [x, y] = [`${a.name}\u0000${a.id}`, `${b.name}\u0000${b.id}`];
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * The reactions on one channel's messages, converging whatever order (and however often) the events
 * come: per message and name, the count with the highest version wins, and so does `me` among the
 * changes made by you (docs/protocol.md, the `reaction` event). A `joined` or `history` message is a
 * state at its `reactionsVersion` for every name, names it does not list at 0.
 */
export class Reactions {
  constructor() {
    this.byMessage = new Map(); // messageId -> Map(name -> {count, version, me, meVersion})
  }

  entry(messageId, name) {
    let names = this.byMessage.get(messageId);
    if (!names) this.byMessage.set(messageId, (names = new Map()));
    let entry = names.get(name);
    if (!entry) names.set(name, (entry = { count: 0, version: 0, me: false, meVersion: 0 }));
    return entry;
  }

  /** A message of `joined` or `history`; true when it changed what is shown. */
  snapshot(message) {
    const version = message.reactionsVersion;
    if (!Number.isInteger(version)) return false;
    const listed = new Map((message.reactions || []).map((r) => [r.name, r]));
    const names = new Set([...listed.keys(), ...(this.byMessage.get(message.id)?.keys() ?? [])]);
    let changed = false;
    for (const name of names) {
      const entry = this.entry(message.id, name);
      const shown = listed.get(name);
      if (version > entry.version) {
        entry.count = shown ? shown.count : 0;
        entry.version = version;
        changed = true;
      }
      if (version > entry.meVersion) {
        entry.me = Boolean(shown && shown.me);
        entry.meVersion = version;
        changed = true;
      }
    }
    return changed;
  }

  /** A `reaction` event; `meId` is your user id. True when it changed what is shown. */
  apply(event, meId) {
    const entry = this.entry(event.messageId, event.name);
    let changed = false;
    if (event.version > entry.version) {
      Object.assign(entry, { count: event.count, version: event.version });
      changed = true;
    }
    if (event.user && event.user.id === meId && event.version > entry.meVersion) {
      Object.assign(entry, { me: Boolean(event.added), meVersion: event.version });
      changed = true;
    }
    return changed;
  }

  /** `[{name, count, me}]` of a message, names with a count, in the order they were first seen. */
  list(messageId) {
    const names = this.byMessage.get(messageId);
    if (!names) return [];
    return [...names].filter(([, e]) => e.count > 0).map(([name, e]) => ({ name, count: e.count, me: e.me }));
  }

  /** Whether you reacted with `name` (what a click on its chip toggles). */
  mine(messageId, name) {
    return Boolean(this.byMessage.get(messageId)?.get(name)?.me);
  }
}

/** A short name (1 to 32 of a-z 0-9 _ + -) or one emoji: the server checks the emoji rule exactly. */
const REACTION_SHORT_NAME = /^[a-z0-9_+-]{1,32}$/;

/** Why `name` cannot be a reaction, or null (a loose check of the emoji half: the server decides). */
export function reactionNameProblem(name) {
  if (typeof name !== 'string' || name === '') return 'A reaction needs a name.';
  if (REACTION_SHORT_NAME.test(name)) return null;
  if (/^\p{Extended_Pictographic}|^\p{Regional_Indicator}|\u20e3/u.test(name) && utf8.encode(name).length <= 64) {
    return null;
  }
  return 'A reaction is a short name (a-z, 0-9, _ + -) or one emoji.';
}

/** Per-channel state the UI shows. `name` is the channel's id, what frames address it by: a public
 * channel's name, or `name.<suffix>` for a private one (its display name: `client.channelName(id)`). */
export class ChannelState {
  constructor(name) {
    this.name = name;
    this.timeline = new Timeline();
    this.presence = new Presence();
    this.typing = new Typing();
    this.reactions = new Reactions();
    this.subscribed = false; // the user wants this channel joined (kept across reconnects)
    this.ready = false; // `joined` arrived on the current socket
    this.loadingOlder = false; // one history request at a time: replies carry no request id
    this.gap = null; // {since, before} while paging back over messages missed during a long outage
    // Reading the rest of a large channel's presence, one `presence` request at a time (replies carry
    // no request id: with one in flight, the next `presence` reply for this channel answers it).
    this.presenceInFlight = false;
    this.presenceStale = false; // the reply in flight belongs to an earlier `joined` (or a left channel)
    this.presenceQueued = null; // the cursor to ask for once that stale reply is in
    // Others' messages (and those of them that mention you) that arrived live since the listing's
    // counts (`channels`, `marked_read`, `read`) were last taken: a badge is the listing's count plus these.
    this.unread = 0;
    this.mentions = 0;
    this.threads = new Map(); // parent id -> ThreadState, for the threads opened with `thread`
  }

  /** The thread of parent `id` as far as it was read (`client.thread` reads it). */
  thread(id) {
    let thread = this.threads.get(id);
    if (!thread) {
      thread = new ThreadState(id);
      this.threads.set(id, thread);
    }
    return thread;
  }
}

/** One thread: its replies (a Timeline of their own: they are read apart from the channel's pages). */
export class ThreadState {
  constructor(id) {
    this.id = id;
    this.replies = new Timeline();
    this.next = null; // the cursor of the following page, while more replies are on the server
    this.loading = false;
    this.loaded = false; // a first page arrived
  }
}

// ---- the client ---------------------------------------------------------------------------------------

const realEnv = () => ({
  WebSocket: globalThis.WebSocket,
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (t) => globalThis.clearTimeout(t),
  now: () => Date.now(),
  random: Math.random,
  crypto: globalThis.crypto,
});

/**
 * One signed-in user's connection: the reconnect state machine, channels, outbox and heartbeats.
 *
 * status: 'idle' → 'connecting' → 'open' → (socket lost) → 'waiting' (backoff) → 'connecting' → ...;
 * stop() → 'stopped'. Listeners get `(kind, detail)` with kind in status, channels, channel, messages,
 * presence, typing, reactions, notice, and frame (`detail.frame`: each reply or event as received).
 */
export class ParleyClient {
  constructor({ url, token, options = {}, env = {} }) {
    this.url = url;
    this.tokenSource = typeof token === 'function' ? token : async () => token;
    this.options = { ...DEFAULTS, ...options };
    this.env = { ...realEnv(), ...env };
    if (typeof this.env.WebSocket !== 'function') {
      throw new TypeError('ParleyClient needs a WebSocket class: pass env.WebSocket (Node 20 has none built in)');
    }
    this.status = 'idle';
    this.attempt = 0; // failed attempts since the last open socket
    this.retryAt = null;
    this.everOpened = false;
    this.me = null; // {id, name} from the token
    this.channels = new Map(); // name -> ChannelState
    this.directory = []; // the `channels` reply: [{id, name, private, member}]
    this.outbox = []; // own messages not yet sent on this socket, oldest first
    this.inFlight = null; // the one message sent and not yet answered (errors carry no clientMsgId)
    this.holdUntil = 0; // no message goes out before this time (after a rate_limited answer)
    this.seen = new SeenIds(this.options.seenEventIds);
    this.listeners = new Set();
    this.ws = null;
    this.timers = {};
    this.lastTypingSent = new Map();
    this.pendingJoins = new Set();
    this.connectionCount = 0;
    this.pendingEdits = new Map(); // messageId -> text sent with `edit`, until `edited` answers
  }

  on(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(kind, detail = {}) {
    for (const listener of this.listeners) listener(kind, detail);
  }

  channel(name) {
    let state = this.channels.get(name);
    if (!state) {
      state = new ChannelState(name);
      this.channels.set(name, state);
    }
    return state;
  }

  // ---- connection life --------------------------------------------------------------------------------

  start() {
    if (this.status === 'idle' || this.status === 'stopped') this.connect();
  }

  stop() {
    this.setStatus('stopped');
    this.clearTimer('retry');
    this.clearTimer('heartbeat');
    this.clearTimer('liveness');
    this.clearTimer('ack');
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'bye');
  }

  /** Skip the backoff wait (the browser says the network is back, or the user asked). */
  reconnectNow() {
    if (this.status === 'waiting') {
      this.clearTimer('retry');
      this.connect();
    }
  }

  setStatus(status) {
    this.status = status;
    this.emit('status', { status, attempt: this.attempt, retryAt: this.retryAt });
  }

  async connect() {
    this.retryAt = null;
    this.setStatus('connecting');
    let token;
    try {
      token = await this.tokenSource();
    } catch (err) {
      this.emit('notice', { level: 'error', text: `Could not get a token: ${err.message || err}`, connection: true });
      this.scheduleRetry();
      return;
    }
    if (this.status !== 'connecting') return; // stopped meanwhile
    this.me = userFromToken(token) || this.me;
    const sep = this.url.includes('?') ? '&' : '?';
    let ws;
    try {
      ws = new this.env.WebSocket(`${this.url}${sep}token=${encodeURIComponent(token)}`);
    } catch (err) {
      this.emit('notice', { level: 'error', text: `Bad WebSocket URL: ${err.message || err}`, connection: true });
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.opened(ws);
    ws.onmessage = (event) => this.received(ws, event.data);
    // A refused handshake (401, 403, 429) and a dropped network look the same to a browser: a close.
    ws.onclose = (event) => this.closed(ws, event);
    ws.onerror = () => {};
  }

  opened(ws) {
    if (ws !== this.ws) return;
    this.attempt = 0;
    this.everOpened = true;
    this.connectionCount += 1;
    this.setStatus('open');
    this.send({ action: 'channels' });
    for (const state of this.channels.values()) {
      state.ready = false;
      if (state.subscribed) this.sendJoin(state);
    }
    this.armHeartbeat();
    this.pump();
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.clearTimer('heartbeat');
    this.clearTimer('liveness');
    this.clearTimer('ack');
    for (const state of this.channels.values()) {
      state.ready = false;
      state.loadingOlder = false;
      state.gap = null; // the next `joined` with `since` starts over
      this.stopPresencePaging(state); // and the next `joined` lists presence afresh
    }
    this.pendingJoins.clear();
    if (this.inFlight) {
      // Not acked: send it again on the next socket with the same clientMsgId (the server dedupes).
      this.outbox.unshift(this.inFlight);
      this.inFlight = null;
    }
    if (this.status === 'stopped') return;
    this.emit('notice', { level: 'info', text: closeText(event), code: event.code, connection: true });
    this.scheduleRetry();
  }

  scheduleRetry() {
    if (this.status === 'stopped') return;
    this.attempt += 1;
    const delay = backoffDelay(this.attempt, {
      baseMs: this.options.backoffBaseMs,
      capMs: this.options.backoffCapMs,
      random: this.env.random,
    });
    this.retryAt = this.env.now() + delay;
    this.setStatus('waiting');
    this.setTimer('retry', delay, () => this.connect());
  }

  /** Close the socket as if the network dropped it (tests, and a stuck liveness check). */
  dropSocket(code = 4000, reason = 'dropped by the client') {
    const ws = this.ws;
    if (!ws) return;
    ws.close(code, reason);
    // Some socket implementations never report a close on a dead network: do not wait for it.
    this.closed(ws, { code, reason, wasClean: false });
  }

  // ---- timers -----------------------------------------------------------------------------------------

  setTimer(name, ms, fn) {
    this.clearTimer(name);
    this.timers[name] = this.env.setTimeout(() => {
      delete this.timers[name];
      fn();
    }, ms);
  }

  clearTimer(name) {
    if (this.timers[name] !== undefined) {
      this.env.clearTimeout(this.timers[name]);
      delete this.timers[name];
    }
  }

  armHeartbeat() {
    const jitter = this.options.heartbeatJitterMs;
    const every = this.options.heartbeatMs + (jitter ? Math.round(this.env.random() * jitter) : 0);
    this.setTimer('heartbeat', every, () => {
      if (this.status !== 'open') return;
      this.send({ action: 'heartbeat' });
      this.setTimer('liveness', this.options.livenessTimeoutMs, () => this.dropSocket(4001, 'no reply'));
      this.armHeartbeat();
    });
  }

  // ---- sending ----------------------------------------------------------------------------------------

  send(frame) {
    if (!this.ws || this.status !== 'open') return false;
    this.ws.send(encode(frame));
    return true;
  }

  sendJoin(state) {
    const frame = { action: 'join', channel: state.name };
    if (state.timeline.lastId) frame.since = state.timeline.lastId;
    this.pendingJoins.add(state.name);
    this.send(frame);
  }

  join(name) {
    const state = this.channel(name);
    state.subscribed = true;
    state.unread = 0;
    state.mentions = 0;
    if (this.status === 'open' && !state.ready) this.sendJoin(state);
    this.emit('channel', { channel: name });
    return state;
  }

  leave(name) {
    const state = this.channel(name);
    this.dropQueued(name, `Not sent: you left #${name}.`);
    state.subscribed = false;
    state.ready = false;
    state.presence.reset([]);
    if (state.presenceInFlight) Object.assign(state, { presenceStale: true, presenceQueued: null });
    this.send({ action: 'leave', channel: name });
    this.emit('channel', { channel: name });
  }

  refreshChannels() {
    return this.send({ action: 'channels' });
  }

  /** A page of the channel list: a long list comes in pages, `next` naming where the following one
   * starts. Pages are merged by id (a refresh while paging may repeat some; a public and a private
   * channel may share a name, never an id) and shown once complete. */
  onChannels(frame) {
    const pages = this.directoryPages || new Map();
    for (const channel of frame.channels || []) pages.set(channel.id, channel);
    if (frame.next) {
      this.directoryPages = pages;
      this.send({ action: 'channels', after: frame.next });
      return undefined;
    }
    this.directoryPages = null;
    this.directory = [...pages.values()].sort(byNameThenId);
    // The server's counts now stand for what came live before them (counts are eventual: a message
    // counted a moment after this listing is missed by the badge until the next one).
    for (const entry of this.directory) {
      const state = entry.unread !== undefined && this.channels.get(entry.id);
      if (state) Object.assign(state, { unread: 0, mentions: 0 });
    }
    return this.emit('channels', {});
  }

  /** What to show for a channel id: its name from the listing (a private id carries a suffix). */
  channelName(id) {
    const entry = this.directory.find((c) => c.id === id);
    return entry ? entry.name : id;
  }

  createChannel(name, isPrivate) {
    return this.send({ action: 'create_channel', name, private: Boolean(isPrivate) });
  }

  invite(channel, user) {
    return this.send({ action: 'invite', channel, user });
  }

  /** Open (or find) the direct message of you and `users`: one per set of members. */
  openDm(users) {
    return this.send({ action: 'open_dm', users: [...users] });
  }

  /** Move your read mark in a channel to `messageId`; the server never moves it back. */
  markRead(channel, messageId) {
    return this.send({ action: 'mark_read', channel, messageId });
  }

  /** A `marked_read` reply or a `read` event (another tab moved the mark): update the listing's counts. */
  onRead(frame) {
    const entry = this.directory.find((c) => c.id === frame.channel);
    if (entry && (!entry.readMark || entry.readMark <= frame.messageId)) {
      Object.assign(entry, { unread: frame.unread, mentions: frame.mentions, readMark: frame.messageId });
      const state = this.channels.get(frame.channel);
      if (state) Object.assign(state, { unread: 0, mentions: 0 });
    }
    return this.emit('channels', { read: frame.channel });
  }

  /** Queue a message; it shows at once as pending and is sent (and re-sent) until answered. With
   * `threadId` it is a reply in that thread (and, as every reply, also a message of the channel). */
  sendMessage(channel, text, { threadId } = {}) {
    const problem = textProblem(text);
    if (problem) return { ok: false, error: problem };
    const entry = { channel, text, clientMsgId: newClientMsgId(this.env.crypto), user: this.me };
    if (threadId) entry.threadId = threadId;
    this.channel(channel).timeline.addPending(entry);
    this.outbox.push(entry);
    this.emit('messages', { channel });
    this.pump();
    return { ok: true, clientMsgId: entry.clientMsgId };
  }

  retryMessage(channel, clientMsgId) {
    const entry = this.channel(channel).timeline.pending.get(clientMsgId);
    if (!entry || entry.state !== 'failed') return;
    Object.assign(entry, { state: 'pending', error: null });
    this.outbox.push({ channel, text: entry.text, clientMsgId, user: entry.user });
    this.emit('messages', { channel });
    this.pump();
  }

  discardMessage(channel, clientMsgId) {
    this.channel(channel).timeline.pending.delete(clientMsgId);
    this.outbox = this.outbox.filter((e) => e.clientMsgId !== clientMsgId);
    this.emit('messages', { channel });
  }

  /** Queued messages of a channel that will not be joined again would block every later one: fail them. */
  dropQueued(name, reason) {
    const timeline = this.channel(name).timeline;
    for (const entry of this.outbox) if (entry.channel === name) timeline.fail(entry.clientMsgId, reason);
    this.outbox = this.outbox.filter((entry) => entry.channel !== name);
    this.emit('messages', { channel: name });
  }

  /** Send the oldest queued message once its channel is joined on this socket. */
  pump() {
    if (this.inFlight || this.status !== 'open' || this.outbox.length === 0) return;
    if (this.env.now() < this.holdUntil) return; // rate limited: the retry timer pumps again
    const head = this.outbox[0];
    if (!this.channel(head.channel).ready) return;
    this.outbox.shift();
    this.inFlight = head;
    const frame = { action: 'message', channel: head.channel, text: head.text, clientMsgId: head.clientMsgId };
    if (head.threadId) frame.threadId = head.threadId;
    this.send(frame);
    this.setTimer('ack', this.options.ackTimeoutMs, () => this.requeueInFlight(0));
  }

  requeueInFlight(delayMs) {
    const entry = this.inFlight;
    if (!entry) return;
    this.inFlight = null;
    this.clearTimer('ack');
    this.outbox.unshift(entry);
    this.holdUntil = this.env.now() + delayMs;
    if (delayMs > 0) this.setTimer('resend', delayMs, () => this.pump()); else this.pump();
  }

  typing(channel) {
    const state = this.channels.get(channel);
    if (!state || !state.ready) return;
    const now = this.env.now();
    if (now - (this.lastTypingSent.get(channel) ?? -Infinity) < this.options.typingSendEveryMs) return;
    this.lastTypingSent.set(channel, now);
    this.send({ action: 'typing', channel });
  }

  /** Add (or with `remove`, take back) a reaction on a message; false when it cannot be sent now. */
  react(channel, messageId, name, remove = false) {
    const state = this.channels.get(channel);
    if (!state || !state.ready || reactionNameProblem(name)) return false;
    const frame = { action: 'react', channel, messageId, name };
    if (remove) frame.remove = true;
    return this.send(frame);
  }

  /** Add the reaction, or take it back if it is yours: what a click on a reaction chip does. */
  toggleReaction(channel, messageId, name) {
    const state = this.channels.get(channel);
    return this.react(channel, messageId, name, Boolean(state && state.reactions.mine(messageId, name)));
  }

  /** Edit your own message: sent with the version held, so an edit made from an old text is refused
   * (`conflict`) rather than overwrite a newer one. False (with a reason) when it cannot be sent. */
  edit(channel, messageId, text) {
    const problem = textProblem(text);
    if (problem) return { ok: false, error: problem };
    const held = this.channel(channel).timeline.get(messageId);
    const frame = { action: 'edit', channel, messageId, text };
    if (held) frame.version = held.version || 0;
    if (!this.send(frame)) return { ok: false, error: 'Not connected.' };
    this.pendingEdits.set(messageId, text);
    return { ok: true };
  }

  /** Delete a message (your own; an admin's token: anyone's). False when not connected. */
  delete(channel, messageId) {
    return this.send({ action: 'delete', channel, messageId });
  }

  /** Read a thread's first page, or its next one; false when there is nothing to ask. */
  thread(channel, threadId) {
    const state = this.channels.get(channel);
    if (!state || !state.ready) return false;
    const thread = state.thread(threadId);
    if (thread.loading || (thread.loaded && !thread.next)) return false;
    const frame = { action: 'thread', channel, threadId, limit: LIMITS.threadPage };
    if (thread.next) frame.after = thread.next;
    thread.loading = this.send(frame);
    return thread.loading;
  }

  /** Ask for the page before the oldest message we hold; false when there is nothing to ask. */
  loadOlder(channel) {
    const state = this.channels.get(channel);
    if (!state || !state.ready || state.loadingOlder || !state.timeline.hasMore) return false;
    const frame = { action: 'history', channel, limit: LIMITS.historyPage };
    if (state.timeline.firstId) frame.before = state.timeline.firstId;
    state.loadingOlder = true;
    this.emit('channel', { channel });
    return this.send(frame);
  }

  // ---- receiving --------------------------------------------------------------------------------------

  received(ws, raw) {
    if (ws !== this.ws) return;
    // Any frame proves the socket is alive.
    this.clearTimer('liveness');
    for (const frame of decode(raw)) {
      try {
        this.emit('frame', { frame }); // every reply and event as sent, batches unpacked
        this.handle(frame);
      } catch (err) {
        this.emit('notice', { level: 'error', text: `Could not handle a ${frame.type} frame: ${err}` });
      }
    }
  }

  handle(frame) {
    switch (frame.type) {
      case 'joined': return this.onJoined(frame);
      case 'left': return undefined;
      case 'ack': return this.onAck(frame);
      case 'history': return this.onHistory(frame);
      case 'presence': return this.onPresencePage(frame);
      case 'heartbeat': return undefined;
      case 'channel_created': return this.onChannelCreated(frame);
      case 'invited':
        return this.emit('notice', { level: 'info', text: `Invited ${frame.user} to #${this.channelName(frame.channel)}.` });
      case 'channels': return this.onChannels(frame);
      case 'edited': return this.onEdited(frame);
      case 'deleted': return this.onChange({ id: frame.messageId, channel: frame.channel, version: frame.version,
        deletedAt: frame.deletedAt, deleted: true, text: '' });
      case 'thread': return this.onThread(frame);
      case 'dm_opened': return this.onDmOpened(frame);
      case 'marked_read':
      case 'read': return this.onRead(frame);
      case 'error': return this.onError(frame);
      case 'message': return this.onMessage(frame);
      case 'message_updated': return this.onChange(frame);
      case 'message_deleted': return this.onChange({ ...frame, deleted: true, text: '' });
      case 'thread_updated': return this.onThreadUpdated(frame);
      case 'typing': return this.onTyping(frame);
      case 'presence_diff': return this.onPresence(frame);
      case 'reacted': return undefined; // the `reaction` event carries the new count, to every connection
      case 'reaction': return this.onReaction(frame);
      case 'gateway':
        return this.emit('notice', { level: 'error', text: `Server: ${frame.message || 'error'}` });
      default: return undefined; // newer servers may add events: ignore them
    }
  }

  onJoined(frame) {
    const state = this.channel(frame.channel);
    this.pendingJoins.delete(frame.channel);
    if (!state.subscribed) return; // left again before the reply came
    const first = state.timeline.ids.length === 0;
    const since = state.timeline.lastId;
    for (const message of frame.messages || []) state.timeline.add(message);
    this.snapshotReactions(state, frame.messages);
    if (first) state.timeline.hasMore = (frame.messages || []).length >= LIMITS.joinWithoutSince;
    this.listPresence(state, frame);
    state.ready = true;
    // A re-join also repeats a few messages before `since` (a lower id can arrive after a higher one):
    // the gap, if any, ends at the first message after `since`.
    const after = since ? (frame.messages || []).find((m) => m.id > since) : undefined;
    if (since && frame.recovered === false && after) {
      // More than 100 were missed: the newest came with `joined`; page back until `since` to close the gap.
      state.gap = { since, before: after.id };
      this.requestGap(state);
    }
    this.emit('messages', { channel: state.name });
    this.emit('presence', { channel: state.name });
    this.emit('channel', { channel: state.name });
    this.pump();
  }

  onAck(frame) {
    const entry = this.inFlight && this.inFlight.clientMsgId === frame.clientMsgId ? this.inFlight : null;
    if (entry) {
      this.inFlight = null;
      this.clearTimer('ack');
      this.channel(entry.channel).timeline.ack(frame.clientMsgId, frame.id, frame.ts, entry.channel);
      this.emit('messages', { channel: entry.channel });
    } else {
      // An ack for a message re-sent after a reconnect: settle it wherever it waits.
      for (const state of this.channels.values()) {
        if (state.timeline.ack(frame.clientMsgId, frame.id, frame.ts, state.name)) {
          this.emit('messages', { channel: state.name });
        }
      }
    }
    this.pump();
  }

  requestGap(state) {
    state.loadingOlder = true;
    this.send({ action: 'history', channel: state.name, before: state.gap.before, limit: 100 });
  }

  onHistory(frame) {
    const state = this.channel(frame.channel);
    state.loadingOlder = false;
    const messages = frame.messages || [];
    for (const message of messages) state.timeline.add(message);
    this.snapshotReactions(state, messages);
    if (state.gap) {
      const oldest = messages.length ? messages[0].id : null;
      if (frame.hasMore && oldest && oldest > state.gap.since) {
        state.gap.before = oldest;
        this.requestGap(state);
      } else {
        state.gap = null;
      }
      this.emit('messages', { channel: state.name });
      return;
    }
    state.timeline.hasMore = Boolean(frame.hasMore);
    this.emit('messages', { channel: state.name, older: true });
    this.emit('channel', { channel: state.name });
  }

  /** Presence from `joined`; when it says more users are present, page on from its last user. */
  listPresence(state, frame) {
    const list = frame.presence || [];
    state.presence.reset(list);
    // The joiner may be listed first, out of order: the last user is always the cursor to page on from.
    const after = frame.presenceMore === true && list.length ? list[list.length - 1].id : null;
    if (after !== null) state.presence.beginPaging();
    if (state.presenceInFlight) {
      Object.assign(state, { presenceStale: true, presenceQueued: after });
    } else if (after !== null) {
      this.requestPresence(state, after);
    }
  }

  requestPresence(state, after) {
    state.presenceInFlight = this.send({ action: 'presence', channel: state.name, after });
    if (!state.presenceInFlight) state.presence.endPaging();
  }

  stopPresencePaging(state) {
    Object.assign(state, { presenceInFlight: false, presenceStale: false, presenceQueued: null });
    state.presence.endPaging();
  }

  onPresencePage(frame) {
    const state = this.channel(frame.channel);
    if (!state.presenceInFlight) return;
    state.presenceInFlight = false;
    if (state.presenceStale) {
      const after = state.presenceQueued;
      Object.assign(state, { presenceStale: false, presenceQueued: null });
      if (after !== null) this.requestPresence(state, after);
      return;
    }
    state.presence.merge(frame.users);
    if (frame.next) this.requestPresence(state, frame.next); else state.presence.endPaging();
    this.emit('presence', { channel: state.name });
  }

  onChannelCreated(frame) {
    const { id } = frame.channel;
    if (!this.directory.some((c) => c.id === id)) {
      this.directory = [...this.directory, { ...frame.channel, member: true }].sort(byNameThenId);
    }
    this.emit('channels', { created: id });
  }

  /** The DM asked for: listed at once (a member now), then the listing is read again for its counts. */
  onDmOpened(frame) {
    const { id } = frame.channel;
    if (!this.directory.some((c) => c.id === id)) {
      this.directory = [...this.directory, { ...frame.channel, member: true }].sort(byNameThenId);
    }
    this.emit('channels', { opened: id });
    return this.refreshChannels();
  }

  /** A newer state of a message, wherever it is held: the channel, and its thread when read. */
  onChange(message) {
    const state = this.channel(message.channel);
    const changed = state.timeline.change(message);
    const threadId = message.threadId || state.timeline.get(message.id)?.threadId;
    const thread = threadId ? state.threads.get(threadId) : undefined;
    if (thread) thread.replies.change(message);
    if (changed) this.emit('messages', { channel: state.name, message: state.timeline.get(message.id) });
    if (thread) this.emit('thread', { channel: state.name, threadId });
  }

  onEdited(frame) {
    const text = this.pendingEdits.get(frame.messageId);
    this.pendingEdits.delete(frame.messageId);
    if (text === undefined) return;
    this.onChange({ id: frame.messageId, channel: frame.channel, version: frame.version, editedAt: frame.editedAt,
      text });
  }

  onThread(frame) {
    const state = this.channel(frame.channel);
    const thread = state.thread(frame.threadId);
    thread.loading = false;
    thread.loaded = true;
    thread.next = frame.next;
    for (const reply of frame.messages || []) thread.replies.add(reply);
    if (frame.parent) state.timeline.change(frame.parent);
    this.emit('thread', { channel: state.name, threadId: frame.threadId });
  }

  onThreadUpdated(event) {
    const state = this.channel(event.channel);
    if (state.timeline.summarize(event)) this.emit('messages', { channel: state.name });
    if (state.threads.has(event.id)) this.emit('thread', { channel: state.name, threadId: event.id });
  }

  onMessage(message) {
    const state = this.channel(message.channel);
    if (message.threadId && state.threads.has(message.threadId)) {
      state.thread(message.threadId).replies.add(message);
      this.emit('thread', { channel: state.name, threadId: message.threadId });
    }
    const isNew = state.timeline.add(message);
    if (!isNew) {
      // Your own message, settled by its ack, gets from its event what the ack lacks: its mentions.
      if (message.mentions?.length) this.emit('messages', { channel: state.name });
      return;
    }
    state.typing.stopped(message.user && message.user.id);
    if (message.user && this.me && message.user.id !== this.me.id) {
      state.unread += 1;
      if ((message.mentions || []).includes(this.me.id)) state.mentions += 1;
    }
    this.emit('messages', { channel: state.name, message });
    this.emit('typing', { channel: state.name });
  }

  onTyping(event) {
    if (!this.seen.add(event.id)) return;
    if (this.me && event.user.id === this.me.id) return;
    const state = this.channel(event.channel);
    state.typing.saw(event.user, this.env.now());
    this.emit('typing', { channel: state.name });
    this.armTypingExpiry();
  }

  armTypingExpiry() {
    let next = null;
    for (const state of this.channels.values()) {
      const at = state.typing.nextExpiry();
      if (at !== null && (next === null || at < next)) next = at;
    }
    if (next === null) return;
    this.setTimer('typing', Math.max(0, next - this.env.now()) + 10, () => {
      for (const state of this.channels.values()) this.emit('typing', { channel: state.name });
      this.armTypingExpiry();
    });
  }

  /** Reactions of `joined` or `history` messages, also of those the timeline already held. */
  snapshotReactions(state, messages) {
    for (const message of messages || []) {
      if (state.reactions.snapshot(message)) this.emit('reactions', { channel: state.name, messageId: message.id });
    }
  }

  onReaction(event) {
    const state = this.channel(event.channel);
    if (state.reactions.apply(event, this.me && this.me.id)) {
      this.emit('reactions', { channel: state.name, messageId: event.messageId });
    }
  }

  onPresence(event) {
    if (!this.seen.add(event.id)) return;
    const state = this.channel(event.channel);
    state.presence.apply(event);
    this.emit('presence', { channel: state.name });
  }

  onError(frame) {
    const text = errorText(frame);
    if (frame.action === 'message' && this.inFlight) {
      const entry = this.inFlight;
      switch (frame.code) {
        case 'rate_limited':
          this.emit('notice', { level: 'warn', text, code: frame.code });
          return this.requeueInFlight(Math.max(100, frame.retryAfterMs || 1000));
        case 'conflict': // the first copy is still being stored: ask again shortly
        case 'internal':
          return this.requeueInFlight(1000);
        case 'not_joined': {
          // The server forgot this socket's subscription: join again, then the message goes out.
          const state = this.channel(entry.channel);
          state.ready = false;
          this.requeueInFlight(0);
          return this.sendJoin(state);
        }
        default:
          this.inFlight = null;
          this.clearTimer('ack');
          this.channel(entry.channel).timeline.fail(entry.clientMsgId, text);
          this.emit('messages', { channel: entry.channel });
          this.emit('notice', { level: 'error', text, code: frame.code });
          return this.pump();
      }
    }
    if (frame.action === 'join' && this.pendingJoins.size === 1) {
      const [name] = this.pendingJoins;
      this.pendingJoins.clear();
      const state = this.channel(name);
      state.subscribed = false;
      this.dropQueued(name, `Not sent: #${name} cannot be joined.`);
      this.emit('channel', { channel: name });
      return this.emit('notice', { level: 'error', text: `#${name}: ${text}`, code: frame.code });
    }
    if (frame.action === 'history') {
      for (const state of this.channels.values()) state.loadingOlder = false;
    }
    if (frame.action === 'thread') {
      for (const state of this.channels.values()) for (const thread of state.threads.values()) thread.loading = false;
    }
    if (frame.action === 'edit') this.pendingEdits.clear(); // errors name no message: forget the texts sent
    if (frame.action === 'presence') {
      // Errors name no channel: stop every paging (what was listed stays, kept current by diffs),
      // but still ask for a list a newer `joined` is waiting for.
      for (const state of this.channels.values()) {
        if (!state.presenceInFlight) continue;
        const after = state.presenceStale ? state.presenceQueued : null;
        this.stopPresencePaging(state);
        if (after !== null) {
          state.presence.beginPaging();
          this.requestPresence(state, after);
        }
      }
    }
    if (frame.code === 'token_expired') {
      return this.emit('notice', { level: 'warn', text: 'Token expired: reconnecting with a new one.' });
    }
    return this.emit('notice', { level: 'error', text, code: frame.code });
  }
}

const ERROR_TEXT = {
  rate_limited: (f) => `Slow down: rate limited, retrying in ${f.retryAfterMs ?? '?'} ms.`,
  not_found: (f) => {
    if (f.action === 'react') return 'That message is gone.';
    return ['edit', 'delete', 'thread'].includes(f.action) ? f.message : 'No such channel, or it is private.';
  },
  conflict: (f) => (f.action === 'create_channel' ? 'That channel name is taken.' : f.message),
};

export function errorText(frame) {
  const special = ERROR_TEXT[frame.code];
  const text = special ? special(frame) : frame.message;
  return text || frame.code || 'Something went wrong.';
}

function closeText(event) {
  if (event.code === 1001) return 'The server closed the connection (going away).';
  if (event.code === 1009) return 'The connection closed: a frame was too big.';
  if (event.code === 1000) return 'The server closed the connection.';
  return 'Connection lost.';
}

/** `{id, name}` from a JWT's payload (not verified: the server does that; this is only for display). */
export function userFromToken(token) {
  const part = String(token).split('.')[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims.sub !== 'string') return null;
    return { id: claims.sub, name: claims.name || claims.sub, workspace: claims.workspace, exp: claims.exp };
  } catch {
    return null;
  }
}
