// A Node `ws` echo server, the peer of ws4py's client in tests/interop.
//
//   node echo_server.mjs <deflate: 0|1|perMessageDeflate options as JSON> <lifetime in seconds>
//
// Prints one JSON object per line on stdout, the first {"event": "listening", "port": N}.
// Echoes every message (text as text, binary as binary), except the text commands
//   cmd:close:<code>:<reason>  close with that code and reason
//   cmd:ping:<payload>         ping; the pong is reported back as the text "ponged:<payload>"
//   cmd:fragments              send "alphabetagamma" as three text fragments
// and reports each connection's open and close (with the code and reason it received).
// Exits when its stdin ends or after <lifetime> seconds, whichever comes first.
import { WebSocketServer } from 'ws';

const deflateArg = process.argv[2];
const deflate = deflateArg === '1' ? true : deflateArg === '0' ? false : JSON.parse(deflateArg);
const lifetime = Number(process.argv[3] || 120);
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate });

function command(ws, text) {
  const [name, ...rest] = text.slice('cmd:'.length).split(':');
  if (name === 'close') {
    ws.close(Number(rest[0]), rest.slice(1).join(':'));
  } else if (name === 'ping') {
    ws.ping(rest.join(':'));
  } else if (name === 'fragments') {
    ws.send('alpha', { fin: false });
    ws.send('beta', { fin: false });
    ws.send('gamma', { fin: true });
  } else {
    ws.send('unknown command: ' + text);
  }
}

wss.on('listening', () => emit({ event: 'listening', port: wss.address().port }));
wss.on('connection', (ws, req) => {
  const path = req.url;
  emit({ event: 'open', path, extensions: ws.extensions });
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.toString().startsWith('cmd:')) {
      command(ws, data.toString());
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
  ws.on('pong', (data) => ws.send('ponged:' + data.toString()));
  ws.on('close', (code, reason) => emit({ event: 'close', path, code, reason: reason.toString() }));
  ws.on('error', (error) => emit({ event: 'error', path, message: String(error) }));
});

setTimeout(() => process.exit(0), lifetime * 1000);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
