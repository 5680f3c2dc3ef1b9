// Types of parley-client (src/index.js), written by hand from docs/asyncapi.yaml's schemas (protocol v1).
// test/package.test.js type-checks typecheck/example.ts against them with `tsc --strict` (and typecheck/misuse.ts fails).

// ---- the wire ---------------------------------------------------------------------------------------

/** A 17-digit message id; ids sort by time as strings. */
export type MessageId = string;

export interface User {
  id: string;
  name: string;
}

/** A stored message, in `joined`, `history` and the `message` event. */
export interface Message {
  id: MessageId;
  channel: string;
  /** ISO-8601 UTC with milliseconds. */
  ts: string;
  user: User;
  text: string;
  clientMsgId?: string;
  threadId?: MessageId;
  /** Users of the workspace the text mentions (`@user`), in order; only when there are some. */
  mentions?: string[];
  /** Set when an app posted it through the publish function (docs/apps.md); `user.id` is then `app#<name>`. */
  app?: string;
  /** Once edited or deleted: one more per change; the highest held wins. */
  version?: number;
  editedAt?: string;
  /** A tombstone: `text` is empty. */
  deleted?: boolean;
  deletedAt?: string;
  /** On a thread's parent: its live replies, the newest reply's ts, and the summary's own version. */
  replyCount?: number;
  lastReplyAt?: string | null;
  threadVersion?: number;
  /** In `joined` and `history`, only when the message ever had a reaction (possibly empty). */
  reactions?: ReactionCount[];
  /** With `reactions`: the message's reaction version they show. */
  reactionsVersion?: number;
}

/** One reaction name on a message, as you see it. */
export interface ReactionCount {
  /** A short name (1 to 32 of a-z 0-9 _ + -) or one emoji. */
  name: string;
  count: number;
  /** Whether you reacted with it. */
  me: boolean;
}

export interface ChannelInfo {
  /** What frames address the channel by: its name if public, `name.<10 of [a-z0-9]>` if private. */
  id: string;
  /** What people see; a public and a private channel may share one. */
  name: string;
  private: boolean;
  /** Who may invite: any member (the default) or the creator only. */
  invite: 'members' | 'creator';
  /** Only on a direct message (`open_dm`). */
  dm?: true;
  /** Only on a direct message: its members, in id order. */
  members?: User[];
}

export interface ChannelListing extends ChannelInfo {
  member: boolean;
  /** Only where you are a member: messages after your read mark. */
  unread?: number;
  /** Only where you are a member: mentions of you after your read mark. */
  mentions?: number;
}

/** A frame a client sends; `action` selects the route. */
export type ClientFrame =
  | { action: 'join'; channel: string; since?: MessageId }
  /** `membership: true` also ends your membership; `user` (the creator only) removes that member. */
  | { action: 'leave'; channel: string; membership?: boolean; user?: string }
  | { action: 'message'; channel: string; text: string; clientMsgId?: string; threadId?: MessageId }
  | { action: 'typing'; channel: string }
  | { action: 'history'; channel: string; before?: MessageId; limit?: number }
  | { action: 'presence'; channel: string; after?: string; limit?: number }
  | { action: 'heartbeat' }
  | { action: 'create_channel'; name: string; private?: boolean; invite?: 'members' | 'creator' }
  | { action: 'invite'; channel: string; user: string }
  | { action: 'channels'; after?: string }
  /** Add a reaction, or with `remove: true` take yours back; idempotent either way. */
  | { action: 'react'; channel: string; messageId: MessageId; name: string; remove?: boolean }
  | { action: 'edit'; channel: string; messageId: MessageId; text: string; version?: number }
  | { action: 'delete'; channel: string; messageId: MessageId }
  | { action: 'thread'; channel: string; threadId: MessageId; after?: MessageId; limit?: number }
  | { action: 'open_dm'; users: string[] }
  | { action: 'mark_read'; channel: string; messageId: MessageId };

export type ErrorCode =
  | 'bad_request'
  | 'unknown_action'
  | 'not_found'
  | 'forbidden'
  | 'not_joined'
  | 'rate_limited'
  | 'quota_exceeded'
  | 'conflict'
  | 'token_expired'
  | 'internal';

export interface JoinedReply {
  type: 'joined';
  channel: string;
  messages: Message[];
  recovered: boolean;
  presence: User[];
  presenceMore: boolean;
}
export interface LeftReply { type: 'left'; channel: string }
export interface AckReply { type: 'ack'; clientMsgId: string | null; id: MessageId; ts: string }
export interface HistoryReply { type: 'history'; channel: string; messages: Message[]; hasMore: boolean }
export interface PresenceReply { type: 'presence'; channel: string; users: User[]; next: string | null }
export interface HeartbeatReply { type: 'heartbeat'; ts: string }
export interface ChannelCreatedReply { type: 'channel_created'; channel: ChannelInfo }
export interface InvitedReply { type: 'invited'; channel: string; user: string }
export interface ChannelsReply { type: 'channels'; channels: ChannelListing[]; next: string | null }
/** `changed: false`: it was so already, nothing was written. */
export interface ReactedReply {
  type: 'reacted';
  channel: string;
  messageId: MessageId;
  name: string;
  added: boolean;
  changed: boolean;
}
export interface EditedReply {
  type: 'edited';
  channel: string;
  messageId: MessageId;
  version: number;
  editedAt: string | null;
}
export interface DeletedReply { type: 'deleted'; channel: string; messageId: MessageId; version: number; deletedAt: string }
export interface ThreadReply {
  type: 'thread';
  channel: string;
  threadId: MessageId;
  parent: Message;
  messages: Message[];
  next: MessageId | null;
}
export interface DmOpenedReply { type: 'dm_opened'; channel: ChannelInfo }
export interface MarkedReadReply {
  type: 'marked_read';
  channel: string;
  messageId: MessageId;
  unread: number;
  mentions: number;
}
export interface ErrorReply {
  type: 'error';
  code: ErrorCode;
  message: string;
  action?: string;
  retryAfterMs?: number;
  requestId: string;
}

export type Reply =
  | JoinedReply
  | LeftReply
  | AckReply
  | HistoryReply
  | PresenceReply
  | HeartbeatReply
  | ChannelCreatedReply
  | InvitedReply
  | ChannelsReply
  | ReactedReply
  | EditedReply
  | DeletedReply
  | ThreadReply
  | DmOpenedReply
  | MarkedReadReply
  | ErrorReply;

export interface MessageEvent extends Message { type: 'message' }
export interface TypingEvent { type: 'typing'; id: string; channel: string; user: User }
export interface PresenceDiffEvent {
  type: 'presence_diff';
  id: string;
  channel: string;
  joins: User[];
  leaves: User[];
}
/** A reaction added or removed: the name's count and the message's reaction version after it. */
export interface ReactionEvent {
  type: 'reaction';
  /** `r{messageId}.{version}` */
  id: string;
  channel: string;
  messageId: MessageId;
  name: string;
  /** The name's count after this change (0: the last one was taken back). */
  count: number;
  /** One more on every change to the message's reactions: keep the highest per message and name. */
  version: number;
  user: User;
  added: boolean;
}
/** A message was edited: the message as it is now. */
export interface MessageUpdatedEvent extends Message { type: 'message_updated'; version: number }
export interface MessageDeletedEvent {
  type: 'message_deleted';
  id: MessageId;
  channel: string;
  version: number;
  deletedAt: string;
  threadId?: MessageId;
}
export interface ThreadUpdatedEvent {
  type: 'thread_updated';
  /** The thread's parent. */
  id: MessageId;
  channel: string;
  replyCount: number;
  lastReplyAt: string | null;
  threadVersion: number;
}
/** Your read mark moved on another of your connections. */
export interface ReadEvent {
  type: 'read';
  channel: string;
  messageId: MessageId;
  unread: number;
  mentions: number;
}
/** A pushed event (a `batch` frame is unpacked into these before anyone sees it). */
export type ServerEvent =
  | MessageEvent
  | TypingEvent
  | PresenceDiffEvent
  | ReactionEvent
  | MessageUpdatedEvent
  | MessageDeletedEvent
  | ThreadUpdatedEvent
  | ReadEvent;

/** Anything that is not a Parley frame (API Gateway's own `{"message": "Forbidden"}`, non-JSON). */
export interface GatewayFrame { type: 'gateway'; message?: string; [key: string]: unknown }

/** What `decode` yields and "frame" listeners receive. */
export type ServerFrame = Reply | ServerEvent | GatewayFrame;

// ---- constants and helpers ----------------------------------------------------------------------------

export const LIMITS: Readonly<{
  textMax: number;
  textMaxBytes: number;
  clientMsgIdMax: number;
  historyPage: number;
  joinWithoutSince: number;
  threadPage: number;
}>;

export const REPLY_TYPES: ReadonlySet<Reply['type']>;

export interface ClientOptions {
  heartbeatMs: number;
  heartbeatJitterMs: number;
  livenessTimeoutMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  typingShowMs: number;
  typingSendEveryMs: number;
  ackTimeoutMs: number;
  seenEventIds: number;
}
export const DEFAULTS: Readonly<ClientOptions>;

/** Length as the server counts it: Unicode code points. */
export function codePointLength(text: string): number;
/** Bytes as the server counts them: UTF-8 inside a JSON string, escapes included. */
export function textBytes(text: string): number;
/** Why this text cannot be sent, or null. */
export function textProblem(text: string): string | null;
export function channelNameProblem(name: string): string | null;
export function userIdProblem(user: string): string | null;
/** What to show for an author: the display name, and `@id` beside it when the name is not the id (so a name cannot impersonate). */
export function authorParts(user: Partial<User> | null | undefined): { name: string; id: string | null };
export function encode(frame: ClientFrame): string;
/** Every frame one WebSocket message holds, in order: a `batch` is unpacked into its events. */
export function decode(raw: string): ServerFrame[];
export function isReply(frame: { type: string }): frame is Reply;
/** `crypto.getRandomValues`, as browsers and Node (globalThis.crypto) have it. */
export interface RandomSource {
  getRandomValues<T extends Uint8Array>(array: T): T;
}
export function newClientMsgId(cryptoImpl?: RandomSource): string;
/** Delay before reconnect attempt `attempt` (1, 2, ...): exponential, capped, with equal jitter. */
export function backoffDelay(
  attempt: number,
  options?: { baseMs?: number; capMs?: number; random?: () => number },
): number;
export function typingText(names: string[]): string;
export function errorText(frame: Partial<ErrorReply>): string;
/** `{id, name, workspace, exp}` from a JWT's payload (not verified: only for display), or null. */
export function userFromToken(
  token: string,
): { id: string; name: string; workspace?: string; exp?: number } | null;

// ---- state ---------------------------------------------------------------------------------------------

export class SeenIds {
  constructor(max?: number);
  max: number;
  /** True the first time an id is seen. */
  add(id: string | null | undefined): boolean;
}

export interface PendingMessage {
  channel: string;
  text: string;
  clientMsgId: string;
  user: User | null;
  threadId?: MessageId;
  state: 'pending' | 'failed';
  error: string | null;
}

/** One channel's messages, unique and ordered by id, plus own messages waiting for their ack. */
export class Timeline {
  byId: Map<MessageId, Message>;
  ids: MessageId[];
  pending: Map<string, PendingMessage>;
  /** Thread summaries of parents not held yet. */
  summaries: Map<MessageId, Pick<Message, 'id' | 'replyCount' | 'lastReplyAt' | 'threadVersion'>>;
  hasMore: boolean;
  add(message: Message): boolean;
  addPending(entry: Omit<PendingMessage, 'state' | 'error'>): void;
  ack(clientMsgId: string, id: MessageId, ts: string, channel: string): boolean;
  fail(clientMsgId: string, error: string): void;
  readonly lastId: MessageId | null;
  readonly firstId: MessageId | null;
  messages(): Message[];
  pendingEntries(): PendingMessage[];
  /** A newer state of a message (an edit, a delete); true when it changed what is held. */
  change(message: Partial<Message> & { id: MessageId }): boolean;
  /** A thread's summary; kept for later when its parent is not held. */
  summarize(event: ThreadUpdatedEvent): boolean;
  get(id: MessageId): Message | undefined;
}

export class Presence {
  users: Map<string, string>;
  reset(list: User[]): void;
  beginPaging(): void;
  endPaging(): void;
  merge(list: User[]): void;
  apply(diff: Pick<PresenceDiffEvent, 'joins' | 'leaves'>): void;
  list(): User[];
}

export class Typing {
  constructor(showMs?: number);
  saw(user: User, now: number): void;
  stopped(userId: string): void;
  names(now: number): string[];
  nextExpiry(): number | null;
}

/** A channel's reactions, converging under repeated and reordered events (highest version wins). */
export class Reactions {
  constructor();
  /** A `joined` or `history` message's reactions; true when what is shown changed. */
  snapshot(message: Message): boolean;
  /** A `reaction` event; `meId` is your user id. True when what is shown changed. */
  apply(event: ReactionEvent, meId: string | null | undefined): boolean;
  /** The names with a count, in the order first seen. */
  list(messageId: MessageId): ReactionCount[];
  mine(messageId: MessageId, name: string): boolean;
}

export function reactionNameProblem(name: string): string | null;

export class ChannelState {
  constructor(name: string);
  /** The channel's id (what frames carry as `channel`), not necessarily its display name. */
  name: string;
  timeline: Timeline;
  presence: Presence;
  typing: Typing;
  reactions: Reactions;
  /** The user wants this channel joined (kept across reconnects). */
  subscribed: boolean;
  /** `joined` arrived on the current socket. */
  ready: boolean;
  loadingOlder: boolean;
  gap: { since: MessageId; before: MessageId } | null;
  /** Others' messages that arrived live since the listing's counts were last taken (a badge is the
   * listing's `unread` plus this). */
  unread: number;
  /** Of those, the ones that mention you (a badge's mentions: the listing's `mentions` plus this). */
  mentions: number;
  threads: Map<MessageId, ThreadState>;
  /** The thread of parent `id` as far as it was read (`client.thread` reads it). */
  thread(id: MessageId): ThreadState;
}

export class ThreadState {
  constructor(id: MessageId);
  id: MessageId;
  replies: Timeline;
  next: MessageId | null;
  loading: boolean;
  loaded: boolean;
}

/** Two states of one message merged: the higher `version` wins its fields, the higher `threadVersion` its thread summary. */
export function mergeMessage(held: Partial<Message>, incoming: Partial<Message>): Message;

// ---- the client ----------------------------------------------------------------------------------------

export type Status = 'idle' | 'connecting' | 'open' | 'waiting' | 'stopped';

/** What each listener kind receives as `detail`. */
export interface ClientEvents {
  status: { status: Status; attempt: number; retryAt: number | null };
  /** `created`: a channel you created; `opened`: the DM `openDm` opened; `read`: a mark moved. */
  channels: { created?: string; opened?: string; read?: string };
  channel: { channel: string };
  messages: { channel: string; message?: Message; older?: boolean };
  /** A thread read with `thread` changed: a page, a reply, an edit or delete in it. */
  thread: { channel: string; threadId: MessageId };
  presence: { channel: string };
  typing: { channel: string };
  reactions: { channel: string; messageId: MessageId };
  notice: { level: 'info' | 'warn' | 'error'; text: string; code?: string | number; connection?: boolean };
  /** Every reply and event as received, a batch's events one by one. */
  frame: { frame: ServerFrame };
}

/** `(kind, detail)`: checking `kind` narrows `detail` (TypeScript's dependent parameters). */
export type Listener = (
  ...args: { [K in keyof ClientEvents]: [kind: K, detail: ClientEvents[K]] }[keyof ClientEvents]
) => void;

/** The parts of a WebSocket the client uses (the browser's, Node 22's, or the `ws` package's). */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event?: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason?: string; wasClean?: boolean }) => void) | null;
  onerror: ((event?: unknown) => void) | null;
}

export interface ClientEnv {
  WebSocket: new (url: string) => WebSocketLike;
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (timer: unknown) => void;
  now: () => number;
  random: () => number;
  crypto: RandomSource;
}

export interface ClientInit {
  /** `wss://{api-id}.execute-api.{region}.amazonaws.com/{stage}`, or the emulator's `ws://` URL. */
  url: string;
  /** The JWT, or a function returning a fresh one for every (re)connect. */
  token: string | (() => string | Promise<string>);
  options?: Partial<ClientOptions>;
  /** Replace the WebSocket class, timers, clock or randomness (tests; Node 20 has no WebSocket). */
  env?: Partial<ClientEnv>;
}

/** One signed-in user's connection: reconnects with backoff, re-joins with `since`, heartbeats. */
export class ParleyClient {
  constructor(init: ClientInit);
  url: string;
  status: Status;
  me: { id: string; name: string; workspace?: string; exp?: number } | null;
  channels: Map<string, ChannelState>;
  /** The last complete `channels` listing, in name order (then id: a public and a private channel may share a name). */
  directory: ChannelListing[];
  options: ClientOptions;
  connectionCount: number;

  /** Listen to every kind; returns a function that stops listening. */
  on(listener: Listener): () => boolean;
  channel(name: string): ChannelState;
  /** The name to show for a channel id (a private channel's id is `name.<suffix>`); the id when unlisted. */
  channelName(id: string): string;
  start(): void;
  stop(): void;
  reconnectNow(): void;
  /** Close the socket as if the network dropped it. */
  dropSocket(code?: number, reason?: string): void;
  /** Send a raw frame on the open socket; false when there is none. */
  send(frame: ClientFrame): boolean;
  join(name: string): ChannelState;
  leave(name: string): void;
  refreshChannels(): boolean;
  createChannel(name: string, isPrivate?: boolean): boolean;
  invite(channel: string, user: string): boolean;
  /** Open (or find) the DM of you and `users`; the `dm_opened` reply lists it in `directory` at once
   * (a `channels` event with `opened`), then refreshes the listing. */
  openDm(users: string[]): boolean;
  /** Move your read mark in a channel to `messageId` (never back); the counts in `directory` follow. */
  markRead(channel: string, messageId: MessageId): boolean;
  /** Queue a message: pending at once, sent (and re-sent with the same clientMsgId) until acked. */
  sendMessage(
    channel: string,
    text: string,
    options?: { threadId?: MessageId },
  ): { ok: true; clientMsgId: string } | { ok: false; error: string };
  /** Edit your own message (sent with the version held: an edit from an old text is a `conflict`). */
  edit(channel: string, messageId: MessageId, text: string): { ok: true } | { ok: false; error: string };
  /** Delete a message (yours; with an admin token, anyone's); false when not connected. */
  delete(channel: string, messageId: MessageId): boolean;
  /** Read a thread's first page, or its next one; false when there is nothing to ask. */
  thread(channel: string, threadId: MessageId): boolean;
  retryMessage(channel: string, clientMsgId: string): void;
  discardMessage(channel: string, clientMsgId: string): void;
  typing(channel: string): void;
  /** Ask for the page before the oldest message held; false when there is nothing to ask. */
  loadOlder(channel: string): boolean;
  /** Send `react` (with `remove`, take it back); false when the channel is not joined or the name is bad. */
  react(channel: string, messageId: MessageId, name: string, remove?: boolean): boolean;
  /** Add the reaction, or take it back if it is yours. */
  toggleReaction(channel: string, messageId: MessageId, name: string): boolean;
}
