// Test doubles for ParleyClient: a scripted WebSocket and a clock whose time moves only when told.

export class FakeClock {
  constructor() {
    this.t = 1_000_000;
    this.timers = new Map();
    this.nextId = 1;
  }

  now = () => this.t;

  setTimeout = (fn, ms) => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  };

  clearTimeout = (id) => {
    this.timers.delete(id);
  };

  /** Move time forward, firing due timers in time order (timers they set fire too, if due). */
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let due = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (due === null || timer.at < due[1].at)) due = [id, timer];
      }
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
  }
}

export function fakeSockets() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closedWith = null;
      sockets.push(this);
    }

    send(data) {
      if (this.closedWith) throw new Error('send on a closed socket');
      this.sent.push(JSON.parse(data));
    }

    close(code, reason) {
      this.closedWith = { code, reason };
    }

    // ---- the server's side ----
    open() {
      this.onopen?.();
    }

    push(frame) {
      this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
    }

    drop(code = 1006) {
      this.closedWith = { code };
      this.onclose?.({ code, reason: '', wasClean: false });
    }

    frames(action) {
      return this.sent.filter((f) => f.action === action);
    }
  }
  return { FakeWebSocket, sockets };
}

/** A token with the given claims (unsigned: the client only reads it for display). */
export function token(claims) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.sig`;
}

export const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A 17-digit message id that grows with n (kept as a string: ids exceed 2^53). */
export const mid = (n) => '179' + String(n).padStart(14, '0');

/** A message as the server sends it. */
export function msg(n, { channel = 'general', user = 'bob', text = `m${n}`, clientMsgId } = {}) {
  const m = {
    type: 'message',
    id: mid(n),
    channel,
    ts: '2026-11-28T10:00:00.000Z',
    user: { id: user, name: user[0].toUpperCase() + user.slice(1) },
    text,
  };
  if (clientMsgId) m.clientMsgId = clientMsgId;
  return m;
}
