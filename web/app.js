// The page: sign-in, then channels, messages, presence and typing as a ParleyClient (parley-client.js) holds
// them. Every piece of user content goes through textContent, never innerHTML.
import { ParleyClient, authorParts, channelNameProblem, typingText, userFromToken, userIdProblem } from './parley-client.js';

const $ = (id) => document.getElementById(id);
// Tests (and curious developers) may shorten timers before the page loads: window.parleyOptions = {...}.
// markReadDelayMs: a conversation on screen is marked read up to the message that was newest this long
// ago: one mark_read for a run of messages (the action is rate limited), not one per message.
const OPTIONS = { channelsRefreshMs: 30_000, markReadDelayMs: 2_000, ...(globalThis.parleyOptions || {}) };
const SESSION_KEY = 'parley.session';
const GROUP_WINDOW_MS = 5 * 60_000;
// The picker's choices: fully-qualified emoji (with U+FE0F where Unicode asks for it), as the server compares names.
const COMMON_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '✅'];
// `@user` as the server reads it (parley/mentions.py): after whitespace or at the start; a user id may end
// in punctuation, so the token also stands for itself without it.
const MENTION = /(?:^|(?<=\s))@([^\s#]{1,128})/gu;
const MENTION_TRAILING = /[.,;:!?)\]}>'"…]+$/u;
const DM_MAX_USERS = 8;

let client = null;
let active = null; // the channel on screen
let statusTicker = null;
let refreshTicker = null;
let noticeTimer = null;
let pickerFor = null; // the message id whose reaction picker is open
let editing = null; // {channel, id}: the composer edits this message instead of sending a new one
let openThread = null; // the parent id of the thread shown beside the channel
const marks = new Map(); // channel -> {sent, timer, again}: the read marks this page sent
const leftDms = new Set(); // DMs the person left on this page: not joined again by themselves

// ---- sign-in -------------------------------------------------------------------------------------------

function pageParams() {
  const params = new URLSearchParams(location.search);
  // The fragment wins: it never reaches a server or its logs, so tokens belong there.
  for (const [key, value] of new URLSearchParams(location.hash.replace(/^#/, ''))) params.set(key, value);
  return params;
}

function sameOriginSocketUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
}

function demoTokenSource(user, name) {
  return async () => {
    const query = new URLSearchParams({ sub: user, name: name || user });
    let response;
    try {
      response = await fetch(`/_emulator/token?${query}`, { cache: 'no-store' });
    } catch {
      throw new Error('the server did not answer');
    }
    if (!response.ok) {
      throw new Error(response.status === 404
        ? 'this server hands out no development tokens (start it with `make run`), so paste a token instead'
        : `the token endpoint answered ${response.status}`);
    }
    return (await response.json()).token;
  };
}

async function signInDemo(user, name) {
  const problem = userIdProblem(user);
  if (problem) return signInError(problem);
  const source = demoTokenSource(user, name);
  try {
    await source(); // fail here, on the sign-in form, rather than in a reconnect loop
  } catch (err) {
    return signInError(`Demo sign-in failed: ${err.message}.`);
  }
  begin(sameOriginSocketUrl(), source, { mode: 'demo', user, name });
}

function signInToken(url, token) {
  if (!/^wss?:\/\//.test(url)) return signInError('The WebSocket URL starts with wss:// (or ws:// locally).');
  const claims = userFromToken(token);
  if (!claims) return signInError('That does not look like a JWT with a sub claim.');
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) {
    return signInError('That token has expired: get a new one.');
  }
  // A pasted token cannot be renewed here: once it expires, say so instead of retrying blindly.
  const source = async () => {
    if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) {
      throw new Error('the token has expired; sign out and paste a new one');
    }
    return token;
  };
  begin(url, source, { mode: 'token', url, token });
}

function signInError(text) {
  $('sign-in-error').textContent = text;
  showView('sign-in');
}

function showView(view) {
  $('sign-in').hidden = view !== 'sign-in';
  $('chat').hidden = view !== 'chat';
  $('sign-out').hidden = view !== 'chat';
}

function begin(url, token, session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  client = new ParleyClient({ url, token, options: OPTIONS });
  globalThis.parley = { client }; // for the console and the browser tests
  client.on(onClientEvent);
  $('sign-in-error').textContent = '';
  showView('chat');
  client.start();
  select(sessionStorage.getItem('parley.channel') || 'general');
  statusTicker = setInterval(renderStatus, 1000);
  refreshTicker = setInterval(() => client.refreshChannels(), OPTIONS.channelsRefreshMs);
}

function signOut() {
  client?.stop();
  client = null;
  active = null;
  clearInterval(statusTicker);
  clearInterval(refreshTicker);
  for (const mark of marks.values()) clearTimeout(mark.timer);
  marks.clear();
  leftDms.clear();
  sessionStorage.removeItem(SESSION_KEY);
  sessionStorage.removeItem('parley.channel');
  $('me').textContent = '';
  $('workspace').textContent = '';
  renderStatus();
  showView('sign-in');
  $('demo-user').focus();
}

// ---- client events -------------------------------------------------------------------------------------

function onClientEvent(kind, detail) {
  switch (kind) {
    case 'status':
      renderStatus();
      if (detail.status === 'open') {
        renderMe();
        // "Connection lost" and friends are over once the socket is back.
        if ($('notice').dataset.connection === 'true') showNotice('', 'info');
      }
      break;
    case 'channels':
      joinDms();
      renderChannels();
      if (detail.created || detail.opened) select(detail.created || detail.opened);
      else if (active) renderHead();
      break;
    case 'channel':
      renderChannels();
      if (detail.channel === active) renderHead();
      break;
    case 'messages':
      if (detail.channel === active) {
        Object.assign(client.channel(active), { unread: 0, mentions: 0 });
        renderMessages({ older: Boolean(detail.older) });
        renderThread();
        markRead(active);
      }
      renderChannels();
      break;
    case 'thread':
      if (detail.channel === active && detail.threadId === openThread) renderThread();
      break;
    case 'presence':
      if (detail.channel === active) renderPresence();
      break;
    case 'typing':
      if (detail.channel === active) renderTyping();
      break;
    case 'reactions':
      if (detail.channel === active) renderReactions(detail.messageId);
      break;
    case 'notice':
      showNotice(detail.text, detail.level, Boolean(detail.connection));
      break;
    default:
      break;
  }
}

function select(name) {
  if (pickerFor) closePicker();
  if (name !== active) {
    stopEditing();
    openThread = null;
  }
  active = name;
  leftDms.delete(name);
  sessionStorage.setItem('parley.channel', name);
  client.join(name);
  // Seen now: the badge goes at once, the server's counts follow the mark (markRead).
  const entry = client.directory.find((c) => c.id === name);
  if (entry && entry.unread !== undefined) Object.assign(entry, { unread: 0, mentions: 0 });
  markRead(name);
  closeDrawers();
  renderChannels();
  renderHead();
  renderMessages({ toBottom: true });
  renderPresence();
  renderTyping();
  renderThread();
}

// ---- read marks and direct messages --------------------------------------------------------------------

/** Mark `channel` read up to its newest message once that message has been here markReadDelayMs (a
 * run of messages takes one mark; the server counts a mark ahead of its counters right, too). Only
 * while the page is seen; again whenever newer messages came meanwhile. */
function markRead(channel) {
  const mark = marks.get(channel) || { sent: '', timer: null, again: false };
  marks.set(channel, mark);
  if (mark.timer) {
    mark.again = true;
    return;
  }
  const state = client?.channels.get(channel);
  const newest = state?.ready ? state.timeline.lastId : null;
  if (!newest || newest <= mark.sent || document.visibilityState === 'hidden') return;
  mark.again = false;
  mark.timer = setTimeout(() => {
    mark.timer = null;
    if (!client) return;
    if (newest > mark.sent && client.markRead(channel, newest)) mark.sent = newest;
    if ((mark.again || client.channel(channel).timeline.lastId > newest) && channel === active) markRead(channel);
  }, OPTIONS.markReadDelayMs);
}

/** Join every DM of the listing (DMs are few and someone writing in one wants to be noticed), unless
 * the person left it on this page. Channels are joined when opened. */
function joinDms() {
  for (const entry of client.directory) {
    if (entry.dm && entry.member && !leftDms.has(entry.id) && !client.channels.get(entry.id)?.subscribed) {
      client.join(entry.id);
    }
  }
}

/** What a conversation is called: a channel by its name, a DM by its other members' names. */
function conversationName(id) {
  const entry = client.directory.find((c) => c.id === id);
  if (!entry?.dm) return `#${client.channelName(id)}`;
  const others = (entry.members || []).filter((m) => m.id !== client.me?.id);
  return (others.length ? others : entry.members || []).map((m) => m.name || m.id).join(', ') || 'direct message';
}

/** The badge of a conversation: the server's counts plus what came live since (none for the open one). */
function badgeCounts(entry) {
  if (entry.id === active) return { unread: 0, mentions: 0 };
  const state = client.channels.get(entry.id);
  return {
    unread: (entry.unread || 0) + (state?.unread || 0),
    mentions: (entry.mentions || 0) + (state?.mentions || 0),
  };
}

function openDm() {
  const input = $('dm-users');
  const me = client?.me?.id;
  const users = [...new Set(input.value.split(/[\s,]+/).filter(Boolean))].filter((u) => u !== me);
  if (!users.length) return showNotice('Name at least one other user id, e.g. bob (several: bob, carol).', 'error');
  if (users.length > DM_MAX_USERS) return showNotice(`A direct message has at most ${DM_MAX_USERS} other people.`, 'error');
  for (const user of users) {
    const problem = userIdProblem(user);
    if (problem) return showNotice(`${user}: ${problem}`, 'error');
  }
  if (!client.openDm(users)) return showNotice('Not connected: try again in a moment.', 'error');
  input.value = '';
  toggleDmForm(false);
  return undefined;
}

function toggleDmForm(open = $('dm-form').hidden) {
  $('dm-form').hidden = !open;
  $('new-dm').setAttribute('aria-expanded', String(open));
  if (open) $('dm-users').focus();
}

// ---- rendering -----------------------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('data-') || key.startsWith('aria-')) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function renderMe() {
  const me = client?.me;
  $('me').textContent = me ? `${me.name} (${me.id})` : '';
  $('workspace').textContent = me?.workspace ? `workspace ${me.workspace}` : '';
}

function renderStatus() {
  const status = client ? client.status : 'idle';
  const node = $('status');
  node.dataset.status = status;
  let text;
  if (!client) {
    text = 'Not connected';
  } else if (status === 'open') {
    text = 'Connected';
  } else if (status === 'connecting') {
    text = client.attempt ? `Reconnecting (attempt ${client.attempt + 1})…` : 'Connecting…';
  } else if (status === 'waiting') {
    const seconds = Math.max(0, Math.ceil((client.retryAt - Date.now()) / 1000));
    const hint = !client.everOpened && client.attempt >= 3 ? ' — check the URL and token' : '';
    text = `Offline: retrying in ${seconds} s${hint}`;
  } else {
    text = 'Signed out';
  }
  if (node.textContent !== text) node.textContent = text;
}

// Channels are addressed by id (a private channel's is `name.<suffix>`) and shown by name.
function channelEntries() {
  const entries = new Map(client.directory.map((c) => [c.id, { ...c }]));
  // Channels joined before the list arrived (or just created) show too.
  for (const state of client.channels.values()) {
    if (!entries.has(state.name) && state.subscribed) {
      entries.set(state.name, { id: state.name, name: state.name, member: true });
    }
  }
  return [...entries.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

function renderChannels() {
  if (!client) return;
  const entries = channelEntries();
  $('channel-list').replaceChildren(...entries.filter((e) => !e.dm).map(conversationItem));
  const dms = entries.filter((e) => e.dm).map((e) => ({ ...e, shown: conversationName(e.id) }));
  dms.sort((a, b) => a.shown.localeCompare(b.shown) || a.id.localeCompare(b.id));
  $('dm-list').replaceChildren(...dms.map(conversationItem));
  $('dm-empty').hidden = dms.length > 0;
}

/** A sidebar entry: a channel (`#name`) or a DM (its people), with its unread count, or its mentions of
 * you as `@n` when there are some; the accessible name says both. */
function conversationItem(entry) {
  const state = client.channels.get(entry.id);
  const { unread, mentions } = badgeCounts(entry);
  const shown = entry.dm ? entry.shown : entry.name;
  const kind = entry.dm ? 'direct message with' : `${entry.private ? 'private ' : ''}channel`;
  const counts = [unread ? `${unread} unread` : '', mentions ? `${mentions} ${mentions === 1 ? 'mention' : 'mentions'}` : '']
    .filter(Boolean).map((part) => `, ${part}`).join('');
  const button = el('button', {
    type: 'button',
    class: `channel-button${unread || mentions ? ' has-unread' : ''}`,
    'data-channel': entry.id,
    'data-name': shown,
    'aria-label': `${kind} ${shown}${counts}`,
  },
  el('span', { class: 'channel-mark', text: entry.dm ? '@' : entry.private ? '🔒' : '#', 'aria-hidden': 'true' }),
  el('span', { class: 'channel-name', text: shown }),
  mentions ? el('span', { class: 'badge mention-badge', text: `@${mentions}`, 'aria-hidden': 'true' })
    : unread ? el('span', { class: 'badge', text: String(unread), 'aria-hidden': 'true' }) : null);
  if (entry.id === active) button.setAttribute('aria-current', 'true');
  if (!state?.subscribed) button.classList.add('not-joined');
  button.addEventListener('click', () => select(entry.id));
  return el('li', {}, button);
}

function renderHead() {
  const state = active && client.channel(active);
  $('channel-title').textContent = active ? conversationName(active) : 'Pick a channel';
  const entry = client.directory.find((c) => c.id === active);
  $('channel-kind').textContent = entry?.dm ? 'direct message' : entry?.private ? 'private' : '';
  const subscribed = Boolean(state?.subscribed);
  $('join-button').hidden = subscribed || !active;
  $('leave-button').hidden = !subscribed;
  $('invite-form').hidden = !subscribed || Boolean(entry?.dm); // a DM's members are fixed
  const usable = subscribed && state.ready;
  $('composer-text').disabled = !subscribed;
  $('send-button').disabled = !usable;
  renderOlder();
}

function renderOlder() {
  const state = active && client.channel(active);
  const node = $('older');
  if (!state || !state.subscribed) {
    node.hidden = false;
    node.textContent = active ? `You are not in ${conversationName(active)}. Join to read and write.` : '';
    return;
  }
  node.hidden = false;
  if (state.loadingOlder) node.textContent = 'Loading older messages…';
  else if (state.timeline.hasMore) node.textContent = 'Scroll up for older messages';
  else if (state.ready) {
    const dm = client.directory.find((c) => c.id === state.name)?.dm;
    node.textContent = dm ? `This is the beginning of your conversation with ${conversationName(state.name)}.`
      : `This is the beginning of ${conversationName(state.name)}.`;
  }
  else node.textContent = 'Loading…';
}

function timeOf(ts) {
  const date = new Date(ts);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function messageItem(message, previous, inThread = false) {
  const own = client.me && message.user?.id === client.me.id;
  const continued = previous && previous.user?.id === message.user?.id
    && new Date(message.ts) - new Date(previous.ts) < GROUP_WINDOW_MS;
  const li = el('li', { class: `message${own ? ' own' : ''}${continued ? ' continued' : ''}`, 'data-id': message.id });
  if (message.clientMsgId) li.dataset.clientMsgId = message.clientMsgId;
  li.dataset.state = 'sent';
  if (!continued) {
    li.append(el('div', { class: 'meta' },
      el('span', { class: 'author', text: authorParts(message.user).name }),
      authorParts(message.user).id ? el('span', { class: 'user-id', text: ` ${authorParts(message.user).id}` }) : null,
      el('time', { class: 'time', dateTime: message.ts, title: message.ts, text: timeOf(message.ts) })));
  }
  if (message.deleted) {
    li.classList.add('deleted');
    li.append(el('div', { class: 'text', text: 'This message was deleted.' }));
    return li;
  }
  li.append(el('div', { class: 'text' }, ...textWithMentions(message.text, message.mentions),
    message.editedAt ? el('span', { class: 'edited', title: message.editedAt, text: ' (edited)' }) : null));
  li.append(messageActions(message, own, inThread));
  li.append(reactionsRow(message.id));
  if (!inThread && message.replyCount > 0) {
    const n = message.replyCount;
    const replies = el('button', { type: 'button', class: 'link-button replies', text: `${n} ${n === 1 ? 'reply' : 'replies'}` });
    replies.addEventListener('click', () => showThread(message.id));
    li.append(replies);
  }
  return li;
}

/** A message's text as nodes: plain text, and each `@user` the server resolved (`mentions`) highlighted
 * (mentions of you more so). Text nodes and textContent only: the text never becomes markup. */
function textWithMentions(text, mentions) {
  if (!mentions?.length) return [document.createTextNode(text)];
  const nodes = [];
  let at = 0;
  for (const match of text.matchAll(MENTION)) {
    const token = match[1];
    const cut = token.replace(MENTION_TRAILING, '');
    const id = mentions.includes(token) ? token : cut && mentions.includes(cut) ? cut : null;
    if (!id) continue;
    if (match.index > at) nodes.push(document.createTextNode(text.slice(at, match.index)));
    const me = client.me && id === client.me.id;
    nodes.push(el('span', { class: `mention${me ? ' mention-me' : ''}`, 'data-user': id, text: `@${id}` }));
    at = match.index + 1 + id.length;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

function messageActions(message, own, inThread) {
  const actions = el('div', { class: 'actions' });
  if (!inThread && !message.threadId) {
    const reply = el('button', { type: 'button', class: 'link-button reply', text: 'Reply' });
    reply.addEventListener('click', () => showThread(message.id));
    actions.append(reply);
  }
  if (own) {
    const edit = el('button', { type: 'button', class: 'link-button edit', text: 'Edit' });
    edit.addEventListener('click', () => startEditing(message));
    const remove = el('button', { type: 'button', class: 'link-button delete', text: 'Delete' });
    remove.addEventListener('click', () => {
      // Deleting cannot be undone: ask first.
      if (window.confirm('Delete this message? This cannot be undone.')) client.delete(active, message.id);
    });
    actions.append(edit, remove);
  }
  return actions;
}

// ---- reactions -----------------------------------------------------------------------------------------

/** The chips under a message (name, count, yours highlighted; a click toggles yours) and the add button. */
function reactionsRow(messageId) {
  const { reactions } = client.channel(active);
  const chips = reactions.list(messageId).map(({ name, count, me }) => {
    const chip = el('button', {
      type: 'button',
      class: `reaction-chip${me ? ' mine' : ''}`,
      'data-name': name,
      'aria-pressed': String(me),
      'aria-label': `${name} ${count}${me ? ', yours: click to take it back' : ': click to add yours'}`,
    },
    el('span', { class: 'reaction-name', text: name }),
    el('span', { class: 'reaction-count', text: String(count) }));
    chip.addEventListener('click', () => client.toggleReaction(active, messageId, name));
    return chip;
  });
  const add = el('button', {
    type: 'button',
    class: 'reaction-add',
    title: 'Add a reaction',
    'aria-label': 'Add a reaction',
    'aria-haspopup': 'menu',
    'aria-expanded': String(pickerFor === messageId),
    text: '☺+',
  });
  add.addEventListener('click', (event) => {
    event.stopPropagation();
    if (pickerFor === messageId) closePicker(); else openPicker(messageId);
  });
  return el('div', { class: 'reactions', 'data-message-id': messageId }, ...chips, add);
}

function messageNode(messageId) {
  return [...$('message-list').children].find((li) => li.dataset.id === messageId) || null;
}

function renderReactions(messageId) {
  const li = messageNode(messageId);
  const row = li && li.querySelector('.reactions');
  if (row) row.replaceWith(reactionsRow(messageId));
}

function picker() {
  let node = $('reaction-picker');
  if (!node) {
    node = el('div', { id: 'reaction-picker', class: 'reaction-picker', role: 'menu', 'aria-label': 'Reactions' },
      ...COMMON_REACTIONS.map((name) => {
        const choice = el('button', { type: 'button', role: 'menuitem', class: 'reaction-choice', 'data-name': name, text: name });
        choice.addEventListener('click', (event) => {
          event.stopPropagation();
          if (pickerFor) client.toggleReaction(active, pickerFor, name);
          closePicker();
        });
        return choice;
      }));
    node.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') closePicker(true);
    });
  }
  return node;
}

function openPicker(messageId) {
  pickerFor = messageId;
  placePicker();
  picker().querySelector('button')?.focus();
}

/** Put the open picker under its message (again after the list was drawn anew), or take it away. */
function placePicker() {
  const node = picker();
  const li = pickerFor && messageNode(pickerFor);
  if (!li) {
    node.remove();
    pickerFor = null;
    return;
  }
  li.append(node);
  for (const button of $('message-list').querySelectorAll('.reaction-add')) {
    button.setAttribute('aria-expanded', String(button.closest('.message') === li));
  }
}

function closePicker(refocus = false) {
  const messageId = pickerFor;
  pickerFor = null;
  picker().remove();
  const li = messageId && messageNode(messageId);
  const add = li && li.querySelector('.reaction-add');
  if (add) {
    add.setAttribute('aria-expanded', 'false');
    if (refocus) add.focus();
  }
}

function pendingItem(entry) {
  const li = el('li', { class: `message own ${entry.state}`, 'data-client-msg-id': entry.clientMsgId, 'data-state': entry.state });
  li.append(el('div', { class: 'meta' },
    el('span', { class: 'author', text: entry.user?.name || 'you' }),
    el('span', { class: 'time', text: entry.state === 'failed' ? 'not sent' : 'sending…' })));
  li.append(el('div', { class: 'text', text: entry.text }));
  if (entry.state === 'failed') {
    const retry = el('button', { type: 'button', class: 'link-button', text: 'Retry' });
    retry.addEventListener('click', () => client.retryMessage(active, entry.clientMsgId));
    const discard = el('button', { type: 'button', class: 'link-button', text: 'Discard' });
    discard.addEventListener('click', () => client.discardMessage(active, entry.clientMsgId));
    li.append(el('div', { class: 'failure' }, el('span', { text: entry.error }), retry, discard));
  }
  return li;
}

function renderMessages({ older = false, toBottom = false } = {}) {
  const box = $('messages');
  const list = $('message-list');
  if (!active) {
    list.replaceChildren();
    return;
  }
  const { timeline } = client.channel(active);
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const fromBottom = box.scrollHeight - box.scrollTop;
  const items = [];
  let previous = null;
  for (const message of timeline.messages()) {
    if (message.threadId) continue; // replies are shown in their thread (the channel has them too)
    items.push(messageItem(message, previous));
    previous = message;
  }
  for (const entry of timeline.pendingEntries()) items.push(pendingItem(entry));
  list.replaceChildren(...items);
  if (pickerFor) placePicker();
  renderOlder();
  if (older) box.scrollTop = box.scrollHeight - fromBottom; // keep what the reader looked at in place
  else if (toBottom || nearBottom) box.scrollTop = box.scrollHeight;
  // Nothing to scroll yet, so no scroll-up can ask for more: ask now.
  if (box.scrollHeight <= box.clientHeight && timeline.hasMore) client.loadOlder(active);
}

// ---- threads and edits ---------------------------------------------------------------------------------

function showThread(id) {
  openThread = id;
  client.thread(active, id);
  renderThread();
  $('thread-text').focus();
}

function closeThread() {
  openThread = null;
  renderThread();
}

/** The open thread: its parent, then its replies (those read with `thread` and those that came live). */
function renderThread() {
  const panel = $('thread-panel');
  const shown = Boolean(openThread && active && client);
  panel.hidden = !shown;
  $('chat').classList.toggle('thread-open', shown);
  if (!shown) return;
  const state = client.channel(active);
  const replies = new Map();
  for (const message of state.thread(openThread).replies.messages()) replies.set(message.id, message);
  for (const message of state.timeline.messages()) {
    const known = replies.get(message.id);
    const newer = !known || (message.version || 0) > (known.version || 0);
    if (message.threadId === openThread && newer) replies.set(message.id, message);
  }
  const parent = state.timeline.get(openThread);
  const items = parent ? [messageItem(parent, null, true)] : [];
  let previous = null;
  for (const id of [...replies.keys()].sort()) {
    const reply = replies.get(id);
    items.push(messageItem(reply, previous, true));
    previous = reply;
  }
  $('thread-list').replaceChildren(...items);
}

function sendReply() {
  const text = $('thread-text');
  if (!active || !client || !openThread) return;
  const result = client.sendMessage(active, text.value, { threadId: openThread });
  if (!result.ok) {
    showNotice(result.error, 'error');
    return;
  }
  text.value = '';
}

function startEditing(message) {
  editing = { channel: active, id: message.id };
  const text = $('composer-text');
  text.value = message.text;
  text.dataset.editing = 'true';
  text.placeholder = 'Editing — Enter saves, Escape cancels';
  autoGrow();
  text.focus();
}

function stopEditing() {
  if (!editing) return;
  editing = null;
  const text = $('composer-text');
  text.value = '';
  delete text.dataset.editing;
  text.placeholder = 'Message — Enter sends, Shift+Enter adds a line';
  autoGrow();
}

/** Your newest message in the channel that can still be edited (Up in an empty composer edits it). */
function lastOwnMessage() {
  const messages = client.channel(active).timeline.messages();
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    const m = messages[i];
    if (client.me && m.user?.id === client.me.id && !m.deleted && !m.threadId) return m;
  }
  return null;
}

function renderPresence() {
  const users = active ? client.channel(active).presence.list() : [];
  $('people-title').textContent = `In this channel (${users.length})`;
  $('presence-list').replaceChildren(...users.map((user) => el('li', { 'data-user': user.id },
    el('span', { class: 'dot', 'aria-hidden': 'true' }),
    el('span', { text: user.name }),
    user.name !== user.id ? el('span', { class: 'user-id', text: ` @${user.id}` }) : null)));
}

function renderTyping() {
  const names = active ? client.channel(active).typing.names(Date.now()) : [];
  $('typing').textContent = typingText(names);
}

function showNotice(text, level = 'info', connection = false) {
  const node = $('notice');
  node.textContent = text;
  node.dataset.level = level;
  node.dataset.connection = String(connection);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { node.textContent = ''; }, level === 'error' ? 12_000 : 6_000);
}

// ---- narrow screens ------------------------------------------------------------------------------------

function toggleDrawer(which) {
  const chat = $('chat');
  const cls = `show-${which}`;
  const open = !chat.classList.contains(cls);
  closeDrawers();
  chat.classList.toggle(cls, open);
  $(which === 'sidebar' ? 'toggle-channels' : 'toggle-people').setAttribute('aria-expanded', String(open));
  if (open) (which === 'sidebar' ? $('channel-list').querySelector('button') : $('people'))?.focus();
}

function closeDrawers() {
  $('chat').classList.remove('show-sidebar', 'show-people');
  $('toggle-channels').setAttribute('aria-expanded', 'false');
  $('toggle-people').setAttribute('aria-expanded', 'false');
}

// ---- wiring --------------------------------------------------------------------------------------------

function wire() {
  $('demo-form').addEventListener('submit', (event) => {
    event.preventDefault();
    signInDemo($('demo-user').value.trim(), $('demo-name').value.trim());
  });
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    signInToken($('token-url').value.trim(), $('token-value').value.trim());
  });
  $('sign-out').addEventListener('click', signOut);
  $('refresh-channels').addEventListener('click', () => client?.refreshChannels());
  $('new-dm').addEventListener('click', () => toggleDmForm());
  $('dm-form').addEventListener('submit', (event) => {
    event.preventDefault();
    if (client) openDm();
  });
  $('dm-users').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.stopPropagation();
      toggleDmForm(false);
      $('new-dm').focus();
    }
  });
  $('join-button').addEventListener('click', () => active && select(active));
  $('leave-button').addEventListener('click', () => {
    if (!active) return;
    if (client.directory.find((c) => c.id === active)?.dm) leftDms.add(active);
    client.leave(active);
    showNotice(`You left ${conversationName(active)}. You stay a member and can join again.`);
  });
  $('create-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = $('create-name').value.trim();
    const problem = channelNameProblem(name);
    if (problem) return showNotice(problem, 'error');
    client.createChannel(name, $('create-private').checked);
    $('create-name').value = '';
    $('create-private').checked = false;
    return undefined;
  });
  $('invite-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const user = $('invite-user').value.trim();
    const problem = userIdProblem(user);
    if (problem) return showNotice(problem, 'error');
    client.invite(active, user);
    $('invite-user').value = '';
    return undefined;
  });

  const text = $('composer-text');
  $('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    send();
  });
  text.addEventListener('keydown', (event) => {
    // Enter sends; Shift+Enter is a newline; never while an IME is composing a character.
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    } else if (event.key === 'ArrowUp' && text.value === '' && !editing && active && client) {
      const last = lastOwnMessage();
      if (last) {
        event.preventDefault();
        startEditing(last);
      }
    } else if (event.key === 'Escape' && editing) {
      event.preventDefault();
      stopEditing();
    }
  });
  $('thread-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sendReply();
  });
  $('thread-text').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendReply();
    }
  });
  $('close-thread').addEventListener('click', closeThread);
  text.addEventListener('input', () => {
    autoGrow();
    if (text.value.trim() && active) client?.typing(active);
  });
  $('messages').addEventListener('scroll', () => {
    if ($('messages').scrollTop < 60 && active && client?.loadOlder(active)) renderOlder();
  });

  $('toggle-channels').addEventListener('click', () => toggleDrawer('sidebar'));
  $('toggle-people').addEventListener('click', () => toggleDrawer('people'));
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') closeDrawers();
  });
  // A click anywhere but the picker closes it.
  document.addEventListener('click', (event) => {
    if (pickerFor && !event.target.closest?.('#reaction-picker')) closePicker();
  });
  // The network is back: do not sit out the rest of a long backoff.
  window.addEventListener('online', () => client?.reconnectNow());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      client?.refreshChannels();
      if (active) markRead(active);
    }
  });
}

function send() {
  const text = $('composer-text');
  if (!active || !client) return;
  if (editing) {
    const edited = client.edit(editing.channel, editing.id, text.value);
    if (!edited.ok) {
      showNotice(edited.error, 'error');
      return;
    }
    stopEditing();
    return;
  }
  const result = client.sendMessage(active, text.value);
  if (!result.ok) {
    showNotice(result.error, 'error');
    return;
  }
  text.value = '';
  autoGrow();
  renderMessages({ toBottom: true });
}

function autoGrow() {
  const text = $('composer-text');
  text.style.height = 'auto';
  text.style.height = `${Math.min(text.scrollHeight, 200)}px`;
}

// A link can carry any server's URL (and a token of its choosing): before the page connects to a host
// other than its own, the person says whether they meant to. Declining leaves them on the sign-in form.
function linkedServerConfirmed(url) {
  let host;
  try {
    host = new URL(url).host;
  } catch {
    return true; // not a URL at all: signInToken says what is wrong with it
  }
  if (host === location.host) return true;
  return window.confirm(
    `This link asks Parley to connect to the chat server at\n\n    ${host}\n\n`
    + 'Only continue if you trust it: it will see everything you send. Connect?',
  );
}

function startFromUrlOrSession() {
  const params = pageParams();
  if (params.get('token') && params.get('url')) {
    // Out of the address bar, so the token is not bookmarked or shared by accident.
    history.replaceState(null, '', location.pathname);
    if (!linkedServerConfirmed(params.get('url'))) {
      return signInError('Not connected: you declined the server the link named.');
    }
    return signInToken(params.get('url'), params.get('token'));
  }
  if (params.get('user')) return signInDemo(params.get('user'), params.get('name') || '');
  const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
  if (saved?.mode === 'demo') return signInDemo(saved.user, saved.name);
  if (saved?.mode === 'token') return signInToken(saved.url, saved.token);
  showView('sign-in');
  $('demo-user').focus();
  return undefined;
}

wire();
startFromUrlOrSession();
