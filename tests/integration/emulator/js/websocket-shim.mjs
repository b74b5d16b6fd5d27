// Node 20 has no global WebSocket. Give the Firebase SDK the `ws` package instead, pointed at
// the emulator: its Live URL is fixed to wss://firebasevertexai.googleapis.com/..., so the
// shim keeps the path and query and swaps scheme, host and port for EMULATOR_URL's.
import { readFileSync } from 'node:fs';
import WS from 'ws';

const target = new URL(process.env.EMULATOR_URL);
const ca = process.env.EMULATOR_CERT ? readFileSync(process.env.EMULATOR_CERT) : undefined;

export const rewritten = [];

class EmulatorWebSocket extends WS {
  constructor(url, protocols) {
    const u = new URL(url);
    if (u.host === 'firebasevertexai.googleapis.com') {
      u.protocol = target.protocol;
      u.host = target.host;
    }
    rewritten.push(u.toString());
    super(u.toString(), protocols, ca ? { ca } : {});
  }
}

globalThis.WebSocket = EmulatorWebSocket;
