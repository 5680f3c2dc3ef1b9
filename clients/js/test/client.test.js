// Unit tests of the client: `node --test clients/js/test/` (Node 20's built-in runner, no dependencies).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  DEFAULTS, ParleyClient, authorParts, Presence, Reactions, SeenIds, Timeline, Typing, backoffDelay, codePointLength, decode,
  errorText, reactionNameProblem, textBytes, textProblem, typingText, userFromToken,
} from '../src/index.js';
import { FakeClock, fakeSockets, flush, mid, msg, token } from './fakes.js';

const ALICE = token({ sub: 'alice', name: 'Alice', workspace: 'demo', exp: 2e9 });

/** A client wired to fakes; `open()` connects and answers the handshake. */
function setup(options = {}) {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeSockets();
  let r = 0;
  const client = new ParleyClient({
    url: 'ws://127.0.0.1:3001/',
    token: ALICE,
    options: { backoffBaseMs: 100, backoffCapMs: 1600, heartbeatJitterMs: 0, ...options },
    env: {
      WebSocket: FakeWebSocket,
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      now: clock.now,
      random: () => [0.5, 0, 1][r++ % 3],
    },
  });
  const events = [];
  const frames = []; // every frame as the client received it ('frame' events), apart from the rest
  client.on((kind, detail) => (kind === 'frame' ? frames.push(detail.frame) : events.push({ kind, ...detail })));
  const socket = () => sockets[sockets.length - 1];
  async function open() {
    await flush(); // the token source is async
    socket().open();
    return socket();
  }
  async function joined(ws, channel, messages = [], presence = [], extra = {}) {
    ws.push({ type: 'joined', channel, messages, recovered: true, presence, ...extra });
  }
  return { client, clock, sockets, socket, open, joined, events, frames };
}

describe('frames', () => {
  test('a batch is unpacked into its events, in order', () => {
    const frames = decode(JSON.stringify({ type: 'batch', events: [msg(1), { type: 'typing', id: 't' }] }));
    assert.deepEqual(frames.map((f) => f.type), ['message', 'typing']);
  });

  test('gateway answers and non-JSON become gateway frames instead of throwing', () => {
    assert.equal(decode('{"message": "Forbidden", "connectionId": "x"}')[0].type, 'gateway');
    assert.equal(decode('not json')[0].type, 'gateway');
    assert.equal(decode('[1]')[0].type, 'gateway');
  });

  test('lengths count code points as the server does', () => {
    assert.equal(codePointLength('😀'), 1);
    assert.equal(textProblem('😀'.repeat(4000)), null);
    assert.match(textProblem('x'.repeat(4001)), /Too long: 4001 characters, the limit is 4000/);
    assert.match(textProblem('\u0001'.repeat(4000)), /Too long: 24000 bytes, the limit is 16000/);
    assert.equal(textProblem('"'.repeat(4000)), null);
    assert.equal(textBytes('😀"\n'), 4 + 2 + 2);
    assert.match(textProblem('  \n'), /Type a message/);
  });

  test('errors read as sentences', () => {
    assert.match(errorText({ code: 'rate_limited', retryAfterMs: 200 }), /rate limited, retrying in 200 ms/);
    assert.equal(errorText({ code: 'conflict', action: 'create_channel' }), 'That channel name is taken.');
    assert.equal(errorText({ code: 'bad_request', message: 'text: too long' }), 'text: too long');
  });

  test('the user comes from the token payload', () => {
    assert.deepEqual(userFromToken(ALICE), { id: 'alice', name: 'Alice', workspace: 'demo', exp: 2e9 });
    assert.equal(userFromToken('garbage'), null);
  });
});

describe('backoff', () => {
  test('doubles per attempt up to the cap, with jitter between half and all of it', () => {
    const opts = (random) => ({ baseMs: 500, capMs: 30_000, random });
    assert.deepEqual([1, 2, 3, 4].map((a) => backoffDelay(a, opts(() => 1))), [500, 1000, 2000, 4000]);
    assert.equal(backoffDelay(20, opts(() => 1)), 30_000);
    assert.equal(backoffDelay(3, opts(() => 0)), 1000);
    assert.equal(backoffDelay(3, opts(() => 0.5)), 1500);
  });
});

describe('timeline', () => {
  test('messages are unique by id and ordered by id whatever the arrival order', () => {
    const t = new Timeline();
    for (const n of [3, 1, 2, 3, 1]) t.add(msg(n));
    assert.deepEqual(t.messages().map((m) => m.text), ['m1', 'm2', 'm3']);
    assert.equal(t.firstId, mid(1));
    assert.equal(t.lastId, mid(3));
  });

  test('an own message is pending until acked, then shows once even when its event follows', () => {
    const t = new Timeline();
    t.addPending({ clientMsgId: 'c-1', text: 'hi', user: { id: 'alice', name: 'Alice' } });
    assert.equal(t.pendingEntries()[0].state, 'pending');
    t.ack('c-1', mid(5), 'ts', 'general');
    t.add(msg(5, { user: 'alice', text: 'hi', clientMsgId: 'c-1' }));
    assert.equal(t.pendingEntries().length, 0);
    assert.deepEqual(t.messages().map((m) => [m.id, m.text]), [[mid(5), 'hi']]);
  });

  test('the event may come before the ack', () => {
    const t = new Timeline();
    t.addPending({ clientMsgId: 'c-2', text: 'yo', user: { id: 'alice' } });
    t.add(msg(7, { user: 'alice', text: 'yo', clientMsgId: 'c-2' }));
    assert.equal(t.ack('c-2', mid(7), 'ts', 'general'), false);
    assert.equal(t.messages().length, 1);
  });
});

describe('presence and typing', () => {
  test('presence starts from joined and applies joins, then leaves', () => {
    const p = new Presence();
    p.reset([{ id: 'alice', name: 'Alice' }]);
    p.apply({ joins: [{ id: 'bob', name: 'Bob' }, { id: 'carol', name: 'Carol' }], leaves: [{ id: 'carol' }] });
    assert.deepEqual(p.list().map((u) => u.name), ['Alice', 'Bob']);
  });

  test('a presence page read before a leave does not bring the user back', () => {
    const p = new Presence();
    p.reset([{ id: 'alice', name: 'Alice' }]);
    p.beginPaging();
    p.apply({ joins: [], leaves: [{ id: 'bob' }] });
    p.apply({ joins: [{ id: 'dan', name: 'Dan' }], leaves: [{ id: 'dan' }] });
    p.apply({ joins: [{ id: 'dan', name: 'Dan' }], leaves: [] }); // left, then came back
    p.merge([{ id: 'bob', name: 'Bob' }, { id: 'carol', name: 'Carol' }, { id: 'dan', name: 'Dan' }]);
    p.endPaging();
    p.merge([{ id: 'bob', name: 'Bob' }]); // outside paging, a page is taken as it is
    assert.deepEqual(p.list().map((u) => u.id), ['alice', 'bob', 'carol', 'dan']);
  });

  test('a typing user shows for 3 s after the last typing event', () => {
    const typing = new Typing(3000);
    typing.saw({ id: 'bob', name: 'Bob' }, 0);
    typing.saw({ id: 'bob', name: 'Bob' }, 2000);
    assert.deepEqual(typing.names(4999), ['Bob']);
    assert.deepEqual(typing.names(5000), []);
    assert.equal(typingText(['Bob']), 'Bob is typing…');
    assert.equal(typingText(['Ann', 'Bob']), 'Ann and Bob are typing…');
  });

  test('seen ids are bounded', () => {
    const seen = new SeenIds(2);
    assert.equal(seen.add('a'), true);
    assert.equal(seen.add('a'), false);
    seen.add('b');
    seen.add('c');
    assert.equal(seen.add('a'), true); // forgotten: the oldest went first
  });
});

describe('client: connecting and joining', () => {
  test('without a WebSocket class (Node 20 has none) the constructor says what to pass', () => {
    assert.throws(
      () => new ParleyClient({ url: 'ws://127.0.0.1:3001/', token: ALICE, env: { WebSocket: undefined } }),
      { name: 'TypeError', message: /pass env\.WebSocket/ },
    );
  });

  test('on open it lists channels and joins what the user opened', async () => {
    const { client, open } = setup();
    client.join('general');
    client.start();
    const ws = await open();
    assert.match(ws.url, /\?token=ey/);
    assert.deepEqual(ws.sent, [{ action: 'channels' }, { action: 'join', channel: 'general' }]);
    assert.equal(client.status, 'open');
  });

  test('a channel list in pages is read to its end and shown once, in name order', async () => {
    const { client, open } = setup();
    client.start();
    const ws = await open();
    const seen = [];
    client.on((kind) => { if (kind === 'channels') seen.push(client.directory.map((c) => c.name)); });
    const channel = (name) => ({ id: name, name, private: false, member: false });
    ws.push({ type: 'channels', channels: [channel('a'), channel('b')], next: 'b' });
    await flush();
    assert.deepEqual(ws.sent.at(-1), { action: 'channels', after: 'b' });
    assert.deepEqual(seen, []);
    ws.push({ type: 'channels', channels: [channel('c')], next: null });
    await flush();
    assert.deepEqual(seen, [['a', 'b', 'c']]);
  });

  test('channels are kept by id: a public and a private channel of one name both show, by name', async () => {
    const { client, open } = setup();
    client.start();
    const ws = await open();
    const created = [];
    client.on((kind, detail) => { if (kind === 'channels' && detail.created) created.push(detail.created); });
    ws.push({ type: 'channels', next: null, channels: [
      { id: 'hush', name: 'hush', private: false, invite: 'members', member: false },
      { id: 'general', name: 'general', private: false, invite: 'members', member: true }] });
    await flush();
    const mine = { id: 'hush.k3j9x0a1b2', name: 'hush', private: true, invite: 'members' };
    ws.push({ type: 'channel_created', channel: mine });
    await flush();
    assert.deepEqual(client.directory.map((c) => c.id), ['general', 'hush', 'hush.k3j9x0a1b2']);
    assert.deepEqual(created, ['hush.k3j9x0a1b2']);
    assert.equal(client.channelName('hush.k3j9x0a1b2'), 'hush');
    assert.equal(client.channelName('unlisted'), 'unlisted');
    client.join('hush.k3j9x0a1b2');
    assert.deepEqual(ws.sent.at(-1), { action: 'join', channel: 'hush.k3j9x0a1b2' });
  });

  test('openDm and markRead send their frames; a read event from another tab moves the counts forward only', async () => {
    const { client, open } = setup();
    client.start();
    const ws = await open();
    assert.equal(client.openDm(['bob', 'carol']), true);
    assert.deepEqual(ws.sent.at(-1), { action: 'open_dm', users: ['bob', 'carol'] });
    ws.push({ type: 'dm_opened', channel: { id: 'dm.4f0c2m8q1z', name: 'dm', private: true, invite: 'creator', dm: true,
      members: [{ id: 'alice', name: 'Alice' }, { id: 'bob', name: 'Bob' }] } });
    await flush();
    assert.deepEqual(ws.sent.at(-1), { action: 'channels' }); // the listing is refreshed, DM included
    ws.push({ type: 'channels', next: null, channels: [
      { id: 'general', name: 'general', private: false, invite: 'members', member: true, unread: 5, mentions: 2 }] });
    await flush();
    assert.equal(client.markRead('general', mid(3)), true);
    assert.deepEqual(ws.sent.at(-1), { action: 'mark_read', channel: 'general', messageId: mid(3) });
    ws.push({ type: 'read', channel: 'general', messageId: mid(4), unread: 1, mentions: 0 });
    ws.push({ type: 'marked_read', channel: 'general', messageId: mid(3), unread: 2, mentions: 1 }); // older: ignored
    await flush();
    const general = client.directory.find((c) => c.id === 'general');
    assert.deepEqual([general.unread, general.mentions], [1, 0]);
  });

  test('a dm_opened reply lists the DM at once and says so; the listing is read again for its counts', async () => {
    const { client, open, events } = setup();
    client.start();
    const ws = await open();
    const dm = { id: 'dm.4f0c2m8q1z', name: 'dm', private: true, invite: 'creator', dm: true,
      members: [{ id: 'alice', name: 'Alice' }, { id: 'bob', name: 'Bob' }] };
    ws.push({ type: 'dm_opened', channel: dm });
    await flush();
    assert.deepEqual(client.directory.map((c) => [c.id, c.member]), [['dm.4f0c2m8q1z', true]]);
    assert.deepEqual(events.filter((e) => e.kind === 'channels').at(-1), { kind: 'channels', opened: 'dm.4f0c2m8q1z' });
    assert.deepEqual(ws.sent.at(-1), { action: 'channels' });
  });

  test('live messages of others count on top of the listing, mentions of you apart, until new counts come', async () => {
    const { client, open, joined } = setup();
    client.join('general');
    client.start();
    const ws = await open();
    await joined(ws, 'general', [msg(1)]);
    ws.push({ type: 'channels', next: null, channels: [
      { id: 'general', name: 'general', private: false, invite: 'members', member: true, unread: 1, mentions: 0 }] });
    await flush();
    const state = client.channel('general');
    ws.push({ ...msg(2), text: 'hi @alice', mentions: ['alice'] });
    ws.push({ ...msg(2), text: 'hi @alice', mentions: ['alice'] }); // delivered twice: counted once
    ws.push(msg(3));
    ws.push(msg(4, { user: 'alice' })); // your own
    await flush();
    assert.deepEqual([state.unread, state.mentions], [2, 1]);
    // another tab read up to m4: the server's counts replace the live ones
    ws.push({ type: 'read', channel: 'general', messageId: mid(4), unread: 0, mentions: 0 });
    await flush();
    assert.deepEqual([state.unread, state.mentions], [0, 0]);
    ws.push(msg(5));
    await flush();
    assert.equal(state.unread, 1);
    ws.push({ type: 'channels', next: null, channels: [
      { id: 'general', name: 'general', private: false, invite: 'members', member: true, unread: 1, mentions: 0 }] });
    await flush();
    assert.deepEqual([state.unread, state.mentions], [0, 0]);
  });

  test('a lost socket reconnects with growing delays and re-joins with since, without duplicates', async () => {
    const { client, clock, sockets, open, joined } = setup();
    client.join('general');
    client.start();
    let ws = await open();
    await joined(ws, 'general', [msg(1), msg(2)]);

    ws.drop();
    assert.equal(client.status, 'waiting');
    // attempt 1: ceiling 100 ms, random 0.5 -> 75 ms
    clock.advance(74);
    assert.equal(sockets.length, 1);
    clock.advance(1);
    await flush();
    assert.equal(sockets.length, 2);
    sockets[1].drop(); // refused handshake: attempt 2, ceiling 200 ms, random 0 -> 100 ms
    clock.advance(99);
    assert.equal(sockets.length, 2);
    clock.advance(1);
    ws = await open();

    assert.deepEqual(ws.frames('join'), [{ action: 'join', channel: 'general', since: mid(2) }]);
    await joined(ws, 'general', [msg(2), msg(3)]); // m2 came just before the drop: delivered again
    ws.push({ type: 'batch', events: [msg(3), msg(4)] });
    assert.deepEqual(client.channel('general').timeline.messages().map((m) => m.text), ['m1', 'm2', 'm3', 'm4']);
    assert.equal(client.attempt, 0); // the next outage starts from the shortest delay again
  });

  test('stop() ends the connection for good', async () => {
    const { client, clock, sockets, open } = setup();
    client.start();
    const ws = await open();
    client.stop();
    assert.equal(ws.closedWith.code, 1000);
    clock.advance(60_000);
    assert.equal(sockets.length, 1);
    assert.equal(client.status, 'stopped');
  });

  test('a join refused with not_found is no longer wanted', async () => {
    const { client, open, events } = setup();
    client.start();
    const ws = await open();
    client.join('secret');
    ws.push({ type: 'error', code: 'not_found', action: 'join', message: 'channel not found' });
    assert.equal(client.channel('secret').subscribed, false);
    assert.match(events.at(-1).text, /#secret: No such channel/);
  });
});

describe('client: sending', () => {
  async function ready(options) {
    const s = setup(options);
    s.client.join('general');
    s.client.start();
    const ws = await s.open();
    await s.joined(ws, 'general');
    return { ...s, ws };
  }

  test('an own message acked before its event gets the mentions the event carries, and is drawn again', async () => {
    const { client, ws, events } = await ready();
    const { clientMsgId } = client.sendMessage('general', 'hi @bob');
    ws.push({ type: 'ack', clientMsgId, id: mid(9), ts: 'ts' });
    await flush();
    const drawn = events.filter((e) => e.kind === 'messages').length;
    ws.push({ ...msg(9, { user: 'alice', text: 'hi @bob', clientMsgId }), mentions: ['bob'] });
    await flush();
    assert.deepEqual(client.channel('general').timeline.get(mid(9)).mentions, ['bob']);
    assert.equal(events.filter((e) => e.kind === 'messages').length, drawn + 1);
    assert.deepEqual([client.channel('general').unread, client.channel('general').mentions], [0, 0]); // yours
  });

  test('an own message shows at once as pending, then once as sent', async () => {
    const { client, ws } = await ready();
    const { clientMsgId } = client.sendMessage('general', 'hello');
    const timeline = client.channel('general').timeline;
    assert.equal(timeline.pendingEntries()[0].state, 'pending');
    assert.deepEqual(ws.frames('message'), [{ action: 'message', channel: 'general', text: 'hello', clientMsgId }]);
    ws.push(msg(9, { user: 'alice', text: 'hello', clientMsgId }));
    ws.push({ type: 'ack', clientMsgId, id: mid(9), ts: 'ts' });
    assert.equal(timeline.pendingEntries().length, 0);
    assert.deepEqual(timeline.messages().map((m) => m.text), ['hello']);
  });

  test('messages go one at a time, so an error (which names no message) is matched to the right one', async () => {
    const { client, ws } = await ready();
    const first = client.sendMessage('general', 'one').clientMsgId;
    client.sendMessage('general', 'two');
    assert.equal(ws.frames('message').length, 1);
    ws.push({ type: 'error', code: 'bad_request', action: 'message', message: 'text: nope' });
    const entries = client.channel('general').timeline.pendingEntries();
    assert.deepEqual(entries.map((e) => [e.clientMsgId === first, e.state, e.error]), [
      [true, 'failed', 'text: nope'],
      [false, 'pending', null],
    ]);
    assert.equal(ws.frames('message')[1].text, 'two');
  });

  test('a rate-limited message is sent again after retryAfterMs with the same clientMsgId', async () => {
    const { client, clock, ws } = await ready();
    const { clientMsgId } = client.sendMessage('general', 'fast');
    ws.push({ type: 'error', code: 'rate_limited', action: 'message', retryAfterMs: 200, message: 'slow' });
    clock.advance(199);
    assert.equal(ws.frames('message').length, 1);
    clock.advance(1);
    assert.deepEqual(ws.frames('message').map((f) => f.clientMsgId), [clientMsgId, clientMsgId]);
  });

  test('after rate_limited nothing goes out early, even when other replies would pump the outbox', async () => {
    const { client, clock, ws, joined } = await ready();
    client.sendMessage('general', 'a');
    ws.push({ type: 'error', code: 'rate_limited', action: 'message', retryAfterMs: 500, message: 'slow' });
    client.sendMessage('general', 'b');
    await joined(ws, 'general'); // a repeated `joined` pumps too
    clock.advance(499);
    assert.equal(ws.frames('message').length, 1);
    clock.advance(1);
    assert.deepEqual(ws.frames('message').map((f) => f.text), ['a', 'a']);
  });

  test('leaving a channel fails its queued messages instead of blocking other channels', async () => {
    const { client, ws, joined } = await ready();
    client.join('random');
    client.sendMessage('random', 'queued until random is joined');
    client.leave('random');
    client.sendMessage('general', 'still goes out');
    assert.deepEqual(ws.frames('message').map((f) => f.text), ['still goes out']);
    const [entry] = client.channel('random').timeline.pendingEntries();
    assert.deepEqual([entry.state, entry.error], ['failed', 'Not sent: you left #random.']);
    await joined(ws, 'random'); // a late reply to the join must not resurrect it
    assert.equal(client.channel('random').ready, false);
  });

  test('a message without an ack when the socket drops is re-sent after the re-join, same clientMsgId', async () => {
    const { client, clock, open, joined, ws } = await ready();
    const { clientMsgId } = client.sendMessage('general', 'lost?');
    ws.drop();
    clock.advance(2000);
    const ws2 = await open();
    assert.equal(ws2.frames('message').length, 0); // not before the channel is joined again
    await joined(ws2, 'general');
    assert.deepEqual(ws2.frames('message').map((f) => f.clientMsgId), [clientMsgId]);
    ws2.push({ type: 'ack', clientMsgId, id: mid(4), ts: 'ts' });
    ws2.push(msg(4, { user: 'alice', text: 'lost?', clientMsgId }));
    assert.equal(client.channel('general').timeline.messages().length, 1);
  });

  test('text over 4000 code points is refused before it is sent', async () => {
    const { client, ws } = await ready();
    const result = client.sendMessage('general', 'x'.repeat(4001));
    assert.equal(result.ok, false);
    assert.match(result.error, /Too long/);
    assert.equal(ws.frames('message').length, 0);
  });

  test('typing is sent at most once a second however fast the keys come', async () => {
    const { client, clock, ws } = await ready();
    for (let i = 0; i < 10; i += 1) {
      client.typing('general');
      clock.advance(150);
    }
    assert.equal(ws.frames('typing').length, 2);
  });
});

describe('client: events', () => {
  async function ready() {
    const s = setup();
    s.client.join('general');
    s.client.start();
    const ws = await s.open();
    await s.joined(ws, 'general', [], [{ id: 'alice', name: 'Alice' }]);
    return { ...s, ws };
  }

  test('every frame reaches "frame" listeners as received, a batch as its events in order', async () => {
    const { ws, frames } = await ready();
    const typing = { type: 'typing', id: 't9', channel: 'general', user: { id: 'bob', name: 'Bob' } };
    ws.push({ type: 'batch', events: [msg(1), typing] });
    ws.push({ type: 'heartbeat', ts: '2026-11-28T10:00:01.000Z' });
    assert.deepEqual(frames.map((f) => f.type), ['joined', 'message', 'typing', 'heartbeat']);
    assert.deepEqual(frames[2], typing);
  });

  test('a typing event shows its user and the indicator clears itself about 3 s later', async () => {
    const { client, clock, ws, events } = await ready();
    ws.push({ type: 'typing', id: 't1', channel: 'general', user: { id: 'bob', name: 'Bob' } });
    const typing = client.channel('general').typing;
    assert.deepEqual(typing.names(clock.now()), ['Bob']);
    const before = events.filter((e) => e.kind === 'typing').length;
    clock.advance(3100);
    assert.ok(events.filter((e) => e.kind === 'typing').length > before); // the UI was told to redraw
    assert.deepEqual(typing.names(clock.now()), []);
  });

  test('a message from the typist clears their indicator at once', async () => {
    const { client, clock, ws } = await ready();
    ws.push({ type: 'typing', id: 't2', channel: 'general', user: { id: 'bob', name: 'Bob' } });
    ws.push(msg(1));
    assert.deepEqual(client.channel('general').typing.names(clock.now()), []);
  });

  test('presence diffs apply once, even when delivered twice', async () => {
    const { client, ws } = await ready();
    const diff = { type: 'presence_diff', id: 'p1', channel: 'general', joins: [{ id: 'bob', name: 'Bob' }], leaves: [] };
    ws.push(diff);
    ws.push({ type: 'presence_diff', id: 'p2', channel: 'general', joins: [], leaves: [{ id: 'bob' }] });
    ws.push(diff); // a retried delivery must not bring bob back
    assert.deepEqual(client.channel('general').presence.list().map((u) => u.id), ['alice']);
  });

  test('older messages are paged with before = the oldest id, until hasMore is false', async () => {
    const s = setup();
    s.client.join('general');
    s.client.start();
    const ws = await s.open();
    const fifty = Array.from({ length: 50 }, (_, i) => msg(100 + i));
    await s.joined(ws, 'general', fifty);
    assert.equal(s.client.loadOlder('general'), true);
    assert.equal(s.client.loadOlder('general'), false); // one page at a time
    assert.deepEqual(ws.frames('history'), [{ action: 'history', channel: 'general', limit: 50, before: mid(100) }]);
    ws.push({ type: 'history', channel: 'general', messages: [msg(98), msg(99)], hasMore: false });
    const timeline = s.client.channel('general').timeline;
    assert.equal(timeline.firstId, mid(98));
    assert.equal(s.client.loadOlder('general'), false);
  });

  test('after a long outage (recovered: false) history fills the gap back to since', async () => {
    const s = setup();
    s.client.join('general');
    s.client.start();
    let ws = await s.open();
    await s.joined(ws, 'general', [msg(1)]);
    ws.drop();
    s.clock.advance(5000);
    ws = await s.open();
    ws.push({ type: 'joined', channel: 'general', messages: [msg(300), msg(301)], recovered: false, presence: [] });
    assert.deepEqual(ws.frames('history').at(-1), { action: 'history', channel: 'general', before: mid(300), limit: 100 });
    ws.push({ type: 'history', channel: 'general', messages: [msg(200), msg(299)], hasMore: true });
    assert.equal(ws.frames('history').at(-1).before, mid(200));
    ws.push({ type: 'history', channel: 'general', messages: [msg(1), msg(2)], hasMore: true });
    assert.equal(ws.frames('history').length, 2); // reached since: done
    const ids = s.client.channel('general').timeline.messages().map((m) => m.text);
    assert.deepEqual(ids, ['m1', 'm2', 'm200', 'm299', 'm300', 'm301']);
  });
});

describe('client: recovery repeats', () => {
  test('a re-join repeating messages before since shows each once and fills the gap from after since', async () => {
    // Given a page that saw m1 and m3 (m2 was delivered after m3, and the socket dropped first)
    const s = setup();
    s.client.join('general');
    s.client.start();
    let ws = await s.open();
    await s.joined(ws, 'general', [msg(1), msg(3)]);
    ws.drop();
    s.clock.advance(5000);
    ws = await s.open();
    assert.equal(ws.frames('join').at(-1).since, mid(3));
    // When the re-join repeats m1 and m2 before since, and more than 100 were missed after it
    ws.push({ type: 'joined', channel: 'general', messages: [msg(1), msg(2), msg(300)], recovered: false, presence: [] });
    // Then the gap is paged from the first message after since, and every message shows once, in order
    assert.deepEqual(ws.frames('history').at(-1), { action: 'history', channel: 'general', before: mid(300), limit: 100 });
    ws.push({ type: 'history', channel: 'general', messages: [msg(3), msg(299)], hasMore: true });
    const texts = s.client.channel('general').timeline.messages().map((m) => m.text);
    assert.deepEqual(texts, ['m1', 'm2', 'm3', 'm299', 'm300']);
  });
});

describe('client: heartbeats', () => {
  test('an open page sends a heartbeat every interval, so idle timeouts never close it', async () => {
    const { client, clock, open } = setup({ heartbeatMs: 60_000, heartbeatJitterMs: 0 });
    client.start();
    const ws = await open();
    clock.advance(59_999);
    assert.equal(ws.frames('heartbeat').length, 0);
    clock.advance(1);
    ws.push({ type: 'heartbeat', ts: 'now' });
    clock.advance(60_000);
    ws.push({ type: 'heartbeat', ts: 'now' });
    assert.equal(ws.frames('heartbeat').length, 2);
    assert.equal(client.status, 'open');
  });

  test('by default a page beats every 4 to 5 minutes, under the 10-minute idle timeout', async () => {
    // the fake random source returns 0.5, 0, 1, ...: the intervals are 270 s, 240 s and 300 s
    const { client, clock, open } = setup({
      heartbeatMs: DEFAULTS.heartbeatMs,
      heartbeatJitterMs: DEFAULTS.heartbeatJitterMs,
    });
    client.start();
    const ws = await open();
    const sentAt = [];
    for (let t = 0; t < 900_000; t += 1000) {
      clock.advance(1000);
      if (ws.frames('heartbeat').length > sentAt.length) {
        sentAt.push(t + 1000);
        ws.push({ type: 'heartbeat', ts: 'now' });
      }
    }
    const gaps = sentAt.map((at, i) => at - (i ? sentAt[i - 1] : 0));
    assert.ok(gaps.length >= 3);
    assert.ok(gaps.every((gap) => gap >= 240_000 && gap <= 300_000), String(gaps));
    assert.ok(new Set(gaps).size > 1, 'spread, not in step');
  });

  test('a socket that stops answering is dropped and replaced', async () => {
    const { client, clock, sockets, open } = setup({ heartbeatMs: 1000, heartbeatJitterMs: 0, livenessTimeoutMs: 500 });
    client.start();
    const ws = await open();
    clock.advance(1500); // heartbeat sent at 1000, nothing back by 1500
    assert.equal(ws.closedWith.code, 4001);
    assert.equal(client.status, 'waiting');
    clock.advance(200);
    await flush();
    assert.equal(sockets.length, 2);
  });
});

describe('client: presence in a large channel', () => {
  const users = (from, to) => Array.from({ length: to - from }, (_, i) => {
    const id = `u${String(from + i).padStart(3, '0')}`;
    return { id, name: id.toUpperCase() };
  });

  async function opened() {
    const s = setup();
    s.client.join('general');
    s.client.start();
    const ws = await s.open();
    return { ...s, ws };
  }

  const ids = (client) => client.channel('general').presence.list().map((u) => u.id);

  test('joined with presenceMore pages on from its last user until next is null', async () => {
    const { client, ws, joined, events } = await opened();
    await joined(ws, 'general', [], users(0, 100), { presenceMore: true });
    assert.deepEqual(ws.frames('presence'), [{ action: 'presence', channel: 'general', after: 'u099' }]);
    ws.push({ type: 'presence', channel: 'general', users: users(100, 200), next: 'u199' });
    assert.deepEqual(ws.frames('presence').at(-1), { action: 'presence', channel: 'general', after: 'u199' });
    ws.push({ type: 'presence', channel: 'general', users: users(200, 250), next: null });
    assert.equal(ws.frames('presence').length, 2);
    assert.deepEqual(ids(client), users(0, 250).map((u) => u.id));
    assert.equal(client.channel('general').presence.users.get('u123'), 'U123');
    assert.ok(events.filter((e) => e.kind === 'presence').length >= 3); // redrawn as pages come
  });

  test('a joined without presenceMore, or from a server that does not send it, asks for nothing more', async () => {
    const { client, ws, joined } = await opened();
    await joined(ws, 'general', [], users(0, 3), { presenceMore: false });
    await joined(ws, 'general', [], users(0, 100)); // no presenceMore field at all
    assert.deepEqual(ws.frames('presence'), []);
    assert.equal(ids(client).length, 100);
  });

  test('the joiner listed first does not become the cursor', async () => {
    const { client, ws, joined } = await opened();
    await joined(ws, 'general', [], [{ id: 'zed', name: 'Zed' }, ...users(0, 100)], { presenceMore: true });
    assert.deepEqual(ws.frames('presence'), [{ action: 'presence', channel: 'general', after: 'u099' }]);
    ws.push({ type: 'presence', channel: 'general', users: [...users(100, 120), { id: 'zed', name: 'Zed' }], next: null });
    assert.equal(ids(client).length, 121); // zed once
  });

  test('a user who leaves while pages are read stays gone, and one who joins stays', async () => {
    const { client, ws, joined } = await opened();
    await joined(ws, 'general', [], users(0, 100), { presenceMore: true });
    ws.push({ type: 'presence_diff', id: 'd1', channel: 'general', joins: [{ id: 'new', name: 'New' }], leaves: [{ id: 'u150' }] });
    ws.push({ type: 'presence', channel: 'general', users: users(100, 200), next: null }); // read before u150 left
    const listed = ids(client);
    assert.equal(listed.includes('u150'), false);
    assert.equal(listed.includes('new'), true);
    assert.equal(listed.length, 200);
  });

  test('a joined again while a page is in flight drops that page and pages on from the new list', async () => {
    const { client, ws, joined } = await opened();
    await joined(ws, 'general', [], users(0, 100), { presenceMore: true });
    await joined(ws, 'general', [], users(1, 101), { presenceMore: true }); // u000 left meanwhile
    assert.equal(ws.frames('presence').length, 1); // one request at a time
    ws.push({ type: 'presence', channel: 'general', users: [{ id: 'u000', name: 'U000' }, ...users(100, 199)], next: 'u198' });
    assert.deepEqual(ws.frames('presence').at(-1), { action: 'presence', channel: 'general', after: 'u100' });
    assert.equal(ids(client).includes('u000'), false); // the stale page was not merged
    ws.push({ type: 'presence', channel: 'general', users: users(101, 130), next: null });
    assert.deepEqual(ids(client), users(1, 130).map((u) => u.id));
    assert.equal(ws.frames('presence').length, 2);
  });

  test('a presence error stops paging and keeps what was listed', async () => {
    const { client, ws, joined, events } = await opened();
    await joined(ws, 'general', [], users(0, 100), { presenceMore: true });
    ws.push({ type: 'error', code: 'internal', action: 'presence', message: 'try again' });
    ws.push({ type: 'presence', channel: 'general', users: users(100, 110), next: 'u109' }); // a late reply
    assert.equal(ws.frames('presence').length, 1);
    assert.equal(ids(client).length, 100);
    assert.equal(client.channel('general').presenceInFlight, false);
    assert.equal(events.at(-1).kind, 'notice');
  });

  test('after a reconnect the new joined lists presence afresh and paging starts again', async () => {
    const { client, clock, ws, joined, open } = await opened();
    await joined(ws, 'general', [], users(0, 100), { presenceMore: true });
    ws.drop();
    clock.advance(2000);
    const ws2 = await open();
    await joined(ws2, 'general', [], users(0, 100), { presenceMore: true });
    assert.deepEqual(ws2.frames('presence'), [{ action: 'presence', channel: 'general', after: 'u099' }]);
    ws2.push({ type: 'presence', channel: 'general', users: users(100, 101), next: null });
    assert.equal(ids(client).length, 101);
  });

  test('leaving a channel while a page is in flight ignores that page', async () => {
    const { client, ws, joined } = await opened();
    await joined(ws, 'general', [], users(0, 100), { presenceMore: true });
    client.leave('general');
    ws.push({ type: 'presence', channel: 'general', users: users(100, 200), next: 'u199' });
    assert.deepEqual(ids(client), []);
    assert.equal(ws.frames('presence').length, 1);
  });
});

describe('authorParts', () => {
  test('shows the user id beside a display name, so a name cannot impersonate another user', () => {
    assert.deepEqual(authorParts({ id: 'mallory', name: 'alice' }), { name: 'alice', id: '@mallory' });
  });
  test('shows the id once when the name is the id', () => {
    assert.deepEqual(authorParts({ id: 'alice', name: 'alice' }), { name: 'alice', id: null });
  });
  test('falls back to the id when there is no name', () => {
    assert.deepEqual(authorParts({ id: 'bob' }), { name: 'bob', id: null });
  });
});

describe('reactions', () => {
  const M = mid(1);
  const ev = (version, count, user, added, name = '👍') => ({
    type: 'reaction', id: `r${M}.${version}`, channel: 'general', messageId: M, name, count, version,
    user: { id: user, name: user }, added,
  });
  // alice adds, bob adds, alice removes, carol adds: 👍 ends at 2, not alice's
  const history = [ev(1, 1, 'alice', true), ev(2, 2, 'bob', true), ev(3, 1, 'alice', false), ev(4, 2, 'carol', true)];

  test('every order and repetition of the events converges on the newest count and my own last change', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (let round = 0; round < 50; round += 1) {
      const events = [...history, ...history.filter(() => random() < 0.5)].sort(() => random() - 0.5);
      const reactions = new Reactions();
      for (const e of events) reactions.apply(e, 'alice');
      assert.deepEqual(reactions.list(M), [{ name: '👍', count: 2, me: false }]);
    }
  });

  test('a snapshot newer than the events shown replaces them; an older one changes nothing', () => {
    const reactions = new Reactions();
    reactions.apply(ev(2, 2, 'bob', true), 'alice');
    // the count at version 1 is older than bob's event; my own `me` at version 1 is the newest I know
    reactions.snapshot({ id: M, reactions: [{ name: '👍', count: 1, me: true }], reactionsVersion: 1 });
    assert.deepEqual(reactions.list(M), [{ name: '👍', count: 2, me: true }]);
    assert.equal(reactions.snapshot({ id: M, reactions: [{ name: '👍', count: 1, me: true }], reactionsVersion: 1 }), false);
    // a newer snapshot that no longer lists the name takes it to 0
    reactions.snapshot({ id: M, reactions: [{ name: 'tada', count: 1, me: true }], reactionsVersion: 5 });
    assert.deepEqual(reactions.list(M), [{ name: 'tada', count: 1, me: true }]);
    // events older than the snapshot are ignored, newer ones apply
    reactions.apply(ev(4, 3, 'carol', true), 'alice');
    reactions.apply(ev(6, 1, 'alice', true), 'alice');
    assert.deepEqual(reactions.list(M), [{ name: '👍', count: 1, me: true }, { name: 'tada', count: 1, me: true }]);
    assert.equal(reactions.mine(M, '👍'), true);
  });

  test('the client applies reaction events and history reactions, and toggles with react frames', async () => {
    const s = setup();
    s.client.join('general');
    s.client.start();
    const ws = await s.open();
    await s.joined(ws, 'general', [{ ...msg(1), reactions: [{ name: '👍', count: 1, me: false }], reactionsVersion: 1 }]);
    const state = s.client.channel('general');
    assert.deepEqual(state.reactions.list(M), [{ name: '👍', count: 1, me: false }]);
    ws.push({ type: 'batch', events: [ev(2, 2, 'alice', true), ev(2, 2, 'alice', true)] });
    assert.deepEqual(state.reactions.list(M), [{ name: '👍', count: 2, me: true }]);
    assert.ok(s.events.some((e) => e.kind === 'reactions' && e.messageId === M));
    assert.equal(s.client.toggleReaction('general', M, '👍'), true);
    assert.equal(s.client.toggleReaction('general', M, 'tada'), true);
    const sent = ws.sent.filter((f) => f.action === 'react');
    assert.deepEqual(sent, [
      { action: 'react', channel: 'general', messageId: M, name: '👍', remove: true },
      { action: 'react', channel: 'general', messageId: M, name: 'tada' },
    ]);
    assert.equal(s.client.react('general', M, 'Not A Name'), false);
  });

  test('reaction names: short names and emoji pass, text does not', () => {
    for (const name of ['+1', 'thumbs_up', '👍', '👍🏽', '🇫🇷', '1️⃣']) assert.equal(reactionNameProblem(name), null, name);
    for (const name of ['', 'Thumbs Up', 'a'.repeat(33), 'hello!']) assert.ok(reactionNameProblem(name), name);
  });
});
