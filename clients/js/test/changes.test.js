// Edits, deletes and threads in the client: `node --test clients/js/test/`. Events come at least once
// and out of order: whatever the order, a client holds each message's newest state.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ParleyClient, Timeline, mergeMessage } from '../src/index.js';
import { FakeClock, fakeSockets, flush, mid, msg, token } from './fakes.js';

const ALICE = token({ sub: 'alice', name: 'Alice', workspace: 'demo', exp: 2e9 });

async function joinedClient() {
  const clock = new FakeClock();
  const { FakeWebSocket, sockets } = fakeSockets();
  const client = new ParleyClient({
    url: 'ws://127.0.0.1:3001/',
    token: ALICE,
    options: { heartbeatJitterMs: 0 },
    env: { WebSocket: FakeWebSocket, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, now: clock.now,
      random: () => 0.5 },
  });
  const events = [];
  client.on((kind, detail) => { if (kind !== 'frame') events.push({ kind, ...detail }); });
  client.join('general');
  client.start();
  await flush();
  const ws = sockets.at(-1);
  ws.open();
  ws.push({ type: 'joined', channel: 'general', messages: [msg(1, { user: 'alice' })], recovered: true, presence: [] });
  return { client, ws, events };
}

const updated = (n, version, text) => ({ ...msg(n, { user: 'alice', text }), type: 'message_updated', version,
  editedAt: `2026-11-28T10:0${version}:00.000Z` });
const deleted = (n, version) => ({ type: 'message_deleted', id: mid(n), channel: 'general', version,
  deletedAt: '2026-11-28T10:09:00.000Z' });

describe('message changes', () => {
  test('the highest version wins whatever order the events come in, and repeats change nothing', () => {
    const events = [msg(1, { user: 'alice' }), updated(1, 1, 'one'), updated(1, 2, 'two'), deleted(1, 3)];
    for (const order of [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1, 2, 3, 0]]) {
      const timeline = new Timeline();
      for (const i of order) {
        const e = events[i];
        if (e.type === 'message_deleted') timeline.change({ ...e, deleted: true, text: '' });
        else if (e.type === 'message') timeline.add(e); else timeline.change(e);
      }
      const held = timeline.get(mid(1));
      assert.equal(held.deleted, true, `order ${order}`);
      assert.equal(held.text, '');
      assert.equal(held.version, 3);
      assert.equal(held.user.id, 'alice'); // the tombstone keeps its author from the message
    }
  });

  test('a thread summary keeps its highest threadVersion, even when it came before its parent', () => {
    const timeline = new Timeline();
    const summary = (v, n) => ({ type: 'thread_updated', id: mid(1), channel: 'general', replyCount: n,
      lastReplyAt: 'x', threadVersion: v });
    timeline.summarize(summary(2, 2));
    timeline.summarize(summary(1, 1));
    timeline.add(msg(1));
    assert.equal(timeline.get(mid(1)).replyCount, 2);
    timeline.change(updated(1, 1, 'edited')); // an edit carries no summary: the summary stays
    assert.equal(timeline.get(mid(1)).replyCount, 2);
    assert.equal(timeline.get(mid(1)).text, 'edited');
  });

  test('a change to a message older than the loaded history is left to history', () => {
    const timeline = new Timeline();
    timeline.add(msg(5));
    assert.equal(timeline.change(updated(2, 1, 'old, edited')), false);
    assert.equal(timeline.firstId, mid(5)); // paging back still starts before message 5
    assert.equal(timeline.change({ ...deleted(7, 1), deleted: true, text: '' }), true); // newer: kept
  });

  test('merging never lets an older state bring the text of a tombstone back', () => {
    const tomb = mergeMessage({ id: mid(1) }, { id: mid(1), version: 2, deleted: true, text: '' });
    assert.equal(mergeMessage(tomb, msg(1)).text, '');
  });
});

describe('client: edit, delete, thread', () => {
  test('edit sends the version held; the answer and the event both update the message', async () => {
    const { client, ws } = await joinedClient();
    assert.deepEqual(client.edit('general', mid(1), 'fixed'), { ok: true });
    assert.deepEqual(ws.frames('edit'), [{ action: 'edit', channel: 'general', messageId: mid(1), text: 'fixed', version: 0 }]);
    ws.push({ type: 'edited', channel: 'general', messageId: mid(1), version: 1, editedAt: 't' });
    assert.equal(client.channel('general').timeline.get(mid(1)).text, 'fixed');
    ws.push(updated(1, 1, 'fixed'));
    ws.push(updated(1, 1, 'fixed')); // a repeat
    assert.equal(client.channel('general').timeline.get(mid(1)).version, 1);
    assert.deepEqual(client.edit('general', mid(1), ' '), { ok: false, error: 'Type a message first.' });
  });

  test('delete sends the frame; the message becomes a tombstone', async () => {
    const { client, ws } = await joinedClient();
    assert.equal(client.delete('general', mid(1)), true);
    assert.deepEqual(ws.frames('delete'), [{ action: 'delete', channel: 'general', messageId: mid(1) }]);
    ws.push(deleted(1, 1));
    const held = client.channel('general').timeline.get(mid(1));
    assert.equal(held.deleted, true);
    assert.equal(held.text, '');
  });

  test('a thread is read page by page, and replies that arrive live join it', async () => {
    const { client, ws, events } = await joinedClient();
    assert.equal(client.thread('general', mid(1)), true);
    assert.equal(client.thread('general', mid(1)), false); // one page at a time
    const reply = (n) => ({ ...msg(n), threadId: mid(1) });
    ws.push({ type: 'thread', channel: 'general', threadId: mid(1),
      parent: { ...msg(1, { user: 'alice' }), replyCount: 2, lastReplyAt: 't', threadVersion: 2 },
      messages: [reply(2)], next: mid(2) });
    assert.equal(client.thread('general', mid(1)), true);
    assert.deepEqual(ws.frames('thread').at(-1), { action: 'thread', channel: 'general', threadId: mid(1), limit: 50,
      after: mid(2) });
    ws.push({ type: 'thread', channel: 'general', threadId: mid(1), parent: msg(1, { user: 'alice' }), messages: [],
      next: null });
    ws.push({ type: 'message', ...reply(3) });
    const thread = client.channel('general').thread(mid(1));
    assert.deepEqual(thread.replies.messages().map((m) => m.id), [mid(2), mid(3)]);
    assert.equal(client.channel('general').timeline.get(mid(1)).replyCount, 2);
    assert.ok(events.some((e) => e.kind === 'thread' && e.threadId === mid(1)));
    assert.equal(client.thread('general', mid(1)), false); // read to its end
  });

  test('a reply is sent with its threadId', async () => {
    const { client, ws } = await joinedClient();
    client.sendMessage('general', 'me too', { threadId: mid(1) });
    const [frame] = ws.frames('message');
    assert.equal(frame.threadId, mid(1));
  });
});
