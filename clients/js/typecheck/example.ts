// Type-checked against the installed package by test/package.test.js (tsc --strict): what a user writes.
import { ParleyClient, decode, type ServerFrame } from 'parley-client';

const client = new ParleyClient({ url: 'ws://127.0.0.1:3001/', token: async () => 'eyJ...' });
client.on((kind, detail) => {
  if (kind === 'status') console.log(detail.status, detail.retryAt);
});
client.on((kind, detail) => {
  if (kind !== 'frame') return;
  const { frame } = detail;
  if (frame.type === 'message') console.log(frame.user.name, frame.text.toUpperCase());
  if (frame.type === 'ack') console.log(frame.id, frame.clientMsgId);
  if (frame.type === 'error' && frame.code === 'rate_limited') console.log(frame.retryAfterMs);
  if (frame.type === 'reaction') console.log(frame.messageId, frame.name, frame.count, frame.version, frame.user.id);
  if (frame.type === 'reacted') console.log(frame.changed, frame.added);
  if (frame.type === 'history') console.log(frame.messages[0]?.reactions?.[0]?.me);
});
client.on((kind, detail) => {
  if (kind === 'reactions') console.log(detail.messageId, client.channel(detail.channel).reactions.list(detail.messageId));
});
const general = client.join('general');
const sent = client.sendMessage('general', 'hello');
if (sent.ok) console.log(sent.clientMsgId, general.timeline.pending.get(sent.clientMsgId)?.state);
client.send({ action: 'history', channel: 'general', limit: 10 });
const frames: ServerFrame[] = decode('{"type":"batch","events":[]}');
console.log(frames.length, general.timeline.lastId?.length);
client.react('general', '17900000000000001', '👍');
client.toggleReaction('general', '17900000000000001', '+1');
client.send({ action: 'react', channel: 'general', messageId: '17900000000000001', name: 'tada', remove: true });
client.start();
