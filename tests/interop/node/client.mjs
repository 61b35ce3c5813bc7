// A Node `ws` client driven over stdin, the peer of ws4py's server in tests/interop.
//
//   node client.mjs <url> <deflate: 0|1|perMessageDeflate options as JSON> <lifetime in seconds>
//
// Reads one JSON command per line on stdin:
//   {"op": "send", "b64": ..., "binary": bool}        one message
//   {"op": "fragments", "parts": [b64...], "binary": bool}  one message, a frame per part
//   {"op": "ping", "b64": ...}
//   {"op": "close", "code": N, "reason": "..."}
// and prints one JSON object per line on stdout: {"event": "open", "extensions": <the
// Sec-WebSocket-Extensions response header or null>}, "message" (b64, binary), "pong"
// (b64), "close" (code, reason), "error" (message).
// Exits shortly after the connection closed, when its stdin ends, or after <lifetime> seconds.
import readline from 'node:readline';
import WebSocket from 'ws';

const [url, deflateArg, lifetimeArg] = process.argv.slice(2);
const lifetime = Number(lifetimeArg || 60);
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const bytes = (b64) => Buffer.from(b64, 'base64');

const deflate = deflateArg === '1' ? true : deflateArg === '0' ? false : JSON.parse(deflateArg);
const ws = new WebSocket(url, { perMessageDeflate: deflate });
let extensions = null;
ws.on('upgrade', (response) => {
  extensions = response.headers['sec-websocket-extensions'] ?? null;
});
ws.on('open', () => emit({ event: 'open', extensions }));
ws.on('message', (data, isBinary) =>
  emit({ event: 'message', binary: isBinary, b64: Buffer.from(data).toString('base64') }),
);
ws.on('pong', (data) => emit({ event: 'pong', b64: data.toString('base64') }));
ws.on('close', (code, reason) => {
  emit({ event: 'close', code, reason: reason.toString() });
  setTimeout(() => process.exit(0), 100);
});
ws.on('error', (error) => emit({ event: 'error', message: String(error) }));

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line);
  if (command.op === 'send') {
    ws.send(command.binary ? bytes(command.b64) : bytes(command.b64).toString(), { binary: command.binary });
  } else if (command.op === 'fragments') {
    command.parts.forEach((part, i) => {
      const data = command.binary ? bytes(part) : bytes(part).toString();
      ws.send(data, { binary: command.binary, fin: i === command.parts.length - 1 });
    });
  } else if (command.op === 'ping') {
    ws.ping(bytes(command.b64));
  } else if (command.op === 'close') {
    ws.close(command.code, command.reason);
  }
});
process.stdin.on('end', () => setTimeout(() => process.exit(0), 1000));
setTimeout(() => process.exit(0), lifetime * 1000);
