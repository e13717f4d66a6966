// automerge-repo's node sync server, as @automerge/automerge-repo-sync-server builds it
// (a Repo with a NodeWSServerAdapter and a NodeFS storage adapter, sharing nothing
// unasked), on automerge-repo 2.5.6 instead of that package's 1.x, without express.
//
//   node sync-server.mjs [PORT] [DATA_DIR]
//
// Listens on 127.0.0.1:PORT (0: a free one), stores documents under DATA_DIR, and prints
// `listening on http://127.0.0.1:PORT` once ready. Used by the load generator
// (tests/src/bin/loadgen) to run the same devices against it and against the relay.

import http from "node:http";
import os from "node:os";
import { Repo } from "@automerge/automerge-repo";
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";

const [port = "0", dir = ".amrg"] = process.argv.slice(2);

const wss = new WebSocketServer({ noServer: true });
const server = http.createServer((_req, res) => {
  res.end("automerge-repo sync server is running");
});

new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `storage-server-${os.hostname()}`,
  // Share nothing unasked, as the sync server does.
  sharePolicy: async () => false,
});

server.on("upgrade", (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, ws => wss.emit("connection", ws, request));
});

// The Repo connects its network adapter once its storage id is known: listen only then,
// or the first connections would find no one to greet them.
while (wss.listenerCount("connection") === 0) {
  await new Promise(resolve => setTimeout(resolve, 5));
}
server.listen(Number(port), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
