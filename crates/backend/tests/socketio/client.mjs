// A real socket.io-client v4, driven by tests/api/socket.rs. Prints one JSON line per
// happening on stdout: {"type":"connect"}, {"type":"connect_error","message":…} (then exits),
// {"type":"event","event":…,"args":[…]}. Reads nothing; the test kills it when done.
//
// With a fifth argument, a fresh access token, it sends it with the `authenticate` event once
// connected and prints the acknowledgement as {"type":"reauthenticated","answer":…}.
//
// Usage: node client.mjs <url> <auth|query|none> [token] [transports, comma-separated] [fresh token]
import { io } from "socket.io-client";

const [url, mode, token, transports, fresh] = process.argv.slice(2);
const options = {
  transports: (transports || "websocket,polling").split(","),
  reconnection: false,
  timeout: 5000,
};
if (mode === "auth") options.auth = { token };
if (mode === "query") options.query = { token };

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const socket = io(url, options);
socket.on("connect", () => {
  out({ type: "connect", id: socket.id });
  if (fresh) {
    socket.emit("authenticate", { token: fresh }, (answer) =>
      out({ type: "reauthenticated", answer }),
    );
  }
});
socket.on("connect_error", (err) => {
  out({ type: "connect_error", message: err.message, data: err.data ?? null });
  process.exit(0);
});
socket.on("disconnect", (reason) => out({ type: "disconnect", reason }));
socket.onAny((event, ...args) => out({ type: "event", event, args }));
