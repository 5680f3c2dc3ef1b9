// Must NOT type-check (test/package.test.js expects tsc to refuse each line marked below).
import { ParleyClient } from 'parley-client';

const client = new ParleyClient({ url: 'ws://127.0.0.1:3001/', token: 'eyJ...' });
client.send({ action: 'jion', channel: 'general' }); // error: no such action
client.send({ action: 'message', channel: 'general' }); // error: a message needs its text
const n: number = client.status; // error: status is a string union
